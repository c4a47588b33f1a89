//! Verified agent tokens, cached in memory, so that an ingest request does not read
//! `agent_tokens`, `licenses` and `tenants` every time (one of the largest fixed costs of a
//! single-heartbeat request, docs/BENCHMARKS.md).
//!
//! Keyed by the SHA-256 of the secret, never the secret. An entry holds what the ingest route
//! needs: the tenant, the license, the token id, the license's check interval, whether the tenant
//! is suspended, and when the token was last marked used.
//!
//! Revoking a token must act at once on every replica (SPEC section 2), so the cache is only used
//! while it can hear about changes:
//!
//! - Triggers (migration `agent_token_invalidation`) send a notification on
//!   [`CHANNEL`] in the transaction of every change that can make an entry wrong: a token revoked
//!   or deleted, a license deleted or its check interval changed, a tenant suspended, reinstated
//!   or deleted.
//! - Each process runs one listener ([`spawn_listener`]) on its own connection, which evicts what
//!   a notification names as soon as it arrives.
//! - While the listener is not connected (at start, after an error, while it reconnects) the
//!   cache is bypassed: every request reads the database, as without a cache. On every
//!   (re)connection the cache is emptied, because notifications sent meanwhile were missed.
//! - The listener trusts its connection only while probes it sends itself through another
//!   connection of the pool come back (see `listen`).
//! - An entry also lives at most [`TTL`]: a safety net should a notification ever be lost
//!   without the connection failing.
//!
//! `ingest.agent_token_cache = false` turns all of this off: no listener, every request reads
//! the database.
//!
//! A request that reads the database and then fills the cache could race with a revocation
//! committed between its read and its insert. Every invalidation therefore bumps an epoch, and a
//! fill is dropped unless the epoch is still the one seen before the read ([`Ticket`]).

use crate::{config::TokenListenerFaults, store::credentials};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, postgres::PgListener};
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use uuid::Uuid;

pub use credentials::AGENT_TOKEN_CHANNEL as CHANNEL;

/// Entries kept at most. An entry is about 150 bytes with the map's overhead, so a full cache
/// is about 30 MiB; 200,000 agents reporting once a minute all stay cached.
pub const CAPACITY: usize = 200_000;
/// How long an entry is trusted at most, notifications or not.
pub const TTL: Duration = Duration::from_secs(60);
/// The first wait before reconnecting the listener; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// `last_used_at` is written at most this often per token ("is this token still in use?").
pub const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// What the ingest route needs to know of a verified agent token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedAgent {
    pub tenant_id: Uuid,
    pub license_id: Uuid,
    pub token_id: Uuid,
    pub check_interval_seconds: i32,
    /// The tenant is suspended: the request gets 403.
    pub suspended: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    agent: VerifiedAgent,
    last_used_at: Option<DateTime<Utc>>,
    expires: Instant,
}

/// What a notification on [`CHANNEL`] asks to evict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// The token with this secret hash.
    Token(Vec<u8>),
    /// Every token of this license.
    License(Uuid),
    /// Every token of this tenant.
    Tenant(Uuid),
    /// Everything (also for a payload this build does not know: safe by default).
    All,
}

impl Invalidation {
    /// Reads a notification's payload (see the migration for the format). `None` for a
    /// listener's probe (`probe:...`), which names nothing to evict.
    pub fn parse(payload: &str) -> Option<Self> {
        let parsed = match payload.split_once(':') {
            Some(("probe", _)) => return None,
            Some(("token", hex)) => hex::decode(hex).ok().map(Self::Token),
            Some(("license", id)) => id.parse().ok().map(Self::License),
            Some(("tenant", id)) => id.parse().ok().map(Self::Tenant),
            _ => None,
        };
        Some(parsed.unwrap_or(Self::All))
    }
}

/// Proof that a lookup started while the cache was in use, at a given epoch: a fill with it is
/// kept only if nothing was invalidated since.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Vec<u8>, Entry>,
    /// Bumped by every invalidation, (re)connection and disconnection.
    epoch: u64,
}

