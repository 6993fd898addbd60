//! A conventional PostgreSQL event store, written plainly here, driven by the same command
//! stream as the embedded append benchmark: one stream per learner in
//! `events(stream_id, version, type, data jsonb, metadata jsonb, PRIMARY KEY (stream_id, version))`;
//! each command loads its learner's stream, checks it (the learner exists, was placed in the
//! mark's class, the mark is new), and appends one event at the next version in its own
//! transaction, with `synchronous_commit = on`. A concurrent append to the same stream fails on
//! the primary key and is retried from the load.
//!
//! Exactly what this peer is, and is not: one command per transaction and per commit (no group
//! commit: each commit waits for its own WAL flush, which the server may share between
//! concurrent commits), `--baseline-connections` connections (32) against the registry's
//! `--submitters` (4,096) feeding one writer, every command reading and parsing its learner's
//! whole stream again (no snapshot, no cache of state), and no hash chain or signature. It is
//! the plainest stream-per-aggregate store, not a tuned one; its figure says what a design
//! without a writer in memory pays, not how fast PostgreSQL can append.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use contingent_domain::Command;
use contingent_log::EventLog;
use contingent_log_sqlite::SqliteLog;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

use crate::report::{rate, round, Percentiles};
use crate::Ctx;

const SCHEMA: &str = "DROP TABLE IF EXISTS events; \
    CREATE TABLE events (stream_id TEXT NOT NULL, version BIGINT NOT NULL, type TEXT NOT NULL, \
    data JSONB NOT NULL, metadata JSONB NOT NULL, PRIMARY KEY (stream_id, version))";

/// COPY text escaping for a JSON value (which holds no raw tab or newline).
fn copy_text(s: &str) -> String {
    s.replace('\\', "\\\\")
}

/// Loads every learner's events of the region into their streams; returns how many.
async fn seed(pool: &PgPool, log_path: &std::path::Path) -> Result<u64> {
    let log = SqliteLog::open(log_path).await?;
    let mut versions: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY events (stream_id, version, type, data, metadata) FROM STDIN")
        .await?;
    let (mut at, mut n) = (0u64, 0u64);
    loop {
        let page = log.read_after(at, 10_000).await?;
        let Some(last) = page.last() else { break };
        at = last.position();
        let mut buf = String::new();
        for e in &page {
            let Some(learner) = e.envelope.learner_id else {
                continue;
            };
            let stream = learner.to_string();
            let version = versions.entry(stream.clone()).or_default();
            *version += 1;
            let full = serde_json::to_value(&e.envelope.event)?;
            let data = full.get("data").cloned().unwrap_or(Value::Null);
            let metadata = json!({"recorded_at": e.envelope.recorded_at, "actor": e.envelope.actor,
                                  "source": e.envelope.source, "event_id": e.envelope.event_id});
            buf.push_str(&format!(
                "{stream}\t{version}\t{}\t{}\t{}\n",
                e.envelope.event.type_name(),
                copy_text(&data.to_string()),
                copy_text(&metadata.to_string())
            ));
            n += 1;
        }
        copy.send(buf.as_bytes()).await?;
    }
    copy.finish().await?;
    log.close().await;
    conn.execute("ANALYZE events").await?;
    Ok(n)
}

enum Outcome {
    Appended,
    Refused,
    Conflict,
}

