//! Durable append throughput of validated commands through `Registry::submit`, on the embedded
//! log and on Kafka, next to the disk's fsync bandwidth and the broker's raw produce rate.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use contingent_domain::Command;
use contingent_log::{EventLog, Metadata};
use contingent_log_kafka::{KafkaConfig, KafkaLog};
use contingent_log_sqlite::SqliteLog;
use contingent_registry::{LogBackend, Registry, RegistryError, Settings};
use serde_json::json;

use crate::limits::{self, RawRecord};
use crate::report::{rate, round, Percentiles};
use crate::Ctx;

/// What driving a command stream through the registry gave.
pub struct Driven {
    pub elapsed: Duration,
    pub commands: u64,
    pub accepted: u64,
    pub refused: u64,
    pub unavailable: u64,
    pub events: u64,
    pub first_problem: Option<String>,
    pub latency: Percentiles,
    pub group_commits: u64,
    pub append_seconds: f64,
}

impl Driven {
    pub fn events_per_s(&self) -> f64 {
        rate(self.events, self.elapsed)
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "commands": self.commands,
            "accepted": self.accepted,
            "refused": self.refused,
            "unavailable": self.unavailable,
            "events": self.events,
            "seconds": round(self.elapsed.as_secs_f64(), 3),
            "group_commits": self.group_commits,
            "events_per_group_commit": round(self.events as f64 / self.group_commits.max(1) as f64, 1),
            "time_in_log_append_pct": round(100.0 * self.append_seconds / self.elapsed.as_secs_f64(), 1),
            "commit_latency": self.latency.json(),
        })
    }
}

