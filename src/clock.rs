//! The one clock that activity, freshness, status and notifications read (SPEC section 5:
//! "everything that reads time uses the same clock", JWT expiry excepted).
//!
//! In simulated mode (`STREAMWATCH__CLOCK__SIMULATED=true`, refused in production) the time is
//! the system time plus an offset that `POST /api/v1/admin/clock` moves forward. The offset
//! lives in PostgreSQL (`simulated_clock`) so that several replicas agree; each replica keeps a
//! copy that it refreshes at every sweep and admin call ([`Clock::refresh`]).

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// `Some` in simulated mode: the offset in milliseconds.
    simulated: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { simulated: None }
    }

    pub fn simulated() -> Self {
        Self {
            simulated: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    pub fn is_simulated(&self) -> bool {
        self.simulated.is_some()
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.simulated {
            None => Utc::now(),
            Some(offset) => Utc::now() + Duration::milliseconds(offset.load(Ordering::Relaxed)),
        }
    }

    /// Reads the shared offset (simulated mode only).
    pub async fn refresh(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        if let Some(offset) = &self.simulated {
            let ms: Option<i64> = sqlx::query_scalar("SELECT offset_ms FROM simulated_clock")
                .fetch_optional(pool)
                .await?;
            offset.store(ms.unwrap_or(0), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Moves the shared simulated time forward by `by` and returns the new now. `None` when the
    /// clock is not simulated.
    pub async fn advance(
        &self,
        pool: &PgPool,
        by: Duration,
    ) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let Some(offset) = &self.simulated else {
            return Ok(None);
        };
        let ms: i64 = sqlx::query_scalar(
            "INSERT INTO simulated_clock (id, offset_ms) VALUES (true, $1)
             ON CONFLICT (id) DO UPDATE SET offset_ms = simulated_clock.offset_ms + EXCLUDED.offset_ms
             RETURNING offset_ms",
        )
        .bind(by.num_milliseconds())
        .fetch_one(pool)
        .await?;
        offset.store(ms, Ordering::Relaxed);
        Ok(Some(self.now()))
    }
}
