//! Credentials (SPEC section 2): passwords, JWT access tokens, opaque API keys and agent
//! tokens, and login rate limiting. Pure mechanics; the HTTP extractors that use them live in
//! `crate::http::auth`.

pub mod jwt;
pub mod password;
pub mod rate_limit;
pub mod session;
pub mod token;