/// The cache and its listener's state. One per process, shared by every request.
#[derive(Debug)]
pub struct TokenCache {
    inner: Mutex<Inner>,
    capacity: usize,
    ttl: Duration,
    /// The listener is connected and listening: only then is the cache used.
    connected: AtomicBool,
    /// Times the listener lost its connection (or failed to connect) since start.
    listener_failures: AtomicU64,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(CAPACITY, TTL)
    }
}

impl TokenCache {
    /// An empty cache, bypassed until [`TokenCache::listening`] is called.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            ttl,
            connected: AtomicBool::new(false),
            listener_failures: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent in a way that
        // matters (at worst an entry too few), so a poisoned lock is used as it is.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the cache is in use (its listener is connected).
    pub fn is_listening(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub fn listener_failures(&self) -> u64 {
        self.listener_failures.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached agent for this secret hash, if the cache is in use and the entry is fresh.
    pub fn get(&self, hash: &[u8], now: Instant) -> Option<VerifiedAgent> {
        if !self.is_listening() {
            return None;
        }
        let mut inner = self.lock();
        match inner.entries.get(hash) {
            Some(e) if e.expires > now => Some(e.agent),
            Some(_) => {
                inner.entries.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Taken before reading the database for a miss; `None` while the cache is bypassed.
    pub fn ticket(&self) -> Option<Ticket> {
        if !self.is_listening() {
            return None;
        }
        Some(Ticket(self.lock().epoch))
    }

    /// Stores what the database said, unless something was invalidated since `ticket` (the
    /// read may predate that change) or the cache is bypassed now.
    pub fn insert(
        &self,
        ticket: Ticket,
        hash: Vec<u8>,
        agent: VerifiedAgent,
        last_used_at: Option<DateTime<Utc>>,
        now: Instant,
    ) -> bool {
        let mut inner = self.lock();
        if inner.epoch != ticket.0 || !self.is_listening() {
            return false;
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&hash) {
            make_room(&mut inner.entries, self.capacity, now);
        }
        inner.entries.insert(
            hash,
            Entry {
                agent,
                last_used_at,
                expires: now + self.ttl,
            },
        );
        true
    }

    /// Whether this request should write `last_used_at` (at most once per [`TOUCH_EVERY`] per
    /// token and process): marks the entry used now if so, so that concurrent requests of the
    /// same token do not all write it.
    pub fn claim_touch(&self, hash: &[u8], now: DateTime<Utc>) -> bool {
        let mut inner = self.lock();
        match inner.entries.get_mut(hash) {
            Some(e) if e.last_used_at.is_none_or(|t| now - t > TOUCH_EVERY) => {
                e.last_used_at = Some(now);
                true
            }
            Some(_) => false,
            // Evicted meanwhile: the caller read the database, which decides.
            None => true,
        }
    }

    /// Evicts what a notification names.
    pub fn invalidate(&self, what: &Invalidation) {
        let mut inner = self.lock();
        inner.epoch += 1;
        match what {
            Invalidation::Token(hash) => {
                inner.entries.remove(hash);
            }
            Invalidation::License(id) => inner.entries.retain(|_, e| e.agent.license_id != *id),
            Invalidation::Tenant(id) => inner.entries.retain(|_, e| e.agent.tenant_id != *id),
            Invalidation::All => inner.entries.clear(),
        }
    }

    /// The listener is connected and listening: empty the cache (notifications may have been
    /// missed before) and use it from now on.
    pub fn listening(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.epoch += 1;
        self.connected.store(true, Ordering::Release);
        metrics::gauge!("agent_token_cache_listening").set(1.0);
    }

    /// The listener lost its connection: bypass the cache until it is back.
    pub fn not_listening(&self) {
        let mut inner = self.lock();
        self.connected.store(false, Ordering::Release);
        inner.epoch += 1;
        metrics::gauge!("agent_token_cache_listening").set(0.0);
    }
}

/// Frees at least one place in a full map: expired entries first; if none, an arbitrary eighth
/// of the entries (the map's iteration order is random per process, so this is random eviction:
/// no bookkeeping on every hit, and an evicted agent costs one database read on its next
/// request).
fn make_room(entries: &mut HashMap<Vec<u8>, Entry>, capacity: usize, now: Instant) {
    entries.retain(|_, e| e.expires > now);
    if entries.len() < capacity {
        return;
    }
    let evict: Vec<Vec<u8>> = entries
        .keys()
        .take((capacity / 8).max(1))
        .cloned()
        .collect();
    for key in evict {
        entries.remove(&key);
    }
}

/// Starts the listener task that keeps `cache` in step with the database (see the module
/// documentation). It holds one connection of `pool` while connected, reconnects with a backoff
/// (100 ms doubling to 5 s) after a failure, and stops when the pool is closed.
pub fn spawn_listener(pool: PgPool, cache: Arc<TokenCache>, faults: TokenListenerFaults) {
    tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        loop {
            while faults
                .hold
                .as_ref()
                .is_some_and(|h| h.load(Ordering::Acquire))
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let failure = match connect(&pool).await {
                Ok(mut listener) => {
                    let failure = listen(&mut listener, &pool, &cache, &mut backoff).await;
                    cache.not_listening();
                    failure
                }
                Err(e) => e,
            };
            if matches!(failure, sqlx::Error::PoolClosed) {
                return;
            }
            cache.listener_failures.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("agent_token_cache_listener_restarts_total").increment(1);
            tracing::warn!(error = %failure, ?backoff, "agent token cache: the invalidation listener is down; every ingest request reads the database until it is back");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnecting is ours to do: the cache must be bypassed and emptied in between.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Applies notifications until the connection fails; returns why.
///
/// The cache is used only once a probe, sent through another connection of the pool, has come
/// back on this one: a `LISTEN` through a pooler that does not keep the session (PgBouncer in
/// transaction mode) succeeds but hears nothing, and must not enable the cache. Probes go on
/// every [`PROBE_EVERY`]; one unanswered within [`PROBE_TIMEOUT`] (a connection that died
/// without a reset, a stalled server) drops the connection and bypasses the cache at once.
async fn listen(
    listener: &mut PgListener,
    pool: &PgPool,
    cache: &TokenCache,
    backoff: &mut Duration,
) -> sqlx::Error {
    let prober = Prober::new();
    let probes = tokio::spawn(prober.clone().run(pool.clone()));
    let failure = loop {
        let received = tokio::select! {
            received = listener.try_recv() => received,
            // Dropping `try_recv` is safe here: the connection is abandoned with it.
            () = prober.dead.notified() => break sqlx::Error::Protocol(
                "a probe notification did not come back in time".to_owned(),
            ),
        };
        match received {
            Ok(Some(notification)) => match Invalidation::parse(notification.payload()) {
                Some(what) => {
                    metrics::counter!("agent_token_cache_invalidations_total").increment(1);
                    cache.invalidate(&what);
                }
                None => {
                    if prober.answered(notification.payload()) && !cache.is_listening() {
                        cache.listening();
                        *backoff = MIN_BACKOFF;
                        tracing::info!("agent token cache: listening for invalidations");
                    }
                }
            },
            Ok(None) => {
                break sqlx::Error::Protocol("the listener's connection was lost".to_owned());
            }
            Err(e) => break e,
        }
    };
    probes.abort();
    failure
}

/// How often the listener checks that notifications reach it, and how long it waits for one.
const PROBE_EVERY: Duration = Duration::from_secs(10);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The probes of one listener connection: `probe:<nonce>:<n>`, `n` counting up.
#[derive(Clone)]
struct Prober {
    nonce: Uuid,
    /// The highest `n` that came back.
    answered: Arc<AtomicU64>,
    /// Notified when a probe did not come back in time.
    dead: Arc<tokio::sync::Notify>,
}

impl Prober {
    fn new() -> Self {
        Self {
            nonce: Uuid::new_v4(),
            answered: Arc::new(AtomicU64::new(0)),
            dead: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Records a probe payload of this connection; whether it was one.
    fn answered(&self, payload: &str) -> bool {
        let Some(n) = payload
            .strip_prefix("probe:")
            .and_then(|rest| rest.split_once(':'))
            .filter(|(nonce, _)| *nonce == self.nonce.simple().to_string())
            .and_then(|(_, n)| n.parse::<u64>().ok())
        else {
            return false;
        };
        self.answered.fetch_max(n, Ordering::AcqRel);
        true
    }

    async fn run(self, pool: PgPool) {
        for n in 1u64.. {
            let payload = format!("probe:{}:{n}", self.nonce.simple());
            let sent = credentials::notify_agent_tokens(&pool, &payload).await;
            if let Err(e) = &sent {
                tracing::warn!(error = %e, "agent token cache: sending a probe failed");
            }
            tokio::time::sleep(PROBE_TIMEOUT).await;
            if sent.is_err() || self.answered.load(Ordering::Acquire) < n {
                self.dead.notify_one();
                return;
            }
            tokio::time::sleep(PROBE_EVERY.saturating_sub(PROBE_TIMEOUT)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(tenant: Uuid, license: Uuid) -> VerifiedAgent {
        VerifiedAgent {
            tenant_id: tenant,
            license_id: license,
            token_id: Uuid::new_v4(),
            check_interval_seconds: 600,
            suspended: false,
        }
    }

    fn listening(capacity: usize, ttl: Duration) -> TokenCache {
        let cache = TokenCache::new(capacity, ttl);
        cache.listening();
        cache
    }

    fn fill(cache: &TokenCache, hash: &[u8], agent: VerifiedAgent, now: Instant) -> bool {
        let ticket = cache.ticket().expect("listening");
        cache.insert(ticket, hash.to_vec(), agent, None, now)
    }

    #[test]
    fn a_filled_entry_is_served_until_its_ttl_runs_out() {
        let cache = listening(10, Duration::from_secs(60));
        let now = Instant::now();
        let a = agent(Uuid::new_v4(), Uuid::new_v4());
        assert!(fill(&cache, b"h1", a, now));
        assert_eq!(cache.get(b"h1", now + Duration::from_secs(59)), Some(a));
        assert_eq!(cache.get(b"h1", now + Duration::from_secs(60)), None);
        assert!(cache.is_empty(), "an expired entry is dropped when met");
    }

    #[test]
    fn the_cache_is_bypassed_while_not_listening_and_emptied_when_listening_again() {
        let cache = listening(10, Duration::from_secs(60));
        let now = Instant::now();
        let a = agent(Uuid::new_v4(), Uuid::new_v4());
        assert!(fill(&cache, b"h1", a, now));
        cache.not_listening();
        assert_eq!(cache.get(b"h1", now), None, "bypassed");
        assert!(cache.ticket().is_none(), "and not filled");
        cache.listening();
        assert_eq!(cache.get(b"h1", now), None, "emptied on reconnection");
        assert!(cache.is_empty());
    }

    #[test]
    fn a_fill_that_started_before_an_invalidation_is_dropped() {
        let cache = listening(10, Duration::from_secs(60));
        let now = Instant::now();
        let a = agent(Uuid::new_v4(), Uuid::new_v4());
        let ticket = cache.ticket().unwrap();
        // A revocation commits (and is heard) while the request reads the database.
        cache.invalidate(&Invalidation::Token(b"h1".to_vec()));
        assert!(!cache.insert(ticket, b"h1".to_vec(), a, None, now));
        assert_eq!(cache.get(b"h1", now), None);
        // So does one that started before the listener was lost, or reconnected.
        let ticket = cache.ticket().unwrap();
        cache.not_listening();
        cache.listening();
        assert!(!cache.insert(ticket, b"h1".to_vec(), a, None, now));
    }

    #[test]
    fn invalidations_evict_the_token_the_license_or_the_tenant_named() {
        let cache = listening(100, Duration::from_secs(60));
        let now = Instant::now();
        let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
        let (l1, l2, l3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        for (hash, a) in [
            (b"a1", agent(t1, l1)),
            (b"a2", agent(t1, l1)),
            (b"b1", agent(t1, l2)),
            (b"c1", agent(t2, l3)),
            (b"c2", agent(t2, l3)),
        ] {
            assert!(fill(&cache, hash, a, now));
        }
        cache.invalidate(&Invalidation::Token(b"a1".to_vec()));
        assert!(cache.get(b"a1", now).is_none());
        assert!(cache.get(b"a2", now).is_some());
        cache.invalidate(&Invalidation::License(l1));
        assert!(cache.get(b"a2", now).is_none());
        assert!(cache.get(b"b1", now).is_some());
        cache.invalidate(&Invalidation::Tenant(t2));
        assert!(cache.get(b"c1", now).is_none() && cache.get(b"c2", now).is_none());
        assert!(cache.get(b"b1", now).is_some(), "another tenant's stays");
        cache.invalidate(&Invalidation::All);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity_and_drops_expired_entries_first() {
        let cache = listening(64, Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..10u32 {
            assert!(fill(
                &cache,
                &i.to_be_bytes(),
                agent(Uuid::nil(), Uuid::nil()),
                now
            ));
        }
        // Later, 54 more fresh ones fill it; the first ten have expired by then.
        let later = now + Duration::from_secs(61);
        for i in 10..64u32 {
            assert!(fill(
                &cache,
                &i.to_be_bytes(),
                agent(Uuid::nil(), Uuid::nil()),
                later
            ));
        }
        assert_eq!(cache.len(), 64);
        assert!(fill(&cache, b"new", agent(Uuid::nil(), Uuid::nil()), later));
        assert_eq!(
            cache.len(),
            55,
            "the ten expired ones made room, no fresh one left"
        );
        assert!(cache.get(&10u32.to_be_bytes(), later).is_some());
        // Full of fresh entries: an eighth of them goes, and the bound holds however many come.
        for i in 100..1000u32 {
            assert!(fill(
                &cache,
                &i.to_be_bytes(),
                agent(Uuid::nil(), Uuid::nil()),
                later
            ));
            assert!(cache.len() <= 64);
        }
        assert!(
            cache.get(&999u32.to_be_bytes(), later).is_some(),
            "the newest is kept"
        );
    }

    #[test]
    fn last_used_is_claimed_once_a_minute_per_token() {
        let cache = listening(10, Duration::from_secs(60));
        let now = Instant::now();
        let t0 = Utc::now();
        assert!(fill(&cache, b"h1", agent(Uuid::nil(), Uuid::nil()), now));
        assert!(cache.claim_touch(b"h1", t0), "never used: write it");
        assert!(!cache.claim_touch(b"h1", t0 + chrono::TimeDelta::seconds(30)));
        assert!(cache.claim_touch(b"h1", t0 + chrono::TimeDelta::seconds(61)));
        assert!(!cache.claim_touch(b"h1", t0 + chrono::TimeDelta::seconds(62)));
    }

    #[test]
    fn payloads_are_read_probes_name_nothing_and_anything_unknown_evicts_everything() {
        let license = Uuid::new_v4();
        assert_eq!(
            Invalidation::parse("token:00ff10"),
            Some(Invalidation::Token(vec![0, 255, 16]))
        );
        assert_eq!(
            Invalidation::parse(&format!("license:{license}")),
            Some(Invalidation::License(license))
        );
        assert_eq!(
            Invalidation::parse(&format!("tenant:{license}")),
            Some(Invalidation::Tenant(license))
        );
        assert_eq!(Invalidation::parse("probe:abc:1"), None);
        for odd in [
            "all",
            "",
            "token:0",
            "token:zz",
            "license:nope",
            "camera:1",
            "é:é",
        ] {
            assert_eq!(Invalidation::parse(odd), Some(Invalidation::All), "{odd:?}");
        }
    }
}
