//! Signed one-click acknowledgement links (SPEC section 5a). Every alert carries
//! `{public_url}/acknowledge?token=...`; the token names one episode of one license and the
//! recipient or channel the alert went to (`via`), and is signed with a key derived from the
//! server's secret under its own label, so it cannot be forged, altered, or used as an
//! unsubscribe token (or the other way round).
//!
//! The token is the credential: whoever holds the alert may acknowledge that one episode, and
//! nothing else. Opening the link (GET) only shows a page with a button; the POST acknowledges,
//! because chat unfurlers and mail scanners fetch links.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Signs and checks acknowledgement tokens.
#[derive(Clone)]
pub struct AckKeys {
    key: Vec<u8>,
}

impl std::fmt::Debug for AckKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AckKeys([REDACTED])")
    }
}

/// What an acknowledgement token grants: acknowledging `episode_id` of `license_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckToken {
    pub tenant_id: Uuid,
    pub license_id: Uuid,
    pub episode_id: Uuid,
    /// The recipient or channel the alert went to: recorded as `link via <via>`.
    pub via: String,
}

impl AckKeys {
    /// Derived from the server's JWT secret, under a label of its own (the unsubscribe keys
    /// use another), so that one kind of token never verifies as the other.
    pub fn new(secret: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"streamwatch acknowledge v1\0");
        h.update(secret);
        Self {
            key: h.finalize().to_vec(),
        }
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }

    /// `<payload>.<signature>`, both base64url: safe in a URL as it is.
    pub fn sign(&self, t: &AckToken) -> String {
        // `via` goes last: it is the only part that may contain the separator.
        let payload = format!(
            "{}|{}|{}|{}",
            t.tenant_id, t.license_id, t.episode_id, t.via
        );
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()))
        )
    }

    /// The token's grant, or `None` if it is malformed or was not signed with these keys.
    pub fn verify(&self, token: &str) -> Option<AckToken> {
        let (payload, sig) = token.trim().split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        if !crate::auth::token::constant_time_eq(&self.mac(&payload), &sig) {
            return None;
        }
        let text = String::from_utf8(payload).ok()?;
        let mut parts = text.splitn(4, '|');
        Some(AckToken {
            tenant_id: parts.next()?.parse().ok()?,
            license_id: parts.next()?.parse().ok()?,
            episode_id: parts.next()?.parse().ok()?,
            via: parts.next()?.to_owned(),
        })
    }
}

/// The link an alert carries: `{public_url}/acknowledge?token=<token>`.
pub fn ack_url(public_url: &str, token: &str) -> String {
    // The token is base64url and '.', which need no escaping in a query.
    format!(
        "{}/acknowledge?token={token}",
        public_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::email::{Unsubscribe, UnsubscribeKeys};

    fn token() -> AckToken {
        AckToken {
            tenant_id: Uuid::new_v4(),
            license_id: Uuid::new_v4(),
            episode_id: Uuid::new_v4(),
            via: "ops|night@x.test".to_owned(),
        }
    }

    #[test]
    fn tokens_verify_and_resist_tampering() {
        let keys = AckKeys::new(b"secret");
        let t = token();
        let signed = keys.sign(&t);
        assert_eq!(keys.verify(&signed), Some(t.clone()));
        assert_eq!(AckKeys::new(b"other").verify(&signed), None);
        let (payload, sig) = signed.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(format!(
            "{}|{}|{}|evil",
            t.tenant_id,
            t.license_id,
            Uuid::new_v4()
        ));
        assert_eq!(keys.verify(&format!("{forged}.{sig}")), None);
        assert_eq!(keys.verify(payload), None);
        assert_eq!(keys.verify(""), None);
        assert_eq!(keys.verify("a.b"), None);
    }

    #[test]
    fn an_unsubscribe_token_is_no_acknowledgement_token_and_the_other_way_round() {
        let secret = b"one server secret";
        let unsubscribe = UnsubscribeKeys::new(secret).sign(&Unsubscribe {
            tenant_id: Uuid::new_v4(),
            recipient: "a@x.test".to_owned(),
            licenses: vec![Uuid::new_v4()],
        });
        assert_eq!(AckKeys::new(secret).verify(&unsubscribe), None);
        let ack = AckKeys::new(secret).sign(&token());
        assert_eq!(UnsubscribeKeys::new(secret).verify(&ack), None);
    }

    #[test]
    fn the_link_is_the_public_url_with_the_token() {
        assert_eq!(
            ack_url("https://watch.example/", "abc.def"),
            "https://watch.example/acknowledge?token=abc.def"
        );
        assert_eq!(
            ack_url("http://127.0.0.1:8080", "t.s"),
            "http://127.0.0.1:8080/acknowledge?token=t.s"
        );
    }
}