/// Submits `commands` from `submitters` concurrent tasks (each its share, in order) and waits
/// for every answer.
pub async fn drive(
    registry: &Arc<Registry>,
    commands: Vec<(Command, Metadata)>,
    submitters: usize,
) -> Driven {
    let submitters = submitters.clamp(1, commands.len().max(1));
    let mut shares: Vec<Vec<(Command, Metadata)>> = (0..submitters).map(|_| Vec::new()).collect();
    let total = commands.len() as u64;
    for (i, c) in commands.into_iter().enumerate() {
        shares[i % submitters].push(c);
    }
    let m = registry.metrics();
    let commits0 = m.group_commits.load(Ordering::Relaxed);
    let append0 = m.append_micros.load(Ordering::Relaxed);
    let started = Instant::now();
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let registry = registry.clone();
            tokio::spawn(async move {
                let mut out = (0u64, 0u64, 0u64, 0u64, None::<String>, Vec::new());
                for (command, meta) in share {
                    let t = Instant::now();
                    let answer = registry.submit(command, meta).await;
                    out.5.push(t.elapsed().as_micros() as u64);
                    match answer {
                        Ok(receipt) => {
                            out.0 += 1;
                            out.3 += receipt.events.len() as u64;
                        }
                        Err(e @ RegistryError::Unavailable(_)) => {
                            out.2 += 1;
                            out.4.get_or_insert(e.to_string());
                        }
                        Err(e) => {
                            out.1 += 1;
                            out.4.get_or_insert(e.to_string());
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut d = Driven {
        elapsed: Duration::ZERO,
        commands: total,
        accepted: 0,
        refused: 0,
        unavailable: 0,
        events: 0,
        first_problem: None,
        latency: Percentiles::default(),
        group_commits: 0,
        append_seconds: 0.0,
    };
    let mut samples = Vec::with_capacity(total as usize);
    for task in tasks {
        if let Ok((accepted, refused, unavailable, events, problem, lat)) = task.await {
            d.accepted += accepted;
            d.refused += refused;
            d.unavailable += unavailable;
            d.events += events;
            if d.first_problem.is_none() {
                d.first_problem = problem;
            }
            samples.extend(lat);
        }
    }
    d.elapsed = started.elapsed();
    d.latency = Percentiles::of(samples);
    d.group_commits = m.group_commits.load(Ordering::Relaxed) - commits0;
    d.append_seconds = (m.append_micros.load(Ordering::Relaxed) - append0) as f64 / 1e6;
    d
}

/// Fails, with the counts and the first problem, when any command of a drive was not accepted.
fn all_accepted(backend: &str, d: &Driven) -> Result<()> {
    if d.accepted != d.commands {
        anyhow::bail!(
            "{backend}: {} of {} commands were not accepted ({} refused, {} unavailable, {} unanswered); first: {}; no rate is reported",
            d.commands.saturating_sub(d.accepted),
            d.commands,
            d.refused,
            d.unavailable,
            d.commands.saturating_sub(d.accepted + d.refused + d.unavailable),
            d.first_problem.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}

/// Records a drive's rate, or fails when any command was not accepted: a rate of commands
/// some of which failed is not the rate of the workload named.
fn report_drive(ctx: &Ctx, backend: &str, d: &Driven, extra: serde_json::Value) -> Result<()> {
    all_accepted(backend, d)?;
    let mut conditions = d.json();
    if let (Some(c), Some(e)) = (conditions.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    if let Some(p) = &d.first_problem {
        ctx.rec
            .note(&format!("{backend}: first command not accepted: {p}"));
    }
    ctx.rec.figure(
        "append",
        &format!("{backend}_events_per_s"),
        d.events_per_s(),
        "events/s",
        conditions,
    );
    Ok(())
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let fixture = ctx.fixture().await?;
    let commands = ctx.commands().await?;
    let learners = crate::fixture::learners_of(&commands);
    let sizes = json!({
        "commands": commands.len(), "command": "record_mark", "learners_marked": learners,
        "region_events_before": fixture.events, "region_learners": fixture.learners,
        "submitters": ctx.opts.submitters,
    });
    ctx.rec.note(&format!(
        "{} record_mark commands over {learners} learners, {} concurrent submitters",
        commands.len(),
        ctx.opts.submitters
    ));

    // The disk, measured in the same run.
    let dir = ctx.work("append-disk")?;
    let (bandwidth, written) = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            limits::sequential_fsync(&dir, 1 << 20, 512 << 20, Duration::from_secs(8))
        })
        .await??
    };
    ctx.rec.figure(
        "append",
        "disk_sequential_fsync_mib_per_s",
        bandwidth / (1u64 << 20) as f64,
        "MiB/s",
        json!({"block": "1 MiB write + fdatasync", "bytes": written}),
    );
    let (syncs, latency) = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || limits::small_fsync(&dir, 4096, Duration::from_secs(3)))
            .await??
    };
    ctx.rec.figure(
        "append",
        "disk_small_fsyncs_per_s",
        syncs,
        "syncs/s",
        json!({"block": "4 KiB append + fdatasync", "latency": latency.json()}),
    );

    // Embedded.
    let dir = ctx.work("append-embedded")?;
    fixture.copy_to(&dir, &["log.db"])?;
    let mut settings = Settings::new(&dir);
    settings.project = false;
    let opened = Instant::now();
    let registry = Arc::new(Registry::open(settings, |_| {}).await?);
    let load = opened.elapsed();
    ctx.rec.note(&format!(
        "embedded writer loaded {} events in {:.2}s",
        registry.head(),
        load.as_secs_f64()
    ));
    let d = drive(&registry, commands.clone(), ctx.opts.submitters).await;
    let body_bytes = mean_body_bytes(registry.log().as_ref(), registry.head(), 2000).await?;
    report_drive(
        ctx,
        "embedded",
        &d,
        json!({"log": "SQLite WAL, synchronous=FULL", "sizes": sizes, "mean_event_bytes": round(body_bytes, 0)}),
    )?;
    let embedded = d.events_per_s();
    ctx.results.embedded_events_per_s = Some(embedded);
    let bytes_per_s = embedded * body_bytes;
    ctx.rec.figure(
        "append",
        "embedded_pct_of_disk_fsync_bandwidth",
        100.0 * bytes_per_s / bandwidth,
        "%",
        json!({"event_bytes_per_s": round(bytes_per_s, 0), "disk_bytes_per_s": round(bandwidth, 0)}),
    );
    shutdown(registry).await;

    // Embedded, every command sent with an Idempotency-Key and its body's fingerprint, as HTTP
    // callers send them: the idempotency record (off the heap, `idempotency.db`) is looked up
    // for every batch and written after every group commit. Then every command is sent again
    // with its key: each answer comes from the record, its events read back from the log.
    let keyed: Vec<(Command, Metadata)> = commands
        .iter()
        .enumerate()
        .map(|(i, (command, meta))| {
            let mut meta = meta.clone();
            meta.idempotency_key = Some(format!("bench-mark-{i}"));
            meta.request_fingerprint = Some(format!("{i:064x}"));
            (command.clone(), meta)
        })
        .collect();
    let dir = ctx.work("append-embedded-keyed")?;
    fixture.copy_to(&dir, &["log.db"])?;
    let mut settings = Settings::new(&dir);
    settings.project = false;
    let registry = Arc::new(Registry::open(settings.clone(), |_| {}).await?);
    let d = drive(&registry, keyed.clone(), ctx.opts.submitters).await;
    report_drive(
        ctx,
        "embedded_keyed",
        &d,
        json!({"log": "SQLite WAL, synchronous=FULL", "sizes": sizes,
               "what": "the same commands, each with an Idempotency-Key and a body fingerprint"}),
    )?;
    ctx.rec.figure(
        "append",
        "embedded_keyed_pct_of_unkeyed",
        100.0 * d.events_per_s() / embedded.max(1.0),
        "%",
        json!({"keyed_events_per_s": round(d.events_per_s(), 0), "unkeyed_events_per_s": round(embedded, 0)}),
    );
    let head = registry.head();
    let started = Instant::now();
    let replayed = drive(&registry, keyed, ctx.opts.submitters).await;
    let elapsed = started.elapsed();
    if replayed.accepted != replayed.commands {
        anyhow::bail!(
            "embedded_keyed retries: {} of {} were not answered from the idempotency record; first: {}",
            replayed.commands - replayed.accepted,
            replayed.commands,
            replayed.first_problem.as_deref().unwrap_or("none")
        );
    }
    ctx.rec.figure(
        "append",
        "embedded_keyed_retries_per_s",
        rate(replayed.commands, elapsed),
        "commands/s",
        json!({"what": "every command sent again with its key: answered from the idempotency record, nothing appended",
               "appended": registry.head() - head, "answered": replayed.accepted,
               "refused_or_unavailable": replayed.refused + replayed.unavailable,
               "idempotency_db_bytes": std::fs::metadata(settings.idempotency_path()).map(|m| m.len()).unwrap_or(0),
               "keys": replayed.commands}),
    );
    shutdown(registry).await;

    // The log alone: the same sealed events appended to a copy of the region's log in batches
    // of the writer's mean group commit, without deciding, sealing or answering.
    let batch = (d.events / d.group_commits.max(1)).max(1) as usize;
    let written = SqliteLog::open(&dir.join("log.db")).await?;
    let mut sealed = Vec::with_capacity(d.events as usize);
    let mut at = fixture.events;
    loop {
        let page = written.read_after(at, 10_000).await?;
        let Some(last) = page.last() else { break };
        at = last.position();
        sealed.extend(page);
    }
    written.close().await;
    let dir = ctx.work("append-log-only")?;
    fixture.copy_to(&dir, &["log.db"])?;
    let log = SqliteLog::open(&dir.join("log.db")).await?;
    let started = Instant::now();
    for chunk in sealed.chunks(batch) {
        log.append(chunk).await?;
    }
    let elapsed = started.elapsed();
    log.close().await;
    ctx.rec.figure(
        "append",
        "embedded_log_only_events_per_s",
        rate(sealed.len() as u64, elapsed),
        "events/s",
        json!({"what": "SqliteLog::append of the same sealed events, no writer", "events": sealed.len(),
               "batch": batch, "seconds": round(elapsed.as_secs_f64(), 2)}),
    );
    drop(sealed);

    // Kafka.
    let Some(broker) = ctx.opts.kafka.clone() else {
        ctx.rec
            .note("Kafka: skipped (no broker: pass --kafka or set CONTINGENT_TEST_KAFKA)");
        return Ok(());
    };
    let topic = format!("contingent.bench-{}.events", uuid::Uuid::new_v4().simple());
    let config = KafkaConfig::new(broker.clone(), topic.clone());
    let loaded = copy_log_to_kafka(&fixture.log_path(), &config).await?;
    ctx.rec.figure(
        "append",
        "kafka_bulk_copy_events_per_s",
        rate(loaded.0, loaded.1),
        "events/s",
        json!({"what": "the region's log copied with KafkaLog::append in batches of 1,000 sealed events", "events": loaded.0}),
    );
    let dir = ctx.work("append-kafka")?;
    let mut settings = Settings::new(&dir);
    settings.project = false;
    settings.log = LogBackend::Kafka(config.clone());
    let opened = Instant::now();
    let registry = Arc::new(Registry::open(settings, |_| {}).await?);
    ctx.rec.note(&format!(
        "Kafka writer loaded {} events in {:.2}s",
        registry.head(),
        opened.elapsed().as_secs_f64()
    ));
    let d = drive(&registry, commands.clone(), ctx.opts.submitters).await;
    // Records like the ones just appended, for the broker's raw rate.
    let head = registry.head();
    let sample = registry
        .log()
        .read_after(head.saturating_sub(2000), 2000)
        .await?;
    let records: Vec<RawRecord> = sample.iter().map(RawRecord::like).collect();
    let record_bytes =
        records.iter().map(RawRecord::bytes).sum::<usize>() as f64 / records.len().max(1) as f64;
    report_drive(
        ctx,
        "kafka",
        &d,
        json!({"broker": broker, "topic_partitions": 1, "producer": "idempotent, acks=all",
               "sizes": sizes, "mean_record_bytes": round(record_bytes, 0)}),
    )?;
    let ours = d.events_per_s();
    let batch = (d.events / d.group_commits.max(1)).max(1) as usize;
    shutdown(registry).await;
    let count = (d.events as usize).max(10_000);
    let raw = limits::raw_produce(&config, &records, count, usize::MAX).await?;
    ctx.rec.figure(
        "append",
        "kafka_raw_produce_records_per_s",
        raw,
        "records/s",
        json!({"records": count, "mean_record_bytes": round(record_bytes, 0),
               "producer": "rdkafka FutureProducer, idempotent, acks=all, linger.ms=0, all records in flight",
               "what": "the same records (key, value, seven headers) as the log appended"}),
    );
    let raw_batched = limits::raw_produce(&config, &records, count, batch).await?;
    ctx.rec.figure(
        "append",
        "kafka_raw_produce_batched_records_per_s",
        raw_batched,
        "records/s",
        json!({"records": count, "batch": batch,
               "what": "the same records in batches of the writer's mean group commit, each batch acknowledged before the next is sent"}),
    );
    ctx.rec.figure(
        "append",
        "kafka_pct_of_raw_produce",
        100.0 * ours / raw,
        "%",
        json!({"ours_events_per_s": round(ours, 0), "raw_records_per_s": round(raw, 0),
               "pct_of_raw_batched": round(100.0 * ours / raw_batched, 1)}),
    );
    Ok(())
}

/// Copies an embedded log's sealed events into a Kafka topic; returns how many and how long.
async fn copy_log_to_kafka(
    log_path: &std::path::Path,
    config: &KafkaConfig,
) -> Result<(u64, Duration)> {
    let source = SqliteLog::open(log_path).await?;
    let target = KafkaLog::open(config.clone())
        .await
        .context("opening the benchmark topic")?;
    let started = Instant::now();
    let mut at = 0;
    loop {
        let page = source.read_after(at, 1000).await?;
        let Some(last) = page.last() else { break };
        at = last.position();
        target.append(&page).await?;
    }
    let elapsed = started.elapsed();
    target.close().await;
    source.close().await;
    Ok((at, elapsed))
}

/// Mean stored bytes of the last `n` events up to `head`.
pub async fn mean_body_bytes(log: &dyn EventLog, head: u64, n: u64) -> Result<f64> {
    let page = log.read_after(head.saturating_sub(n), n as usize).await?;
    Ok(page.iter().map(|e| e.body.len()).sum::<usize>() as f64 / page.len().max(1) as f64)
}

/// Stops a registry held in an `Arc` once every other holder has dropped it.
pub async fn shutdown(registry: Arc<Registry>) {
    let mut registry = registry;
    for _ in 0..200 {
        match Arc::try_unwrap(registry) {
            Ok(r) => return r.shutdown().await,
            Err(again) => {
                registry = again;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driven(accepted: u64, refused: u64, unavailable: u64) -> Driven {
        Driven {
            elapsed: Duration::from_secs(1),
            commands: 10,
            accepted,
            refused,
            unavailable,
            events: accepted,
            first_problem: (accepted < 10).then(|| "class_full".to_owned()),
            latency: Percentiles::default(),
            group_commits: 1,
            append_seconds: 0.5,
        }
    }

    #[test]
    fn a_drive_with_any_command_not_accepted_fails_with_the_counts() {
        assert!(all_accepted("embedded", &driven(10, 0, 0)).is_ok());
        let refused = all_accepted("embedded", &driven(9, 1, 0)).expect_err("one refused");
        let message = refused.to_string();
        assert!(
            message.contains("1 of 10 commands were not accepted"),
            "{message}"
        );
        assert!(message.contains("class_full"), "{message}");
        assert!(
            all_accepted("kafka", &driven(9, 0, 1)).is_err(),
            "one unavailable"
        );
        assert!(
            all_accepted("kafka", &driven(9, 0, 0)).is_err(),
            "one unanswered"
        );
    }
}
