//! Alert channels (SPEC section 5a): where a tenant's alerts go besides the plain recipients.
//!
//! A [`ChannelConfig`] can only hold what section 5a allows: each kind's fields, e-mail
//! addresses that parse, and URLs that pass the *syntactic* half of the outbound rules
//! ([`check_target_url`]: `https` unless private targets are allowed, no credentials in the
//! URL, a literal IP address must be public). The other half (what a host name resolves to) is
//! checked by `notify::outbound` on save and again at connect time.
//!
//! Secrets (a webhook's signing secret, a PagerDuty routing key, an ntfy token, and the Slack
//! and Teams webhook URLs, which are bearer credentials themselves) are kept as stored and
//! never shown again: [`ChannelConfig::redacted`] is what the API and UI display.

use super::{EmailAddress, FieldError, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::net::IpAddr;

/// At most this many recipients in an e-mail channel (as for a license's plain recipients).
pub const MAX_CHANNEL_RECIPIENTS: usize = 20;
/// Longest URL, secret or token accepted.
pub const MAX_FIELD_CHARS: usize = 2048;
/// What a redacted secret reads as.
pub const REDACTED: &str = "[redacted]";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Email,
    Webhook,
    Slack,
    Teams,
    Pagerduty,
    Ntfy,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 6] = [
        Self::Email,
        Self::Webhook,
        Self::Slack,
        Self::Teams,
        Self::Pagerduty,
        Self::Ntfy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Teams => "teams",
            Self::Pagerduty => "pagerduty",
            Self::Ntfy => "ntfy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A human label for the UI.
    pub fn label(self) -> &'static str {
        match self {
            Self::Email => "E-mail",
            Self::Webhook => "Webhook",
            Self::Slack => "Slack",
            Self::Teams => "Microsoft Teams",
            Self::Pagerduty => "PagerDuty",
            Self::Ntfy => "ntfy",
        }
    }
}

/// PagerDuty's Events API v2 endpoint, used when a channel names none.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// A checked channel configuration. Stored as JSON (`{"kind": ..., ...fields}` is not used:
/// the kind is its own column; [`ChannelConfig::to_stored`] gives the fields only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelConfig {
    Email {
        recipients: Vec<EmailAddress>,
    },
    Webhook {
        url: String,
        secret: Option<String>,
    },
    Slack {
        webhook_url: String,
    },
    Teams {
        webhook_url: String,
    },
    Pagerduty {
        routing_key: String,
        /// `None`: [`PAGERDUTY_EVENTS_URL`].
        events_url: Option<String>,
    },
    Ntfy {
        /// Server and topic, e.g. `https://ntfy.sh/my-topic`.
        url: String,
        token: Option<String>,
    },
}

impl ChannelConfig {
    pub fn kind(&self) -> ChannelKind {
        match self {
            Self::Email { .. } => ChannelKind::Email,
            Self::Webhook { .. } => ChannelKind::Webhook,
            Self::Slack { .. } => ChannelKind::Slack,
            Self::Teams { .. } => ChannelKind::Teams,
            Self::Pagerduty { .. } => ChannelKind::Pagerduty,
            Self::Ntfy { .. } => ChannelKind::Ntfy,
        }
    }

    /// The URL the server calls (`None` for e-mail).
    pub fn target_url(&self) -> Option<&str> {
        match self {
            Self::Email { .. } => None,
            Self::Webhook { url, .. } | Self::Ntfy { url, .. } => Some(url),
            Self::Slack { webhook_url } | Self::Teams { webhook_url } => Some(webhook_url),
            Self::Pagerduty { events_url, .. } => {
                Some(events_url.as_deref().unwrap_or(PAGERDUTY_EVENTS_URL))
            }
        }
    }

