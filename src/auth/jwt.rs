//! JWT access tokens: HS256 pinned, `exp` <= 1 h, `iss` and `aud` checked, and a token version
//! that the user row must still carry (bumping it revokes every older token).

use crate::domain::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    /// The user's tenant.
    pub tid: Uuid,
    pub role: Role,
    /// `users.token_version` when the token was issued.
    pub ver: i32,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signing and verification keys, built once from configuration and kept in application state.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    pub ttl_seconds: i64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl_seconds: i64) -> Self {
        // Only HS256 is accepted: a token that names another algorithm (or `none`) is refused
        // before its signature is even looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_seconds,
        }
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        tenant_id: Uuid,
        role: Role,
        token_version: i32,
        now: i64,
    ) -> anyhow::Result<String> {
        self.issue_until(
            user_id,
            tenant_id,
            role,
            token_version,
            now,
            now.saturating_add(self.ttl_seconds),
        )
    }

    /// Issues a token with the given issue and expiry times (the UI's sliding session keeps
    /// its login time in `iat` and moves `exp`).
    pub fn issue_until(
        &self,
        user_id: Uuid,
        tenant_id: Uuid,
        role: Role,
        token_version: i32,
        iat: i64,
        exp: i64,
    ) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user_id,
            tid: tenant_id,
            role,
            ver: token_version,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat,
            exp,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Verifies signature, algorithm, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    fn keys() -> JwtKeys {
        JwtKeys::new(&[7u8; 32], "streamwatch", "streamwatch-api", 3600)
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn an_issued_token_verifies() {
        let (u, t) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys().issue(u, t, Role::Admin, 3, now()).unwrap();
        let claims = keys().verify(&token).unwrap();
        assert_eq!(
            (claims.sub, claims.tid, claims.role, claims.ver),
            (u, t, Role::Admin, 3)
        );
    }

    #[test]
    fn wrong_key_expired_wrong_audience_and_alg_none_are_refused() {
        let token = keys()
            .issue(Uuid::new_v4(), Uuid::new_v4(), Role::Owner, 0, now())
            .unwrap();
        let other = JwtKeys::new(&[8u8; 32], "streamwatch", "streamwatch-api", 3600);
        assert!(other.verify(&token).is_err(), "wrong key");

        let old = keys()
            .issue(Uuid::new_v4(), Uuid::new_v4(), Role::Owner, 0, now() - 7200)
            .unwrap();
        assert!(keys().verify(&old).is_err(), "expired");

        let aud = JwtKeys::new(&[7u8; 32], "streamwatch", "someone-else", 3600);
        let foreign = aud
            .issue(Uuid::new_v4(), Uuid::new_v4(), Role::Owner, 0, now())
            .unwrap();
        assert!(keys().verify(&foreign).is_err(), "wrong audience");

        let payload = token.split('.').nth(1).unwrap();
        let none = format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
        );
        assert!(keys().verify(&none).is_err(), "alg none");
    }
}
