//! The notification e-mails: multipart text + HTML in the tenant's time zone (SPEC section 5),
//! their stable Message-ID, and signed one-click unsubscribe links (RFC 8058).

use crate::domain::status::human_duration;
use askama::Template;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What kind of e-mail an outbox row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The first e-mail of an inactivity episode.
    Inactive,
    /// Reminder `k` (k >= 1) of an inactivity episode.
    Reminder(i32),
    /// Escalation step `k` of an episode (`partial`: a camera-level one).
    Escalated {
        step: i32,
        partial: bool,
    },
    Recovery,
    /// The first e-mail of a camera-level episode (SPEC section 5a).
    Partial,
    /// Reminder `k` of a camera-level episode.
    PartialReminder(i32),
    PartialRecovered,
}

impl Kind {
    /// The kind of an outbox row of `kind` and `k` in an episode of `episode_kind`.
    pub fn from_row(kind: &str, k: i32, episode_kind: &str) -> Self {
        let partial = episode_kind == "partial";
        match kind {
            "reminder" if partial => Self::PartialReminder(k),
            "reminder" => Self::Reminder(k),
            "escalated" => Self::Escalated { step: k, partial },
            "recovery" => Self::Recovery,
            "partial" => Self::Partial,
            "partial_recovered" => Self::PartialRecovered,
            _ => Self::Inactive,
        }
    }

    /// Good news: the episode closed.
    pub fn is_recovery(self) -> bool {
        matches!(self, Self::Recovery | Self::PartialRecovered)
    }

    /// Whether the e-mail is about a silent license (it says for how long).
    fn is_inactivity(self) -> bool {
        matches!(
            self,
            Self::Inactive | Self::Reminder(_) | Self::Escalated { partial: false, .. }
        )
    }

    /// Which of several e-mails about one license is the newest news.
    fn rank(self) -> i32 {
        match self {
            Self::Inactive | Self::Partial => 0,
            Self::Reminder(k) | Self::PartialReminder(k) => k,
            Self::Escalated { step, .. } => 1_000_000 + step,
            Self::Recovery | Self::PartialRecovered => i32::MAX,
        }
    }
}

/// One camera as the license's agents last reported it.
#[derive(Debug, Clone)]
pub struct CameraLine {
    pub id: String,
    pub status: String,
    pub health: i32,
}

/// One e-mail's worth of facts (a digest carries several).
#[derive(Debug, Clone)]
pub struct Item {
    pub kind: Kind,
    pub license_id: Uuid,
    pub license_key: String,
    pub license_name: String,
    pub last_activity_at: Option<DateTime<Utc>>,
    /// The start of the silence: the last activity, or when notifications were enabled.
    pub baseline_at: DateTime<Utc>,
    pub cameras: Vec<CameraLine>,
    /// The signed one-click link that acknowledges the episode (`None` for a recovery).
    pub acknowledge_url: Option<String>,
}

pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The HTML part (`templates/email.html`); askama escapes what it prints.
#[derive(Template)]
#[template(path = "email.html")]
struct HtmlPart<'a> {
    items: &'a [HtmlItem<'a>],
    time_zone: &'a str,
    unsubscribe_url: &'a str,
}

/// One item as the HTML part shows it: the same facts as the text part.
struct HtmlItem<'a> {
    headline: String,
    name: &'a str,
    key: &'a str,
    last_activity: String,
    link: String,
    acknowledge_url: Option<&'a str>,
    cameras: Vec<HtmlCamera<'a>>,
}

struct HtmlCamera<'a> {
    id: &'a str,
    status: &'a str,
    health: String,
}

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

fn headline(item: &Item, now: DateTime<Utc>) -> String {
    let silent = human_duration((now - item.baseline_at).num_seconds());
    let who = format!("{} ({})", item.license_name, item.license_key);
    match item.kind {
        Kind::Inactive => format!("❌ {who} is inactive: no heartbeat for {silent}"),
        Kind::Reminder(k) => format!("❌ {who} is still inactive after {silent} (reminder {k})"),
        Kind::Escalated {
            step,
            partial: false,
        } => {
            format!("🚨 {who} is inactive and not acknowledged after {silent} (escalation {step})")
        }
        Kind::Escalated {
            step,
            partial: true,
        } => {
            format!("🚨 {who}: cameras still not active and not acknowledged (escalation {step})")
        }
        Kind::Recovery => format!("✅ {who} is active again"),
        Kind::Partial => format!("⚠️ {who}: some cameras are not active"),
        Kind::PartialReminder(k) => {
            format!("⚠️ {who}: some cameras are still not active (reminder {k})")
        }
        Kind::PartialRecovered => format!("✅ {who}: every camera is active again"),
    }
}

