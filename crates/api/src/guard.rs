//! What keeps abuse bounded at the HTTP edge: a rate per caller (a verified token's subject), a
//! rate of refused requests per network address, and the count of refused anonymous requests,
//! which is written to the access journal once per period instead of one entry per request.
//!
//! The rates are GCRA limiters from `governor`, one state per key. An address past its rate of
//! refusals is answered `429` without its token being checked (a signature check is the most
//! expensive thing an anonymous caller can make the registry do), except for a token this
//! process has already verified and still remembers: a good caller behind the same address
//! (a school's NAT) keeps being served while somebody else there floods it with bad tokens.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use contingent_registry::{JournalEntry, Registry, RequestLimits};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Keys the limiters hold at most before idle ones are dropped.
const HOUSEKEEPING_AT: usize = 65_536;

/// The address of a request whose connection's address is not known (a router served without
/// connect info): such requests share one key.
pub(crate) const UNKNOWN_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The rate limiters and the count of refused anonymous requests of one API process.
pub(crate) struct Guard {
    callers: Option<DefaultKeyedRateLimiter<String>>,
    refusals: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses past their rate of refusals, and until when: checked before a token is.
    blocked: quick_cache::sync::Cache<IpAddr, Instant>,
    clock: DefaultClock,
    anonymous: Mutex<AnonymousCount>,
    anonymous_every: Duration,
    checks: AtomicU64,
}

/// Refused anonymous requests since the last journal entry about them.
struct AnonymousCount {
    since: chrono::DateTime<Utc>,
    requests: u64,
    limited: u64,
}

/// A request over a rate: answered 429 with `Retry-After`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverRate {
    pub retry_after: Duration,
}

fn quota(per: Duration, count: u32, burst: u32) -> Option<Quota> {
    let count = NonZeroU32::new(count)?;
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(per / count.get()).map(|q| q.allow_burst(burst))
}

impl Guard {
    pub(crate) fn new(limits: &RequestLimits) -> Self {
        let callers = quota(
            Duration::from_secs(1),
            limits.caller_per_second,
            limits.caller_burst,
        )
        .map(DefaultKeyedRateLimiter::keyed);
        let refusals = quota(
            Duration::from_secs(60),
            limits.refused_per_address_per_minute,
            limits.refused_burst,
        )
        .map(DefaultKeyedRateLimiter::keyed);
        Self {
            callers,
            refusals,
            blocked: quick_cache::sync::Cache::new(HOUSEKEEPING_AT),
            clock: DefaultClock::default(),
            anonymous: Mutex::new(AnonymousCount {
                since: Utc::now(),
                requests: 0,
                limited: 0,
            }),
            anonymous_every: limits.anonymous_summary_every,
            checks: AtomicU64::new(0),
        }
    }

    /// Whether `address` is past its rate of refusals: then its token is not checked.
    pub(crate) fn blocked(&self, address: IpAddr) -> Option<OverRate> {
        let until = self.blocked.get(&address)?;
        let now = Instant::now();
        if until > now {
            Some(OverRate {
                retry_after: until - now,
            })
        } else {
            self.blocked.remove(&address);
            None
        }
    }