    /// Checks `config` (a JSON object) for `kind`. Problems point into the request body under
    /// `pointer_base` (the API passes `/config`). `allow_private` is
    /// `STREAMWATCH__CHANNELS__ALLOW_PRIVATE_TARGETS`.
    pub fn parse(
        kind: ChannelKind,
        config: &Value,
        pointer_base: &str,
        allow_private: bool,
    ) -> Result<Self, Vec<FieldError>> {
        let Some(obj) = config.as_object() else {
            return Err(vec![FieldError::new(
                pointer_base,
                "must be an object with the channel's settings",
            )]);
        };
        let mut v = Validation::new();
        let known: &[&str] = match kind {
            ChannelKind::Email => &["recipients"],
            ChannelKind::Webhook => &["url", "secret"],
            ChannelKind::Slack | ChannelKind::Teams => &["webhook_url"],
            ChannelKind::Pagerduty => &["routing_key", "events_url"],
            ChannelKind::Ntfy => &["url", "token"],
        };
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                v.push_error(FieldError::new(
                    format!("{pointer_base}/{}", super::escape_pointer_token(key)),
                    format!(
                        "is not a setting of a {} channel (it takes {})",
                        kind.as_str(),
                        known.join(", ")
                    ),
                ));
            }
        }
        let p = |field: &str| format!("{pointer_base}/{field}");
        let url = |v: &mut Validation, field: &str| -> Option<String> {
            let s = required_string(v, obj, &p(field))?;
            v.check(&p(field), s, |s| {
                check_target_url(&s, allow_private).map(|()| s)
            })
        };
        let secret = |v: &mut Validation, field: &str| -> Option<Option<String>> {
            match obj.get(field) {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(s)) if s.is_empty() => Some(None),
                Some(Value::String(s)) if s.chars().count() > MAX_FIELD_CHARS => {
                    v.push_error(FieldError::new(
                        p(field),
                        format!("must be at most {MAX_FIELD_CHARS} characters"),
                    ));
                    None
                }
                Some(Value::String(s)) if s.chars().any(char::is_control) => {
                    v.push_error(FieldError::new(
                        p(field),
                        "must not contain control characters",
                    ));
                    None
                }
                Some(Value::String(s)) => Some(Some(s.clone())),
                Some(_) => {
                    v.push_error(FieldError::new(p(field), "must be a string"));
                    None
                }
            }
        };
        let parsed = match kind {
            ChannelKind::Email => {
                let recipients = match obj.get("recipients") {
                    Some(Value::Array(items)) => {
                        let mut out: Vec<EmailAddress> = Vec::new();
                        for (i, item) in items.iter().enumerate() {
                            let pointer = format!("{}/{i}", p("recipients"));
                            match item.as_str() {
                                Some(s) => {
                                    if let Some(a) = v.check(&pointer, s, EmailAddress::parse)
                                        && !out.iter().any(|o| o.as_str() == a.as_str())
                                    {
                                        out.push(a);
                                    }
                                }
                                None => v.push_error(FieldError::new(pointer, "must be a string")),
                            }
                        }
                        if items.is_empty() {
                            v.push_error(FieldError::new(
                                p("recipients"),
                                "needs at least one address",
                            ));
                        } else if out.len() > MAX_CHANNEL_RECIPIENTS {
                            v.push_error(FieldError::new(
                                p("recipients"),
                                format!(
                                    "at most {MAX_CHANNEL_RECIPIENTS} addresses, not {}",
                                    out.len()
                                ),
                            ));
                        }
                        Some(out)
                    }
                    Some(_) => {
                        v.push_error(FieldError::new(
                            p("recipients"),
                            "must be an array of e-mail addresses",
                        ));
                        None
                    }
                    None => {
                        v.push_error(FieldError::new(p("recipients"), "is required"));
                        None
                    }
                };
                recipients.map(|recipients| Self::Email { recipients })
            }
            ChannelKind::Webhook => {
                let (u, s) = (url(&mut v, "url"), secret(&mut v, "secret"));
                u.zip(s).map(|(url, secret)| Self::Webhook { url, secret })
            }
            ChannelKind::Slack => {
                url(&mut v, "webhook_url").map(|webhook_url| Self::Slack { webhook_url })
            }
            ChannelKind::Teams => {
                url(&mut v, "webhook_url").map(|webhook_url| Self::Teams { webhook_url })
            }
            ChannelKind::Pagerduty => {
                let key = required_string(&mut v, obj, &p("routing_key"));
                let events_url = match obj.get("events_url") {
                    None | Some(Value::Null) => Some(None),
                    Some(_) => url(&mut v, "events_url").map(Some),
                };
                if let Some(k) = &key
                    && (k.chars().count() > 64 || !k.chars().all(|c| c.is_ascii_alphanumeric()))
                {
                    v.push_error(FieldError::new(
                        p("routing_key"),
                        "must be the integration's routing key (letters and digits, at most 64)",
                    ));
                }
                key.zip(events_url)
                    .map(|(routing_key, events_url)| Self::Pagerduty {
                        routing_key,
                        events_url,
                    })
            }
            ChannelKind::Ntfy => {
                let (u, t) = (url(&mut v, "url"), secret(&mut v, "token"));
                if let Some(u) = &u
                    && url_path_is_empty(u)
                {
                    v.push_error(FieldError::new(
                        p("url"),
                        "must name the topic, e.g. https://ntfy.sh/my-topic",
                    ));
                }
                u.zip(t).map(|(url, token)| Self::Ntfy { url, token })
            }
        };
        v.finish()?;
        parsed.ok_or_else(|| vec![FieldError::new(pointer_base, "is not valid")])
    }

    /// The fields as stored (secrets included; never sent to a client).
    pub fn to_stored(&self) -> Value {
        match self {
            Self::Email { recipients } => {
                json!({"recipients": recipients.iter().map(EmailAddress::as_str).collect::<Vec<_>>()})
            }
            Self::Webhook { url, secret } => json!({"url": url, "secret": secret}),
            Self::Slack { webhook_url } | Self::Teams { webhook_url } => {
                json!({"webhook_url": webhook_url})
            }
            Self::Pagerduty {
                routing_key,
                events_url,
            } => json!({"routing_key": routing_key, "events_url": events_url}),
            Self::Ntfy { url, token } => json!({"url": url, "token": token}),
        }
    }

    /// Reads back what [`to_stored`](Self::to_stored) wrote. Stored rows were checked when
    /// saved, so this does not apply the outbound rules again (connect time does).
    pub fn from_stored(kind: ChannelKind, stored: &Value) -> Option<Self> {
        Self::parse(kind, stored, "", true).ok()
    }

    /// What the API and UI show: secrets as [`REDACTED`] (present) or null (absent); Slack and
    /// Teams webhook URLs (bearer credentials) and other URLs by their origin only.
    pub fn redacted(&self) -> Value {
        let secret = |s: &Option<String>| s.as_ref().map(|_| REDACTED);
        match self {
            Self::Email { .. } => self.to_stored(),
            Self::Webhook { url, secret: s } => {
                json!({"url": streamwatch_protocol::redact::redact_url_origin(url), "secret": secret(s)})
            }
            Self::Slack { webhook_url } | Self::Teams { webhook_url } => {
                json!({"webhook_url": streamwatch_protocol::redact::redact_url_origin(webhook_url)})
            }
            Self::Pagerduty { events_url, .. } => {
                json!({"routing_key": REDACTED, "events_url": events_url.as_deref().map(streamwatch_protocol::redact::redact_url_origin)})
            }
            Self::Ntfy { url, token } => {
                json!({"url": streamwatch_protocol::redact::redact_url_origin(url), "token": secret(token)})
            }
        }
    }

    /// A PATCH: fields of `patch` replace the stored ones; a field left out (or given as
    /// [`REDACTED`], as a form shows it) keeps its stored value, so a client can change the
    /// name or one URL without knowing the secrets.
    pub fn merged(stored: &Value, patch: &Value) -> Value {
        let mut out: Map<String, Value> = stored.as_object().cloned().unwrap_or_default();
        if let Some(p) = patch.as_object() {
            for (k, v) in p {
                if v.as_str() == Some(REDACTED) {
                    continue;
                }
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    }
}

fn required_string(v: &mut Validation, obj: &Map<String, Value>, pointer: &str) -> Option<String> {
    let field = pointer.rsplit('/').next().unwrap_or(pointer);
    match obj.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            if s.chars().count() > MAX_FIELD_CHARS {
                v.push_error(FieldError::new(
                    pointer,
                    format!("must be at most {MAX_FIELD_CHARS} characters"),
                ));
                None
            } else {
                Some(s.trim().to_owned())
            }
        }
        Some(Value::String(_)) | None | Some(Value::Null) => {
            v.push_error(FieldError::new(pointer, "is required"));
            None
        }
        Some(_) => {
            v.push_error(FieldError::new(pointer, "must be a string"));
            None
        }
    }
}

