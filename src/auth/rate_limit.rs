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
    /// Per (lower-cased) e-mail address: its failed attempts, and the attempts still being
    /// checked. The two count together, so that a burst of parallel guesses cannot all pass
    /// before the first failure is recorded.
    accounts: Mutex<HashMap<String, Account>>,
    /// All attempts per client address.
    attempts: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

#[derive(Debug, Default)]
struct Account {
    failures: VecDeque<Instant>,
    in_flight: usize,
}

/// Past this many tracked accounts or addresses, the maps drop what the window has expired:
/// memory stays bounded under a spray of made-up accounts or addresses.
const PRUNE_ABOVE: usize = 100_000;

/// One login attempt under way. End it with [`failed`](Self::failed) or
/// [`succeeded`](Self::succeeded); dropped otherwise (an error), it only stops counting as in
/// flight.
#[must_use]
#[derive(Debug)]
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    account: String,
}

impl Attempt<'_> {
    /// Wrong password or unknown account: counts toward the account's limit.
    pub fn failed(self, now: Instant) {
        let mut accounts = self.limiter.lock_accounts();
        accounts
            .entry(self.account.clone())
            .or_default()
            .failures
            .push_back(now);
        if accounts.len() > PRUNE_ABOVE {
            let window = self.limiter.window;
            accounts.retain(|_, a| {
                prune(&mut a.failures, now, window);
                !a.failures.is_empty() || a.in_flight > 0
            });
        }
    }

    /// The right password: the account's failures are forgotten.
    pub fn succeeded(self) {
        if let Some(a) = self.limiter.lock_accounts().get_mut(&self.account) {
            a.failures.clear();
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut accounts = self.limiter.lock_accounts();
        if let Some(a) = accounts.get_mut(&self.account) {
            a.in_flight = a.in_flight.saturating_sub(1);
            if a.in_flight == 0 && a.failures.is_empty() {
                accounts.remove(&self.account);
            }
        }
    }
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
            accounts: Mutex::default(),
            attempts: Mutex::default(),
        }
    }

    fn lock_accounts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Account>> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts an attempt from `addr` for `account`, or says how long to wait (for
    /// `Retry-After`): past the address's attempts, or past the account's failures plus its
    /// attempts in flight.
    pub fn begin(
        &self,
        account: &str,
        addr: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt<'_>, Duration> {
        if let Some(addr) = addr {
            let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
            if attempts.len() > PRUNE_ABOVE {
                let window = self.window;
                attempts.retain(|_, q| {
                    prune(q, now, window);
                    !q.is_empty()
                });
            }
            let q = attempts.entry(addr).or_default();
            prune(q, now, self.window);
            if q.len() >= self.max_attempts_per_address {
                return Err(self.retry_after(q, now));
            }
            q.push_back(now);
        }
        let mut accounts = self.lock_accounts();
        let a = accounts.entry(account.to_owned()).or_default();
        prune(&mut a.failures, now, self.window);
        if a.failures.len() + a.in_flight >= self.max_failures_per_account {
            let wait = if a.failures.is_empty() {
                // Only attempts in flight: they end within a second or two.
                Duration::from_secs(1)
            } else {
                self.retry_after(&a.failures, now)
            };
            return Err(wait);
        }
        a.in_flight += 1;
        Ok(Attempt {
            limiter: self,
            account: account.to_owned(),
        })
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
            l.begin("a@x.test", None, t0).unwrap().failed(t0);
        }
        let wait = l.begin("a@x.test", None, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        assert!(
            l.begin("b@x.test", None, t0).is_ok(),
            "other accounts are unaffected"
        );
        assert!(
            l.begin("a@x.test", None, t0 + Duration::from_secs(61))
                .is_ok()
        );
    }

    #[test]
    fn attempts_in_flight_count_toward_the_account_limit() {
        let l = LoginLimiter::new(Duration::from_secs(60), 3, 100);
        let t0 = Instant::now();
        let parallel: Vec<_> = (0..3).map(|_| l.begin("a", None, t0).unwrap()).collect();
        assert!(
            l.begin("a", None, t0).is_err(),
            "a fourth parallel guess waits"
        );
        drop(parallel);
        assert!(
            l.begin("a", None, t0).is_ok(),
            "ended attempts free their slot"
        );
    }

    #[test]
    fn an_address_is_limited_across_accounts() {
        let l = LoginLimiter::new(Duration::from_secs(60), 100, 2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        assert!(l.begin("a", Some(ip), t0).is_ok());
        assert!(l.begin("b", Some(ip), t0).is_ok());
        assert!(l.begin("c", Some(ip), t0).is_err());
    }

    #[test]
    fn success_clears_failures() {
        let l = LoginLimiter::new(Duration::from_secs(60), 2, 100);
        let t0 = Instant::now();
        l.begin("a", None, t0).unwrap().failed(t0);
        l.begin("a", None, t0).unwrap().failed(t0);
        assert!(l.begin("a", None, t0).is_err());
        let l = LoginLimiter::new(Duration::from_secs(60), 2, 100);
        l.begin("a", None, t0).unwrap().failed(t0);
        l.begin("a", None, t0).unwrap().succeeded();
        l.begin("a", None, t0).unwrap().failed(t0);
        assert!(
            l.begin("a", None, t0).is_ok(),
            "one failure since the success"
        );
    }

    #[test]
    fn expired_entries_are_pruned_past_the_bound() {
        let l = LoginLimiter::new(Duration::from_secs(60), 3, 3);
        let t0 = Instant::now();
        for i in 0..=PRUNE_ABOVE as u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            drop(l.begin("a", Some(ip), t0));
        }
        let later = t0 + Duration::from_secs(61);
        drop(l.begin("a", Some([10, 0, 0, 1].into()), later));
        assert!(l.attempts.lock().unwrap().len() < 10);
    }
}
