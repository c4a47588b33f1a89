//! Quiet periods (SPEC section 5b) as use cases: snoozes, and the `"quiet"` field of the
//! status and the license list ([`QuietCalendar`]). Maintenance windows are `app::windows`.
//! The JSON API and the web UI both call these functions; the rules themselves (scopes, RRULE
//! expansion, quiet spans) are `domain::quiet`'s.
//!
//! Every change to a window or a snooze pulls the notification sweep's next check of the
//! licenses concerned forward (`store::windows::recheck`, in the same transaction): a quiet time
//! that starts or ends earlier than the sweep had planned to look again must not wait for it.

use super::{AppError, AppResult, AppState, windows::is_active};
use crate::{
    db,
    domain::quiet::{self, Quiet, Schedule, Scope, Snooze, Window},
    store::{licenses, status::QuietNow, windows},
};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// How far ahead `quiet.until` looks for back-to-back quiet time: past the longest window or
/// snooze (31 days), so that one that is in force now is seen to its end.
pub const QUIET_HORIZON_DAYS: i64 = 32;
/// The longest snooze.
pub const MAX_SNOOZE_DAYS: i64 = 31;

/// The tenant's windows read once for a request: their occurrences over
/// `[now, now + 32 days]`, from which the `"quiet"` field of any number of licenses follows
/// without expanding a recurrence again.
pub struct QuietCalendar {
    now: DateTime<Utc>,
    /// One one-off window per occurrence.
    occurrences: Vec<Window>,
}

impl QuietCalendar {
    /// The calendar of these windows at `now`.
    pub fn new(windows: &[Window], now: DateTime<Utc>) -> Self {
        let to = now + Duration::days(QUIET_HORIZON_DAYS);
        let occurrences = windows
            .iter()
            .flat_map(|w| {
                w.schedule
                    .occurrences(now, to)
                    .into_iter()
                    .map(|(starts_at, ends_at)| Window {
                        id: w.id,
                        scope: w.scope.clone(),
                        schedule: Schedule::OneOff { starts_at, ends_at },
                    })
            })
            .collect();
        Self { now, occurrences }
    }

    /// The tenant's windows (one query), as a calendar at `now`.
    pub async fn load(
        conn: &mut sqlx::PgConnection,
        tenant_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Self, sqlx::Error> {
        let windows: Vec<Window> = windows::windows_of(conn, &[tenant_id])
            .await?
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        Ok(Self::new(&windows, now))
    }

    /// The `"quiet"` field of a license with these tags and this snooze: why it is quiet now
    /// and until when (through back-to-back windows and snoozes), or `None`.
    pub fn quiet(
        &self,
        license_id: Uuid,
        tags: &[String],
        snooze: Option<Snooze>,
    ) -> Option<Quiet> {
        let to = self.now + Duration::days(QUIET_HORIZON_DAYS);
        let spans = quiet::quiet_spans(&self.occurrences, license_id, tags, snooze, self.now, to);
        quiet::quiet_at(&spans, self.now)
    }

    /// The scopes of the windows in force now, for the license list's `quiet` filter.
    pub fn in_force(&self) -> QuietNow {
        let mut now = QuietNow::default();
        for w in self
            .occurrences
            .iter()
            .filter(|w| is_active(&w.schedule, self.now))
        {
            match &w.scope {
                Scope::All => now.all = true,
                Scope::Licenses(ids) => now.license_ids.extend(ids),
                Scope::Tags(tags) => now.tags.extend(tags.iter().cloned()),
            }
        }
        now
    }
}

/// A license's snooze from its two columns.
pub fn snooze_of(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Option<Snooze> {
    Some(Snooze {
        since: since?,
        until: until?,
    })
}

/// A snooze as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SnoozeView {
    pub license_id: Uuid,
    /// When this snooze began (an earlier start when it extends one still in force).
    pub snoozed_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// `until` of a snooze: after `now`, at most 31 days ahead.
pub fn check_until(until: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if until <= now {
        return Err("must be in the future".to_owned());
    }
    if until > now + Duration::days(MAX_SNOOZE_DAYS) {
        return Err(format!("must be at most {MAX_SNOOZE_DAYS} days ahead"));
    }
    Ok(until)
}

/// Snoozes a license until `until` (after now, at most 31 days ahead; 422 at `/until`
/// otherwise; 404 for another tenant's license). A snooze still in force is extended or
/// shortened and keeps its start.
pub async fn snooze(
    state: &AppState,
    tenant_id: Uuid,
    license_id: Uuid,
    until: DateTime<Utc>,
) -> AppResult<SnoozeView> {
    let now = state.clock.now();
    let until = check_until(until, now).map_err(|e| AppError::invalid("/until", e))?;
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    let (snoozed_at, until) = licenses::snooze(&mut tx, tenant_id, license_id, now, until)
        .await?
        .ok_or(AppError::NotFound)?;
    windows::recheck(&mut tx, tenant_id, Some(&[license_id]), now).await?;
    tx.commit().await?;
    Ok(SnoozeView {
        license_id,
        snoozed_at,
        until,
    })
}

/// Ends a license's snooze now, if one is in force (nothing to end is fine: the call is
/// idempotent); 404 for another tenant's license.
pub async fn end_snooze(state: &AppState, tenant_id: Uuid, license_id: Uuid) -> AppResult<()> {
    let now = state.clock.now();
    let mut tx = db::begin_tenant(&state.pool, tenant_id).await?;
    if !licenses::end_snooze(&mut tx, tenant_id, license_id, now).await? {
        return Err(AppError::NotFound);
    }
    windows::recheck(&mut tx, tenant_id, Some(&[license_id]), now).await?;
    tx.commit().await?;
    Ok(())
}