/// Renders one e-mail for `items` (several: a digest) in time zone `tz`.
pub fn render(
    items: &[Item],
    tz: Tz,
    now: DateTime<Utc>,
    public_url: &str,
    unsubscribe_url: &str,
) -> Rendered {
    // The subject counts licenses, not e-mails: an alert and its reminder for one license,
    // delivered together after an outage, are still about one license.
    let mut licenses: Vec<Uuid> = items.iter().map(|i| i.license_id).collect();
    licenses.sort();
    licenses.dedup();
    let subject = if licenses.len() == 1 {
        // The newest news about that license: recovery over reminders over the first alert.
        let newest = items.iter().max_by_key(|i| i.kind.rank());
        newest.map(|i| headline(i, now)).unwrap_or_default()
    } else {
        let recovered = |id: &Uuid| {
            items
                .iter()
                .filter(|i| i.license_id == *id)
                .all(|i| i.kind.is_recovery())
        };
        let back = licenses.iter().filter(|id| recovered(id)).count();
        let inactive = licenses.len() - back;
        match (inactive, back) {
            (0, r) => format!("✅ {r} licenses are active again"),
            (i, 0) => format!("❌ {i} licenses are inactive"),
            (i, r) => format!("❌ {i} licenses inactive, ✅ {r} active again"),
        }
    };
    let mut text = String::new();
    let mut html_items = Vec::with_capacity(items.len());
    for item in items {
        let link = format!("{public_url}/licenses/{}", item.license_id);
        let last = match item.last_activity_at {
            Some(t) => format!(
                "{} ({} ago)",
                local(t, tz),
                human_duration((now - t).num_seconds())
            ),
            None => "never (the license has not reported yet)".to_owned(),
        };
        let head = headline(item, now);
        text.push_str(&format!(
            "{head}\n\nLicense:       {} ({})\nLast activity: {last}\n",
            item.license_name, item.license_key
        ));
        if item.kind.is_inactivity() {
            text.push_str(&format!(
                "Inactive for:  {}\n",
                human_duration((now - item.baseline_at).num_seconds())
            ));
        }
        let mut cameras = Vec::with_capacity(item.cameras.len());
        if item.cameras.is_empty() {
            text.push_str("Cameras at last contact: none reported\n");
        } else {
            text.push_str("Cameras at last contact:\n");
            for c in &item.cameras {
                let health = if c.health < 0 {
                    "unknown".to_owned()
                } else {
                    c.health.to_string()
                };
                text.push_str(&format!("  - {}: {}, health {health}\n", c.id, c.status));
                cameras.push(HtmlCamera {
                    id: &c.id,
                    status: &c.status,
                    health,
                });
            }
        }
        text.push_str(&format!("Activity Status: {link}\n"));
        if let Some(url) = &item.acknowledge_url {
            text.push_str(&format!(
                "Acknowledge (stops reminders and escalation): {url}\n"
            ));
        }
        text.push('\n');
        html_items.push(HtmlItem {
            headline: head,
            name: &item.license_name,
            key: &item.license_key,
            last_activity: last,
            link,
            acknowledge_url: item.acknowledge_url.as_deref(),
            cameras,
        });
    }
    text.push_str(&format!(
        "Times are in {}.\nStop these e-mails for this recipient: {unsubscribe_url}\n",
        tz.name()
    ));
    let html = HtmlPart {
        items: &html_items,
        time_zone: tz.name(),
        unsubscribe_url,
    }
    .render()
    .unwrap_or_else(|_| unreachable!("the template prints only strings, which cannot fail"));
    Rendered {
        subject,
        text,
        html,
    }
}

/// A Message-ID derived only from the (episode, e-mail, recipient) keys it carries, so that a
/// resend after a crash carries the same id and can be de-duplicated downstream.
pub fn message_id(keys: &[(Uuid, String, i32, String)]) -> String {
    let mut sorted: Vec<String> = keys
        .iter()
        .map(|(e, kind, k, to)| format!("{e}/{kind}/{k}/{to}"))
        .collect();
    sorted.sort();
    let digest = Sha256::digest(sorted.join("\n").as_bytes());
    format!("<{}@streamwatch>", hex::encode(&digest[..16]))
}

/// Signs and checks unsubscribe tokens: "stop e-mailing `recipient` about these licenses".
#[derive(Clone)]
pub struct UnsubscribeKeys {
    key: Vec<u8>,
}

impl std::fmt::Debug for UnsubscribeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsubscribeKeys([REDACTED])")
    }
}

/// What an unsubscribe token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub tenant_id: Uuid,
    pub recipient: String,
    pub licenses: Vec<Uuid>,
}

impl UnsubscribeKeys {
    /// Derived from the server's JWT secret, under its own label.
    pub fn new(secret: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"streamwatch unsubscribe v1\0");
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

