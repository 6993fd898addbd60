//! What a failed append costs the writer: the region's log (grown to `--recovery-log-events` if
//! asked, by the writer itself), then the append workload with every `--fail-every`-th append
//! failing before it writes anything. Each failure makes the writer take back the batch in
//! flight and the one decided on top of it, read the log past its durable head and decide both
//! again. Reported: the take-back time (mean and longest, from the writer's own counters), the
//! throughput with failures beside the same workload without, and the full replay of the log,
//! which is what each failure cost before the writer could take batches back.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use async_trait::async_trait;
use contingent_domain::LearnerId;
use contingent_log::{EventLog, Head, LogError, RawEvent, RecordedEvent};
use contingent_log_sqlite::SqliteLog;
use contingent_projections::{all_projections, ReadStore};
use contingent_registry::{Registry, Settings};
use serde_json::json;

use crate::append::drive;
use crate::report::round;
use crate::Ctx;

/// The embedded log, failing every `every`-th append before writing anything.
struct Failing {
    inner: SqliteLog,
    appends: AtomicUsize,
    every: usize,
    failed: AtomicU64,
}

#[async_trait]
impl EventLog for Failing {
    async fn append(&self, events: &[RecordedEvent]) -> Result<(), LogError> {
        let n = self.appends.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(self.every) {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return Err(LogError::Storage("injected append fault".into()));
        }
        self.inner.append(events).await
    }
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_after(after, limit).await
    }
    async fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<RawEvent>, LogError> {
        self.inner.read_raw_after(after, limit).await
    }
    async fn read_learner(&self, learner: LearnerId) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_learner(learner).await
    }
    async fn head(&self) -> Result<Head, LogError> {
        self.inner.head().await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}