    /// Counts a refused request from `address`; past the address's rate, the answer is 429.
    pub(crate) fn refused(&self, address: IpAddr) -> Result<(), OverRate> {
        let Some(limiter) = &self.refusals else {
            return Ok(());
        };
        self.housekeeping();
        match limiter.check_key(&address) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(self.clock.now());
                self.blocked.insert(address, Instant::now() + retry_after);
                Err(OverRate { retry_after })
            }
        }
    }

    /// Counts a request of a verified caller; past the caller's rate, the answer is 429.
    pub(crate) fn caller(&self, subject: &str) -> Result<(), OverRate> {
        let Some(limiter) = &self.callers else {
            return Ok(());
        };
        self.housekeeping();
        limiter
            .check_key(&subject.to_owned())
            .map_err(|not_until| OverRate {
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Drops the state of keys that have been idle long enough to be back at a full burst, so
    /// the limiters' memory follows the callers of the last minutes, not every caller ever.
    fn housekeeping(&self) {
        if !self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(4096)
        {
            return;
        }
        trim(&self.refusals);
        trim(&self.callers);
    }

    /// Counts a refused anonymous request (`limited`: answered 429 rather than 401). Returns the
    /// journal entry summing up the last period when one is due.
    pub(crate) fn anonymous(&self, limited: bool) -> Option<JournalEntry> {
        let mut count = self.anonymous.lock().unwrap_or_else(|p| p.into_inner());
        count.requests += 1;
        if limited {
            count.limited += 1;
        }
        self.summary_due(&mut count, false)
    }

    /// The summary of refused anonymous requests not yet journaled, if there are any (all of
    /// them with `force`, else only when a period has passed).
    fn summary_due(&self, count: &mut AnonymousCount, force: bool) -> Option<JournalEntry> {
        let now = Utc::now();
        let period = chrono::Duration::from_std(self.anonymous_every).unwrap_or_default();
        if count.requests == 0 || (!force && now - count.since < period) {
            return None;
        }
        let entry = JournalEntry {
            at: now,
            subject: "anonymous".into(),
            role: "none".into(),
            learner_id: None,
            method: "*".into(),
            endpoint: "*".into(),
            status: 401,
            outcome: format!(
                "unauthenticated: {} requests since {} ({} of them answered 429)",
                count.requests,
                count
                    .since
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                count.limited
            ),
        };
        *count = AnonymousCount {
            since: now,
            requests: 0,
            limited: 0,
        };
        Some(entry)
    }

    /// Writes the summary of refused anonymous requests every period while there are any, for
    /// as long as the registry runs.
    pub(crate) fn spawn_summaries(self: &Arc<Self>, registry: &Arc<Registry>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let guard = Arc::downgrade(self);
        let registry = Arc::downgrade(registry);
        let every = self.anonymous_every.max(Duration::from_millis(100));
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let (Some(guard), Some(registry)) = (guard.upgrade(), registry.upgrade()) else {
                    return;
                };
                let entry = {
                    let mut count = guard.anonymous.lock().unwrap_or_else(|p| p.into_inner());
                    guard.summary_due(&mut count, true)
                };
                drop(guard);
                if let Some(entry) = entry {
                    if let Err(error) = registry.journal().record(entry).await {
                        tracing::warn!(%error, "journaling the count of refused anonymous requests failed");
                    }
                }
            }
        });
    }
}

/// Drops a limiter's idle keys once it holds many.
fn trim<K: std::hash::Hash + Eq + Clone>(limiter: &Option<DefaultKeyedRateLimiter<K>>) {
    if let Some(limiter) = limiter {
        if limiter.len() > HOUSEKEEPING_AT / 4 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RequestLimits {
        RequestLimits {
            caller_per_second: 10,
            caller_burst: 5,
            refused_per_address_per_minute: 60,
            refused_burst: 3,
            ..RequestLimits::default()
        }
    }

    #[test]
    fn a_caller_past_its_burst_waits_and_others_are_not_affected() {
        let guard = Guard::new(&limits());
        for _ in 0..5 {
            guard.caller("teacher-1").expect("within the burst");
        }
        let over = guard.caller("teacher-1").expect_err("past the burst");
        assert!(over.retry_after <= Duration::from_millis(100));
        guard
            .caller("teacher-2")
            .expect("another caller has a burst of their own");
    }

    #[test]
    fn an_address_past_its_refusals_is_blocked_until_it_is_under_the_rate() {
        let guard = Guard::new(&limits());
        let a: IpAddr = "10.0.0.1".parse().expect("address");
        let b: IpAddr = "10.0.0.2".parse().expect("address");
        for _ in 0..3 {
            guard.refused(a).expect("within the burst");
        }
        assert!(guard.blocked(a).is_none());
        let over = guard.refused(a).expect_err("past the burst");
        assert!(over.retry_after > Duration::ZERO && over.retry_after <= Duration::from_secs(1));
        assert!(
            guard.blocked(a).is_some(),
            "blocked before its token is checked"
        );
        assert!(guard.blocked(b).is_none(), "another address is not");
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let guard = Guard::new(&RequestLimits {
            caller_per_second: 0,
            refused_per_address_per_minute: 0,
            ..RequestLimits::default()
        });
        for _ in 0..10_000 {
            guard.caller("region").expect("no caller limit");
            guard.refused(UNKNOWN_ADDRESS).expect("no refusal limit");
        }
    }

    #[test]
    fn refused_anonymous_requests_make_one_entry_per_period() {
        let guard = Guard::new(&RequestLimits {
            anonymous_summary_every: Duration::from_secs(3600),
            ..RequestLimits::default()
        });
        for i in 0..1000 {
            assert!(guard.anonymous(i % 2 == 0).is_none(), "within the period");
        }
        let mut count = guard.anonymous.lock().expect("lock");
        let entry = guard.summary_due(&mut count, true).expect("a summary");
        assert_eq!(entry.status, 401);
        assert_eq!(entry.endpoint, "*");
        assert!(
            entry
                .outcome
                .starts_with("unauthenticated: 1000 requests since"),
            "{}",
            entry.outcome
        );
        assert!(entry.outcome.contains("(500 of them answered 429)"));
        assert!(
            guard.summary_due(&mut count, true).is_none(),
            "counted once"
        );
    }
}
