//! The one clock that activity, freshness and status read (SPEC section 5: "everything that
//! reads time uses the same clock"). Today it is the system clock. The simulated clock of the
//! notifications issue plugs in here, so that nothing else changes.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Default)]
pub struct Clock;

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