/// What recording the undo costs the writer's hot path: the region's log applied to a fresh
/// state, with a savepoint per batch of 1,024 events released after it (as the writer does) and
/// without, alternately three times each; the best of each, in nanoseconds per event.
fn apply_cost(events: &[contingent_domain::Event]) -> (f64, f64) {
    let (mut plain, mut tracked) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        let started = Instant::now();
        let mut state = contingent_domain::State::new();
        for event in events {
            state.apply(event);
        }
        plain = plain.min(started.elapsed().as_nanos() as f64 / events.len() as f64);
        drop(state);
        let started = Instant::now();
        let mut state = contingent_domain::State::new();
        for batch in events.chunks(1024) {
            let _savepoint = state.savepoint();
            for event in batch {
                state.apply(event);
            }
            state.release_all();
        }
        tracked = tracked.min(started.elapsed().as_nanos() as f64 / events.len() as f64);
    }
    (plain, tracked)
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let fixture = ctx.fixture().await?;
    {
        let log = SqliteLog::open(&fixture.log_path()).await?;
        let mut events = Vec::new();
        loop {
            let page = log.read_after(events.len() as u64, 10_000).await?;
            if page.is_empty() {
                break;
            }
            events.extend(page.into_iter().map(|e| e.envelope.event));
        }
        log.close().await;
        let (plain, tracked) = apply_cost(&events);
        ctx.rec.figure(
            "recovery",
            "apply_with_undo_record_ns_per_event",
            tracked,
            "ns/event",
            json!({"without_undo_record_ns_per_event": round(plain, 1),
                   "overhead_pct": round(100.0 * (tracked - plain) / plain, 1),
                   "events": events.len(),
                   "what": "the region's log applied to a fresh state, a savepoint per 1,024 events released after them (as the writer does), best of three against the same without"}),
        );
    }
    let commands = ctx.commands().await?;
    let dir = ctx.work("recovery")?;
    fixture.copy_to(&dir, &["log.db"])?;
    let mut settings = Settings::new(&dir);
    settings.project = false;

    // Grow the log to the size asked for, through the writer, with a school year's marks.
    let target = ctx.opts.recovery_log_events;
    if target > fixture.events {
        let state = fixture.state().await?;
        let registry = Arc::new(Registry::open(settings.clone(), |_| {}).await?);
        let started = Instant::now();
        let mut round_no = 0u64;
        while registry.head() < target {
            round_no += 1;
            let n = ((target - registry.head()) as usize).min(500_000);
            let chunk = crate::fixture::mark_commands(
                &state,
                fixture.today,
                n,
                ctx.opts.seed.wrapping_add(1_000 + round_no),
            )?;
            let d = drive(&registry, chunk, ctx.opts.submitters).await;
            if d.accepted != d.commands {
                bail!(
                    "growing the log: {} of {} commands not accepted ({:?})",
                    d.commands - d.accepted,
                    d.commands,
                    d.first_problem
                );
            }
            ctx.rec.note(&format!(
                "log grown to {} events ({:.0}s)",
                registry.head(),
                started.elapsed().as_secs_f64()
            ));
        }
        crate::append::shutdown(registry).await;
    }

    // The replay a failed append cost before: the writer's full load of this log.
    let opened = Instant::now();
    let registry = Arc::new(Registry::open(settings.clone(), |_| {}).await?);
    let replay = opened.elapsed();
    let log_events = registry.head();
    let clean = drive(&registry, commands.clone(), ctx.opts.submitters).await;
    crate::append::shutdown(registry).await;
    if clean.accepted != clean.commands {
        bail!(
            "{} of {} commands not accepted without failures ({:?})",
            clean.commands - clean.accepted,
            clean.commands,
            clean.first_problem
        );
    }

    // The same commands again (new marks: other ids), with every n-th append failing.
    let again = crate::fixture::mark_commands(
        &fixture.state().await?,
        fixture.today,
        commands.len(),
        ctx.opts.seed.wrapping_add(7),
    )?;
    let every = ctx.opts.fail_every.max(2);
    let log = Arc::new(Failing {
        inner: SqliteLog::open(&settings.log_path()).await?,
        appends: AtomicUsize::new(0),
        every,
        failed: AtomicU64::new(0),
    });
    let read = ReadStore::open(&settings.read_path(), &all_projections()).await?;
    let registry = Arc::new(Registry::start(settings.clone(), log.clone(), read, |_| {}).await?);
    let before = registry.head();
    let d = drive(&registry, again, ctx.opts.submitters).await;
    let m = registry.metrics();
    let take_backs = m.batches_taken_back.load(Ordering::Relaxed);
    let micros = m.take_back_micros.load(Ordering::Relaxed);
    let longest = m.take_back_max_micros.load(Ordering::Relaxed);
    let appended = registry.head() - before;
    crate::append::shutdown(registry).await;
    if d.accepted + d.unavailable != d.commands || d.refused > 0 {
        bail!(
            "with failures: {} refused of {} ({:?})",
            d.refused,
            d.commands,
            d.first_problem
        );
    }
    if appended != d.events {
        bail!(
            "with failures: {} events acknowledged but {} appended",
            d.events,
            appended
        );
    }
    let conditions = json!({
        "log_events": log_events,
        "commands": d.commands, "command": "record_mark", "submitters": ctx.opts.submitters,
        "failed_appends": log.failed.load(Ordering::Relaxed), "fail_every": every,
        "take_backs": take_backs,
        "mean_events_per_group_commit": round(d.events as f64 / d.group_commits.max(1) as f64, 1),
        "answered_unavailable": d.unavailable,
        "events_acknowledged_equal_events_appended": true,
        "log": "SQLite WAL, synchronous=FULL",
    });
    ctx.rec.figure(
        "recovery",
        "take_back_mean_micros",
        micros as f64 / take_backs.max(1) as f64,
        "µs",
        conditions.clone(),
    );
    ctx.rec.figure(
        "recovery",
        "take_back_longest_micros",
        longest as f64,
        "µs",
        conditions.clone(),
    );
    ctx.rec.figure(
        "recovery",
        "full_replay_seconds",
        replay.as_secs_f64(),
        "s",
        json!({"log_events": log_events,
               "what": "the writer's load of the whole log: what each failed append cost when the writer replayed the log to recover"}),
    );
    ctx.rec.figure(
        "recovery",
        "events_per_s_with_failures_pct_of_without",
        100.0 * d.events_per_s() / clean.events_per_s().max(1.0),
        "%",
        json!({"with_failures_events_per_s": round(d.events_per_s(), 0),
               "without_events_per_s": round(clean.events_per_s(), 0),
               "failed_appends": log.failed.load(Ordering::Relaxed), "fail_every": every,
               "log_events": log_events}),
    );
    Ok(())
}