fn url_path_is_empty(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.split_once('/') {
        None => true,
        Some((_, path)) => path.split(['?', '#']).next().unwrap_or("").is_empty(),
    }
}

/// The syntactic outbound rules of SPEC section 5a: an absolute `https` URL (or `http` when
/// private targets are allowed) with a host, no user name or password, and, when the host is
/// a literal IP address, a public one. Host names are resolved and checked by
/// `notify::outbound`.
pub fn check_target_url(url: &str, allow_private: bool) -> Result<(), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a URL without spaces".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("must be an absolute URL (https://...)".into());
    };
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if allow_private => {}
        "http" => {
            return Err(
                "must use https (plain http is accepted only when STREAMWATCH__CHANNELS__ALLOW_PRIVATE_TARGETS is on)"
                    .into(),
            );
        }
        _ => return Err("must be an https URL".into()),
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("must not contain a user name or password".into());
    }
    let host = host_of_authority(authority).ok_or("must name a host")?;
    if host.is_empty() {
        return Err("must name a host".into());
    }
    if let Ok(ip) = host.parse::<IpAddr>()
        && !allow_private
        && !is_public(ip)
    {
        return Err(format!(
            "points to a private or reserved address ({ip}); only public addresses are allowed"
        ));
    }
    Ok(())
}

