//! Rate limits per agent token and per license (SPEC section 2: no agent can hurt another
//! tenant). A token lives in a text file on a customer's box; a buggy or hostile agent with it
//! gets 429 with `Retry-After` past its limit, long before its requests could crowd out other
//! tenants' in the writer queue. The defaults are far above what a normal agent sends (one
//! request every 20 to 60 s, a few per second while a spool replays).
//!
//! GCRA from the `governor` crate, keyed by token and by license, in memory: each replica
//! limits on its own, like the login limiter.

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use std::{num::NonZeroU32, time::Duration};
use uuid::Uuid;

/// Past this many tracked keys, keys whose limit has fully recovered are dropped.
const RETAIN_ABOVE: usize = 100_000;

#[derive(Debug)]
pub struct IngestLimits {
    per_token: DefaultKeyedRateLimiter<Uuid>,
    per_license: DefaultKeyedRateLimiter<Uuid>,
}

impl IngestLimits {
    /// Requests per minute for one agent token and for one license (all its tokens), each
    /// also the burst allowed at once. Zero is taken as one.
    pub fn new(per_token_per_minute: u32, per_license_per_minute: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            per_token: RateLimiter::keyed(quota(per_token_per_minute)),
            per_license: RateLimiter::keyed(quota(per_license_per_minute)),
        }
    }

    /// Admits one request of `token` for `license`, or says how long to wait.
    pub fn check(&self, token: Uuid, license: Uuid) -> Result<(), Duration> {
        for (limiter, key) in [(&self.per_token, token), (&self.per_license, license)] {
            if limiter.len() > RETAIN_ABOVE {
                limiter.retain_recent();
            }
            if let Err(not_until) = limiter.check_key(&key) {
                return Err(not_until.wait_time_from(DefaultClock::default().now()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_past_its_limit_waits_while_another_is_served() {
        let limits = IngestLimits::new(3, 100);
        let (flooding, calm, license) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        for _ in 0..3 {
            assert!(limits.check(flooding, license).is_ok());
        }
        let wait = limits.check(flooding, license).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limits.check(calm, Uuid::new_v4()).is_ok());
    }

    #[test]
    fn a_license_is_limited_across_its_tokens() {
        let limits = IngestLimits::new(100, 2);
        let license = Uuid::new_v4();
        assert!(limits.check(Uuid::new_v4(), license).is_ok());
        assert!(limits.check(Uuid::new_v4(), license).is_ok());
        assert!(limits.check(Uuid::new_v4(), license).is_err());
    }
}
