//! Notifications: inactivity e-mails (SPEC section 5) and alert routing (section 5a).
//!
//! - [`sweep`]: every minute, decides which e-mails are due (the pure rules are in
//!   `domain::notify_policy`) and writes them to the outbox in the same transaction.
//! - [`sender`]: claims due outbox rows with a lease (`FOR UPDATE SKIP LOCKED`), sends them
//!   through the [`mailer`] (one digest per recipient), and retries failures with backoff for
//!   up to 24 h.
//! - [`email`]: the multipart text + HTML messages, and the signed unsubscribe links.
//! - [`ack`]: the signed one-click acknowledgement links of alerts (SPEC section 5a).
//! - [`outbound`] and [`payloads`]: alert channels other than e-mail (SPEC section 5a): the
//!   SSRF-guarded HTTP client and what each kind (webhook, Slack, Teams, PagerDuty, ntfy) is
//!   sent.
//! - [`routing`]: a license's recipients, channels and escalation steps as outbox targets.
//! - [`alive`]: the control plane's record of its own uptime, whose gaps do not count toward
//!   any license's inactivity.
//!
//! Their SQL is in the store (`store::notifications`, `store::outbox`, `store::alive`).
//! `docs/NOTIFICATIONS.md` explains the rules and the exactly-once design.

pub mod ack;
pub mod alive;
pub mod email;
pub mod mailer;
pub mod outbound;
pub mod payloads;
pub mod routing;
pub mod scheduler;
pub mod sender;
pub mod sweep;
