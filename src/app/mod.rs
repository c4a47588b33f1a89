//! The use cases: the layer between the adapters (`http`, `ui`, `cli`) and the store. Each
//! function takes what it needs (the state or a pool, the caller's tenant, parsed input), does
//! one thing a user asks for, and returns domain values or an [`AppError`]. Both adapters call
//! the same function, so a rule is written once: the JSON API and the web UI cannot drift.

pub mod agent_tokens;
pub mod alerts;
pub mod channels;
pub mod error;
pub mod identity;
pub mod licenses;
pub mod login;
pub mod notifications;
pub mod pagination;
pub mod quiet;
pub mod snapshots;
pub mod state;
pub mod status;
pub mod windows;

pub use error::{AppError, AppResult};
pub use state::AppState;
