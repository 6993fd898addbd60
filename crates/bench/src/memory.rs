//! Memory of the writer's state per learner, and log bytes per event.
//!
//! Each memory figure is taken in a fresh child process (this binary, `--probe-memory`), so that
//! nothing the benchmark did before is in its resident set: its measured resident set
//! (`VmRSS` of `/proc/self/status`) before and after loading the region's log, the growth
//! divided by the learners the state then holds. The headline is the writer's real process
//! (`Registry::open` without a projector: the state, the mark book, the idempotency record and
//! the connections); the state folded alone, with marks settled (dropped) or all held, is
//! measured the same way beside it. `State::heap_bytes` (the containers' capacities, an
//! estimate that ignores the allocator) is only reported next to the measurements.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use contingent_domain::Event;
use contingent_log::EventLog;
use contingent_log_sqlite::SqliteLog;
use contingent_registry::{Registry, Settings};
use serde_json::{json, Value};

use crate::report::{peak_rss_bytes, round, rss_bytes};
use crate::Ctx;

/// The child's side: loads the log in `dir` as `mode` says and prints one JSON line.
pub async fn probe(mode: &str, dir: &Path) -> Result<()> {
    // The resident set before anything is read: the growth is everything loading the log
    // leaves resident (the state, and for the registry its connections and caches).
    let before = rss_bytes();
    // A dry pass over the log first, keeping nothing, so that the file is in the page cache
    // and both passes read it at the same speed.
    {
        let log = SqliteLog::open(&dir.join("log.db")).await?;
        let mut at = 0;
        loop {
            let page = log.read_after(at, 10_000).await?;
            let Some(last) = page.last() else { break };
            at = last.position();
        }
        log.close().await;
    }
    let started = Instant::now();
    let out = match mode {
        "state" | "state-holding-marks" => {
            // "state": as the writer holds it, with the durable marks settled in its mark book
            // (here: dropped after each page); "state-holding-marks": every mark kept in memory.
            let settle = mode == "state";
            // Through the key store, as the writer reads it: sealed personal fields (SNILS,
            // civil records) opened, so that the state holds what the writer's does. The log
            // and its cache of keys are dropped before the resident set is read.
            let mut settings = Settings::new(dir);
            settings.project = false;
            let log = contingent_registry::open_log(&settings).await?;
            let mut state = contingent_domain::State::new();
            let mut at = 0;
            let mut marks = 0u64;
            loop {
                let page = log.read_after(at, 10_000).await?;
                let Some(last) = page.last() else { break };
                at = last.position();
                for e in &page {
                    if matches!(e.envelope.event, Event::MarkRecorded(_)) {
                        marks += 1;
                    }
                    state.apply(&e.envelope.event);
                }
                if settle {
                    drop(state.settle_marks(at));
                }
            }
            log.close().await;
            drop(log);
            let counts = state.counts();
            let after = rss_bytes();
            json!({"before": before, "after": after, "peak": peak_rss_bytes(), "heap": state.heap_bytes(), "breakdown": breakdown(&state), "learners": counts[2], "counts": counts,
                   "marks": marks, "events": at, "seconds": started.elapsed().as_secs_f64()})
        }
        "registry" => {
            let mut settings = Settings::new(dir);
            settings.project = false;
            let registry = Registry::open(settings, |_| {}).await?;
            let (counts, heap, parts) =
                registry.read_state(|s| (s.counts(), s.heap_bytes(), breakdown(s)));
            let after = rss_bytes();
            let out = json!({"before": before, "after": after, "peak": peak_rss_bytes(), "heap": heap, "breakdown": parts, "learners": counts[2], "counts": counts,
                             "events": registry.head(), "seconds": started.elapsed().as_secs_f64()});
            registry.shutdown().await;
            out
        }
        other => bail!("unknown probe {other}"),
    };
    println!("{out}");
    Ok(())
}

/// The state's estimate by part, and what its learners hold: enrollments, stays in classes and
/// guardians.
fn breakdown(state: &contingent_domain::State) -> Value {
    let parts: serde_json::Map<String, Value> = state
        .heap_breakdown()
        .into_iter()
        .map(|(name, entries, bytes)| {
            (name.to_owned(), json!({"entries": entries, "bytes": bytes}))
        })
        .collect();
    let (mut enrollments, mut stays, mut guardians) = (0, 0, 0);
    for (_, l) in state.learners() {
        enrollments += l.enrollments.len();
        stays += l.memberships.len();
        guardians += l.guardians.len();
    }
    json!({"parts": parts, "enrollments": enrollments, "stays": stays, "guardians": guardians})
}

