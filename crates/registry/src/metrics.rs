//! Counters exported at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Process-wide counters of the writer and the projector.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Commands accepted (events appended or a duplicate recognized).
    pub commands_accepted: AtomicU64,
    /// Commands answered from the idempotency record.
    pub commands_replayed: AtomicU64,
    /// Events appended to the log.
    pub events_appended: AtomicU64,
    /// Group commits.
    pub group_commits: AtomicU64,
    /// Batches decided again because another writer appended at their positions first.
    pub append_conflicts: AtomicU64,
    /// Time spent in log appends, microseconds.
    pub append_micros: AtomicU64,
    /// Times the writer took applied batches back after their append failed.
    pub batches_taken_back: AtomicU64,
    /// Time spent taking batches back, microseconds.
    pub take_back_micros: AtomicU64,
    /// The longest take-back, microseconds.
    pub take_back_max_micros: AtomicU64,
    /// Events applied by the projector.
    pub events_projected: AtomicU64,
    /// Last position appended.
    pub log_head: AtomicU64,
    /// Last position applied to every read model.
    pub projected_position: AtomicU64,
    /// Learner queries answered from the read cache (nothing about the learner changed since).
    pub read_cache_hits: AtomicU64,
    /// Learner queries that went to the read models.
    pub read_cache_misses: AtomicU64,
    /// Requests refused without a valid token (401), counted instead of journaled one by one.
    pub requests_unauthenticated: AtomicU64,
    /// Requests answered 429: a caller over its rate, or an address over its rate of refusals.
    pub requests_rate_limited: AtomicU64,
    /// Requests answered `503 overloaded` because the API was serving its most at once.
    pub requests_shed: AtomicU64,
    /// Requests answered `503 timeout`.
    pub requests_timed_out: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Why the writer refuses commands: an append failed and the log could not be read since.
    writer_fault: Mutex<Option<String>>,
}

impl Metrics {
    /// Records why the writer refuses commands (none: it decides again).
    pub fn set_writer_fault(&self, fault: Option<String>) {
        if let Ok(mut f) = self.writer_fault.lock() {
            *f = fault;
        }
    }

    /// Why the writer refuses commands, if it does.
    pub fn writer_fault(&self) -> Option<String> {
        self.writer_fault.lock().ok().and_then(|f| f.clone())
    }

    /// Counts a refused command by its code.
    pub fn refused(&self, code: &'static str) {
        if let Ok(mut map) = self.refused.lock() {
            *map.entry(code).or_default() += 1;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "contingent_commands_accepted_total",
            "Commands accepted.",
            "counter",
            get(&self.commands_accepted),
        );
        counter(
            &mut out,
            "contingent_commands_replayed_total",
            "Commands answered from the idempotency record.",
            "counter",
            get(&self.commands_replayed),
        );
        counter(
            &mut out,
            "contingent_events_appended_total",
            "Events appended to the log.",
            "counter",
            get(&self.events_appended),
        );
        counter(
            &mut out,
            "contingent_group_commits_total",
            "Group commits of the writer.",
            "counter",
            get(&self.group_commits),
        );
        counter(
            &mut out,
            "contingent_append_conflicts_total",
            "Batches decided again because another writer appended at their positions first.",
            "counter",
            get(&self.append_conflicts),
        );
        counter(
            &mut out,
            "contingent_writer_take_backs_total",
            "Times the writer took applied batches back after their append failed or lost a race.",
            "counter",
            get(&self.batches_taken_back),
        );
        counter(
            &mut out,
            "contingent_writer_take_back_microseconds_total",
            "Time the writer spent taking batches back, in microseconds.",
            "counter",
            get(&self.take_back_micros),
        );
        counter(
            &mut out,
            "contingent_read_cache_hits_total",
            "Learner queries answered from the read cache.",
            "counter",
            get(&self.read_cache_hits),
        );
        counter(
            &mut out,
            "contingent_read_cache_misses_total",
            "Learner queries that went to the read models.",
            "counter",
            get(&self.read_cache_misses),
        );
        let _ = writeln!(
            out,
            "# HELP contingent_append_seconds_total Time spent in durable appends.\n# TYPE contingent_append_seconds_total counter\ncontingent_append_seconds_total {:.6}",
            get(&self.append_micros) as f64 / 1e6
        );
        counter(
            &mut out,
            "contingent_events_projected_total",
            "Events applied to the read models.",
            "counter",
            get(&self.events_projected),
        );
        counter(
            &mut out,
            "contingent_log_head_position",
            "Position of the last event in the log.",
            "gauge",
            get(&self.log_head),
        );
        counter(
            &mut out,
            "contingent_projected_position",
            "Position applied to every read model.",
            "gauge",
            get(&self.projected_position),
        );
        let _ = writeln!(
            out,
            "# HELP contingent_projection_lag_events Events appended but not yet in every read model.\n# TYPE contingent_projection_lag_events gauge\ncontingent_projection_lag_events {}",
            get(&self.log_head).saturating_sub(get(&self.projected_position))
        );
        for (name, help, value) in [
            (
                "contingent_requests_unauthenticated_total",
                "Requests refused without a valid token (401).",
                &self.requests_unauthenticated,
            ),
            (
                "contingent_requests_rate_limited_total",
                "Requests answered 429 (a caller or an address over its rate).",
                &self.requests_rate_limited,
            ),
            (
                "contingent_requests_shed_total",
                "Requests answered 503 because the API was serving its most at once.",
                &self.requests_shed,
            ),
            (
                "contingent_requests_timed_out_total",
                "Requests answered 503 because they took longer than the request timeout.",
                &self.requests_timed_out,
            ),
        ] {
            counter(&mut out, name, help, "counter", get(value));
        }
        let _ = writeln!(
            out,
            "# HELP contingent_writer_faulted 1 while the writer refuses commands because an append failed and the log could not be read since.\n# TYPE contingent_writer_faulted gauge\ncontingent_writer_faulted {}",
            u8::from(self.writer_fault().is_some())
        );
        let _ = writeln!(out, "# HELP contingent_commands_refused_total Commands refused, by rule.\n# TYPE contingent_commands_refused_total counter");
        if let Ok(map) = self.refused.lock() {
            for (code, n) in map.iter() {
                let _ = writeln!(
                    out,
                    "contingent_commands_refused_total{{code=\"{code}\"}} {n}"
                );
            }
        }
        out
    }
}