/// The host of `host[:port]` or `[v6][:port]`, without brackets; `None` if the port is not
/// digits.
pub fn host_of_authority(authority: &str) -> Option<&str> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some(host),
            p if p.starts_with(':') && p[1..].chars().all(|c| c.is_ascii_digit()) => Some(host),
            _ => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => Some(host),
        Some(_) => None,
        None => Some(authority),
    }
}

/// Whether `ip` is a public unicast address: not loopback, private (RFC 1918, unique local),
/// link-local (and so not the 169.254.169.254 cloud metadata service), CGNAT (100.64/10),
/// multicast, broadcast, documentation, benchmarking, "this network" or otherwise reserved.
/// IPv4-mapped and -compatible IPv6 addresses are judged by their IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // ::a.b.c.d (deprecated IPv4-compatible) and NAT64 64:ff9b::/96 embed IPv4.
            if s[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_loopback() && !v6.is_unspecified() {
                let o = v6.octets();
                return is_public(IpAddr::V4([o[12], o[13], o[14], o[15]].into()));
            }
            if s[0] == 0x64 && s[1] == 0xff9b {
                let o = v6.octets();
                return is_public(IpAddr::V4([o[12], o[13], o[14], o[15]].into()));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo etc.)
                || s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} must not be public");
        }
        for ip in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn target_urls_follow_the_outbound_rules() {
        assert!(check_target_url("https://hooks.example.com/x", false).is_ok());
        assert!(check_target_url("http://hooks.example.com/x", false).is_err());
        assert!(check_target_url("http://hooks.example.com/x", true).is_ok());
        assert!(check_target_url("https://127.0.0.1/x", false).is_err());
        assert!(check_target_url("https://127.0.0.1:8443/x", true).is_ok());
        assert!(check_target_url("https://[::1]/x", false).is_err());
        assert!(check_target_url("https://169.254.169.254/latest", false).is_err());
        assert!(check_target_url("https://user:pw@example.com/", false).is_err());
        assert!(check_target_url("ftp://example.com/", true).is_err());
        assert!(check_target_url("example.com", true).is_err());
        assert!(check_target_url("https:///path", true).is_err());
    }

    #[test]
    fn each_kind_parses_its_fields_and_points_at_problems() {
        let c = ChannelConfig::parse(
            ChannelKind::Webhook,
            &json!({"url": "https://example.com/hook", "secret": "s3"}),
            "/config",
            false,
        )
        .unwrap();
        assert_eq!(c.redacted()["secret"], REDACTED);
        assert_eq!(
            ChannelConfig::from_stored(ChannelKind::Webhook, &c.to_stored()),
            Some(c)
        );
        let e = ChannelConfig::parse(
            ChannelKind::Slack,
            &json!({"webhook_url": "http://10.0.0.1/x", "extra": 1}),
            "/config",
            false,
        )
        .unwrap_err();
        let pointers: Vec<&str> = e.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/config/webhook_url"), "{e:?}");
        assert!(pointers.contains(&"/config/extra"), "{e:?}");
        let e = ChannelConfig::parse(
            ChannelKind::Email,
            &json!({"recipients": ["ok@example.com", "nope"]}),
            "/config",
            false,
        )
        .unwrap_err();
        assert_eq!(e[0].pointer, "/config/recipients/1");
        let e = ChannelConfig::parse(
            ChannelKind::Ntfy,
            &json!({"url": "https://ntfy.sh"}),
            "/config",
            false,
        )
        .unwrap_err();
        assert_eq!(e[0].pointer, "/config/url");
        let pd = ChannelConfig::parse(
            ChannelKind::Pagerduty,
            &json!({"routing_key": "R0123456789abcdef0123456789abcdef"}),
            "/config",
            false,
        )
        .unwrap();
        assert_eq!(pd.target_url(), Some(PAGERDUTY_EVENTS_URL));
        assert_eq!(pd.redacted()["routing_key"], REDACTED);
    }

    #[test]
    fn a_patch_keeps_secrets_it_does_not_name() {
        let stored = json!({"url": "https://a.example/x", "secret": "s"});
        let merged = ChannelConfig::merged(
            &stored,
            &json!({"url": "https://b.example/y", "secret": REDACTED}),
        );
        assert_eq!(merged, json!({"url": "https://b.example/y", "secret": "s"}));
    }
}