fn run_probe(mode: &str, dir: &Path) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        // mimalloc returns freed pages to the system at once, so the resident set follows
        // what is live rather than what was ever used.
        .env("MIMALLOC_PURGE_DELAY", "0")
        .args(["--probe-memory", mode, "--probe-dir"])
        .arg(dir)
        .output()
        .context("running the memory probe")?;
    if !out.status.success() {
        bail!(
            "the memory probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout)?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("the memory probe printed nothing")?;
    Ok(serde_json::from_str(line)?)
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let fixture = ctx.fixture().await?;
    let dir = ctx.work("memory")?;
    fixture.copy_to(&dir, &["log.db"])?;
    let mut grown_by_mode = std::collections::BTreeMap::new();
    let mut writer_resident = None;
    for (mode, name, what) in [
        (
            "state",
            "writer_state_bytes_per_learner",
            "the domain State alone folded from the log read through the key store (personal fields opened, as the writer reads them), durable marks settled and dropped after each page (the writer moves them to its mark book), no registry",
        ),
        (
            "state-holding-marks",
            "writer_state_holding_every_mark_bytes_per_learner",
            "the same State holding every mark in memory (no mark book)",
        ),
        (
            "registry",
            "writer_process_bytes_per_learner",
            "Registry::open without a projector: state, idempotency record, log and journal connections",
        ),
    ] {
        let dir = dir.clone();
        let v = tokio::task::spawn_blocking(move || run_probe(mode, &dir)).await??;
        if mode == "registry" {
            writer_resident = Some(v.clone());
        }
        let before = v["before"].as_u64().unwrap_or(0);
        let after = v["after"].as_u64().unwrap_or(0);
        let learners = v["learners"].as_u64().unwrap_or(0).max(1);
        let counts = &v["counts"];
        let rss_grown = after.saturating_sub(before);
        let heap = v["heap"].as_u64().unwrap_or(0);
        let peak = v["peak"].as_u64().unwrap_or(0);
        // Measured: the resident set's growth. The containers' estimate is only beside it.
        let grown = rss_grown;
        grown_by_mode.insert(mode, (grown, v["marks"].as_u64().unwrap_or(0), learners));
        ctx.rec.figure(
            "memory",
            name,
            grown as f64 / learners as f64,
            "bytes/learner",
            json!({
                "what": what,
                "measured": "growth of VmRSS (/proc/self/status) of a fresh process over loading the log",
                "estimate_state_heap_bytes_per_learner": round(heap as f64 / learners as f64, 0),
                "estimate": "State::heap_bytes: the state's containers by capacity, allocator overhead aside; not measured",
                "rss_peak_mib": round(peak as f64 / 1048576.0, 1),
                "rss_grown_bytes_per_learner": round(rss_grown as f64 / learners as f64, 0),
                "rss_before_mib": round(before as f64 / 1048576.0, 1),
                "rss_after_mib": round(after as f64 / 1048576.0, 1),
                "learners": learners, "events": v["events"],
                "organizations": counts[0], "classes": counts[1], "applications": counts[3], "marks_held": counts[4], "marks_recorded": v["marks"],
                "bytes_per_event": round(grown as f64 / v["events"].as_f64().unwrap_or(1.0).max(1.0), 1),
                "load_seconds": round(v["seconds"].as_f64().unwrap_or(0.0), 2),
            }),
        );
    }

    if let Some(v) = writer_resident {
        ctx.rec.figure(
            "memory",
            "writer_process_resident_mib",
            v["after"].as_u64().unwrap_or(0) as f64 / 1048576.0,
            "MiB",
            json!({"what": "VmRSS of a fresh process after Registry::open (writer only, no projector) loaded the region's log: the writer's real resident memory",
                   "peak_mib": round(v["peak"].as_u64().unwrap_or(0) as f64 / 1048576.0, 1),
                   "before_loading_mib": round(v["before"].as_u64().unwrap_or(0) as f64 / 1048576.0, 1),
                   "events": v["events"], "learners": v["learners"]}),
        );
    }

    if let (Some(&(with, marks, learners)), Some(&(without, _, _))) = (
        grown_by_mode.get("state-holding-marks"),
        grown_by_mode.get("state"),
    ) {
        ctx.rec.figure(
            "memory",
            "writer_state_bytes_per_mark",
            with.saturating_sub(without) as f64 / marks.max(1) as f64,
            "bytes/mark",
            json!({"marks": marks, "marks_per_learner": round(marks as f64 / learners as f64, 1),
                   "what": "(resident growth of the state holding every mark - of the state with marks settled) / marks: what a mark costs in memory without the mark book"}),
        );
    }

    // Log bytes per event: the file, and what the events themselves are.
    let log_path = dir.join("log.db");
    let log = SqliteLog::open(&log_path).await?;
    let (mut at, mut body, mut hashes) = (0u64, 0u64, 0u64);
    loop {
        let page = log.read_raw_after(at, 10_000).await?;
        let Some(last) = page.last() else { break };
        at = last.position;
        for e in &page {
            body += e.body.len() as u64;
            hashes += e.hash.len() as u64;
        }
    }
    log.close().await;
    let file = std::fs::metadata(&log_path)?.len()
        + std::fs::metadata(dir.join("log.db-wal")).map_or(0, |m| m.len());
    ctx.rec.figure(
        "memory",
        "log_bytes_per_event",
        file as f64 / at.max(1) as f64,
        "bytes/event",
        json!({
            "events": at, "file_bytes": file,
            "body_bytes_per_event": round(body as f64 / at.max(1) as f64, 1),
            "hash_bytes_per_event": round(hashes as f64 / at.max(1) as f64, 1),
            "what": "log.db (SQLite: body JSON, hash, event id, type, learner id, and the learner index) over events",
        }),
    );
    Ok(())
}
