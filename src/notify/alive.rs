//! The control plane's own uptime. Every sweep (in every replica) records that the service is
//! alive now; the gaps between the recorded spans are time when no replica could reach
//! PostgreSQL (or none ran), and do not count toward inactivity (SPEC section 5). The spans are
//! stored by `store::alive`.

use crate::store;
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

/// Sweeps run every minute; a silence longer than this means the service (or PostgreSQL) was
/// down.
pub const MAX_GAP: Duration = Duration::seconds(150);

/// Extends the newest span to `now` if it ended within [`MAX_GAP`] (or at/after `continues_from`
/// when given: a simulated clock jump that counts as alive time), else starts a new span.
pub async fn record(
    pool: &PgPool,
    now: DateTime<Utc>,
    continues_from: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    let from = continues_from.unwrap_or(now);
    // Checked: at the very start of chrono's time, the span continues from `from` itself.
    let since = from.checked_sub_signed(MAX_GAP).unwrap_or(from);
    store::alive::extend_or_start(pool, now, since).await
}