    pub fn sign(&self, u: &Unsubscribe) -> String {
        let licenses: Vec<String> = u.licenses.iter().map(Uuid::to_string).collect();
        let payload = format!("{}|{}|{}", u.tenant_id, u.recipient, licenses.join(","));
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()))
        )
    }

    pub fn verify(&self, token: &str) -> Option<Unsubscribe> {
        let (payload, sig) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        if !crate::auth::token::constant_time_eq(&self.mac(&payload), &sig) {
            return None;
        }
        let text = String::from_utf8(payload).ok()?;
        let mut parts = text.splitn(3, '|');
        let tenant_id = parts.next()?.parse().ok()?;
        let recipient = parts.next()?.to_owned();
        let licenses = parts
            .next()?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Uuid>, _>>()
            .ok()?;
        Some(Unsubscribe {
            tenant_id,
            recipient,
            licenses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn item(kind: Kind) -> Item {
        Item {
            kind,
            license_id: Uuid::nil(),
            license_key: "LIC-001".to_owned(),
            license_name: "Depot <7>".to_owned(),
            last_activity_at: Some(Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()),
            baseline_at: Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap(),
            cameras: vec![CameraLine {
                id: "camera-1".to_owned(),
                status: "offline".to_owned(),
                health: 0,
            }],
            acknowledge_url: (!kind.is_recovery())
                .then(|| "https://sw.example/acknowledge?token=t&x=<1>".to_owned()),
        }
    }

    #[test]
    fn an_e_mail_has_the_facts_in_the_tenants_time_zone_and_escapes_html() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 13, 0).unwrap();
        let r = render(
            &[item(Kind::Inactive)],
            chrono_tz::Europe::Berlin,
            now,
            "https://sw.test",
            "https://sw.test/unsubscribe?token=x",
        );
        assert_eq!(
            r.subject,
            "❌ Depot <7> (LIC-001) is inactive: no heartbeat for 2 h 13 min"
        );
        assert!(
            r.text
                .contains("Last activity: 2026-11-23 09:00 CET (2 h 13 min ago)"),
            "{}",
            r.text
        );
        assert!(r.text.contains("camera-1: offline, health 0"));
        assert!(
            r.text
                .contains("https://sw.test/licenses/00000000-0000-0000-0000-000000000000")
        );
        // askama's escaper writes numeric references: `&#60;` is `&lt;`.
        assert!(r.html.contains("Depot &#60;7&#62;") && !r.html.contains("Depot <7>"));
        assert!(r.html.contains("unsubscribe?token=x"));
        // The acknowledgement link, in both parts, escaped in the HTML one.
        assert!(r.text.contains("Acknowledge (stops reminders and escalation): https://sw.example/acknowledge?token=t&x=<1>"));
        assert!(
            r.html.contains("acknowledge?token=t&#38;x=&#60;1&#62;"),
            "{}",
            r.html
        );
    }

    #[test]
    fn a_digest_names_how_many_licenses() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        let with_id = |kind, n: u128| Item {
            license_id: Uuid::from_u128(n),
            ..item(kind)
        };
        let three = [
            with_id(Kind::Inactive, 1),
            with_id(Kind::Reminder(2), 2),
            with_id(Kind::Recovery, 3),
        ];
        let r = render(&three, chrono_tz::UTC, now, "u", "v");
        assert_eq!(r.subject, "❌ 2 licenses inactive, ✅ 1 active again");
        assert_eq!(r.text.matches("Activity Status:").count(), 3);
        // One license's alert and reminder delivered together: still about one license.
        let r = render(
            &[item(Kind::Inactive), item(Kind::Reminder(1))],
            chrono_tz::UTC,
            now,
            "u",
            "v",
        );
        assert!(
            r.subject.contains("still inactive") && r.subject.contains("reminder 1"),
            "{}",
            r.subject
        );
    }

    #[test]
    fn message_ids_are_stable_and_order_independent() {
        let a = (Uuid::nil(), "inactive".to_owned(), 0, "a@x.test".to_owned());
        let b = (Uuid::nil(), "reminder".to_owned(), 1, "a@x.test".to_owned());
        assert_eq!(
            message_id(&[a.clone(), b.clone()]),
            message_id(&[b.clone(), a.clone()])
        );
        assert_ne!(message_id(std::slice::from_ref(&a)), message_id(&[b]));
        assert!(message_id(&[a]).ends_with("@streamwatch>"));
    }

    #[test]
    fn unsubscribe_tokens_verify_and_resist_tampering() {
        let keys = UnsubscribeKeys::new(b"secret");
        let u = Unsubscribe {
            tenant_id: Uuid::new_v4(),
            recipient: "a@x.test".to_owned(),
            licenses: vec![Uuid::new_v4(), Uuid::new_v4()],
        };
        let token = keys.sign(&u);
        assert_eq!(keys.verify(&token), Some(u.clone()));
        assert_eq!(UnsubscribeKeys::new(b"other").verify(&token), None);
        let (payload, sig) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(format!("{}|evil@x.test|", u.tenant_id));
        assert_eq!(keys.verify(&format!("{forged}.{sig}")), None);
        assert_eq!(keys.verify(payload), None);
    }
}
