//! Login rate limiting, per account and per client address (SPEC section 2).
//!
//! Sliding windows kept in memory. With several replicas each one limits on its own, so the
//! effective limit is the configured one times the number of replicas: still a brake on
//! guessing, at no cost to the database. Documented in docs/ARCHITECTURE.md.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Debug)]
pub struct LoginLimiter {
    window: Duration,
    max_failures_per_account: usize,
    max_attempts_per_address: usize,
    /// Failed attempts per (lower-cased) e-mail address.
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// All attempts per client address.
    attempts: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(
        window: Duration,
        max_failures_per_account: u32,
        max_attempts_per_address: u32,
    ) -> Self {
        Self {
            window,
            max_failures_per_account: max_failures_per_account as usize,
            max_attempts_per_address: max_attempts_per_address as usize,
            failures: Mutex::default(),
            attempts: Mutex::default(),
        }
    }

    /// Records an attempt from `addr` for `account` and says whether it may proceed. `Err`
    /// carries how long to wait (for `Retry-After`).
    pub fn check(&self, account: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        if let Some(addr) = addr {
            let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
            let q = attempts.entry(addr).or_default();
            prune(q, now, self.window);
            if q.len() >= self.max_attempts_per_address {
                return Err(self.retry_after(q, now));
            }
            q.push_back(now);
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = failures.get_mut(account) {
            prune(q, now, self.window);
            if q.len() >= self.max_failures_per_account {
                return Err(self.retry_after(q, now));
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, account: &str, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures
            .entry(account.to_owned())
            .or_default()
            .push_back(now);
        // Keep memory bounded under a spray of made-up accounts.
        if failures.len() > 100_000 {
            let window = self.window;
            failures.retain(|_, q| {
                prune(q, now, window);
                !q.is_empty()
            });
        }
    }

    /// A successful login clears the account's failures.
    pub fn record_success(&self, account: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(account);
    }

    fn retry_after(&self, q: &VecDeque<Instant>, now: Instant) -> Duration {
        q.front()
            .map(|oldest| (*oldest + self.window).saturating_duration_since(now))
            .unwrap_or(self.window)
            .max(Duration::from_secs(1))
    }
}

fn prune(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
}

/// The client's IP address, when the server was started with connect info (it is, outside
/// in-process tests). Used only for login rate limiting, by the JSON API and the web UI.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_locked_after_its_failures_until_the_window_passes() {
        let l = LoginLimiter::new(Duration::from_secs(60), 3, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check("a@x.test", None, t0).is_ok());
            l.record_failure("a@x.test", t0);
        }
        let wait = l.check("a@x.test", None, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        assert!(
            l.check("b@x.test", None, t0).is_ok(),
            "other accounts are unaffected"
        );
        assert!(
            l.check("a@x.test", None, t0 + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn an_address_is_limited_across_accounts() {
        let l = LoginLimiter::new(Duration::from_secs(60), 100, 2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        assert!(l.check("a", Some(ip), t0).is_ok());
        assert!(l.check("b", Some(ip), t0).is_ok());
        assert!(l.check("c", Some(ip), t0).is_err());
    }

    #[test]
    fn success_clears_failures() {
        let l = LoginLimiter::new(Duration::from_secs(60), 1, 100);
        let t0 = Instant::now();
        l.record_failure("a", t0);
        assert!(l.check("a", None, t0).is_err());
        l.record_success("a");
        assert!(l.check("a", None, t0).is_ok());
    }
}