/// One command the conventional way.
async fn handle(
    pool: &PgPool,
    command: &Command,
    meta: &contingent_log::Metadata,
) -> Result<(Outcome, usize)> {
    let Command::RecordMark(mark) = command else {
        return Ok((Outcome::Refused, 0));
    };
    let stream = mark.learner_id.to_string();
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT version, data::text FROM events WHERE stream_id = $1 ORDER BY version",
    )
    .bind(&stream)
    .fetch_all(pool)
    .await?;
    let loaded = rows.len();
    let class = mark.class_id.to_string();
    let mark_id = mark.mark_id.to_string();
    let mut placed = false;
    for (_, data) in &rows {
        let v: Value = serde_json::from_str(data)?;
        if v.get("mark_id").and_then(Value::as_str) == Some(mark_id.as_str()) {
            return Ok((Outcome::Refused, loaded));
        }
        placed |= v.get("class_id").and_then(Value::as_str) == Some(class.as_str())
            || v.get("to_class_id").and_then(Value::as_str) == Some(class.as_str());
    }
    if !placed {
        return Ok((Outcome::Refused, loaded));
    }
    let next = rows.last().map_or(1, |(v, _)| v + 1);
    let data = serde_json::to_string(mark)?;
    let metadata =
        json!({"recorded_at": chrono::Utc::now(), "actor": meta.actor, "source": meta.source,
                          "event_id": uuid::Uuid::now_v7()})
        .to_string();
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO events (stream_id, version, type, data, metadata) VALUES ($1, $2, 'mark_recorded', $3::jsonb, $4::jsonb)",
    )
    .bind(&stream)
    .bind(next)
    .bind(&data)
    .bind(&metadata)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {
            tx.commit().await?;
            Ok((Outcome::Appended, loaded))
        }
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok((Outcome::Conflict, loaded)),
        Err(e) => Err(e.into()),
    }
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let server = ctx
        .opts
        .baseline_database
        .clone()
        .or_else(|| ctx.opts.database.clone());
    let Some(server) = server else {
        ctx.rec.note("baseline: skipped (no PostgreSQL: pass --database or set CONTINGENT_TEST_DATABASE_URL)");
        return Ok(());
    };
    let fixture = ctx.fixture().await?;
    let commands = Arc::new(ctx.commands().await?);
    let url = ctx.fresh_database(&server).await?;
    let connections = ctx.opts.baseline_connections;
    let pool = PgPoolOptions::new()
        .max_connections(connections as u32)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET synchronous_commit = on").await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .context("connecting to the baseline's PostgreSQL")?;
    let server_settings = crate::server_settings(&url).await?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    let seeded = seed(&pool, &fixture.log_path()).await?;
    ctx.rec.note(&format!(
        "baseline: {seeded} events of the region's learners seeded into their streams; server {}",
        server_settings
    ));

    let limit = Duration::from_secs_f64(ctx.opts.baseline_seconds);
    let next = Arc::new(AtomicUsize::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (pool, commands, next, conflicts) = (
                pool.clone(),
                commands.clone(),
                next.clone(),
                conflicts.clone(),
            );
            tokio::spawn(async move {
                let (mut appended, mut refused, mut loaded) = (0u64, 0u64, 0u64);
                let mut samples = Vec::new();
                loop {
                    if started.elapsed() >= limit {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((command, meta)) = commands.get(i) else {
                        break;
                    };
                    let t = Instant::now();
                    loop {
                        let (outcome, rows) = handle(&pool, command, meta).await?;
                        loaded += rows as u64;
                        match outcome {
                            Outcome::Appended => appended += 1,
                            Outcome::Refused => refused += 1,
                            Outcome::Conflict => {
                                conflicts.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        }
                        break;
                    }
                    samples.push(t.elapsed().as_micros() as u64);
                }
                anyhow::Ok((appended, refused, loaded, samples))
            })
        })
        .collect();
    let (mut appended, mut refused, mut loaded) = (0u64, 0u64, 0u64);
    let mut samples = Vec::new();
    for task in tasks {
        let (a, r, l, s) = task.await??;
        appended += a;
        refused += r;
        loaded += l;
        samples.extend(s);
    }
    let elapsed = started.elapsed();
    pool.close().await;
    if appended == 0 {
        anyhow::bail!("the baseline appended nothing ({refused} commands refused)");
    }
    let latency = Percentiles::of(samples);
    let baseline = rate(appended, elapsed);
    ctx.rec.figure(
        "baseline",
        "postgres_event_store_events_per_s",
        baseline,
        "events/s",
        json!({
            "commands_done": appended + refused, "appended": appended, "refused": refused,
            "conflicts_retried": conflicts.load(Ordering::Relaxed),
            "mean_stream_events_loaded": round(loaded as f64 / (appended + refused).max(1) as f64, 1),
            "connections": connections, "seconds": round(elapsed.as_secs_f64(), 2),
            "latency": latency.json(), "server": server_settings,
            "session": "synchronous_commit=on", "seeded_events": seeded,
            "peer": "stream per learner; each command reloads and parses the learner's whole stream and commits one event in its own transaction (no group commit); connections as given, not the registry's submitters",
        }),
    );
    match ctx.results.embedded_events_per_s {
        Some(ours) => ctx.rec.figure(
            "baseline",
            "embedded_over_baseline_ratio",
            ours / baseline.max(1e-9),
            "x",
            json!({"embedded_events_per_s": round(ours, 0), "baseline_events_per_s": round(baseline, 0)}),
        ),
        None => ctx.rec.note("ratio: run the append suite in the same run (`all`) to compare"),
    }
    Ok(())
}
