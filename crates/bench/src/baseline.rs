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
//!
//! The `baseline` suite runs it and then the second peer (`grouped`: a global position and group
//! commit) on the same commands; the seed, the load and check, and the driver are theirs in
//! common (`peer`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use contingent_domain::Command;
use contingent_log::Metadata;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

use crate::peer::{self, Decision, Outcome, Peer};
use crate::report::{rate, round};
use crate::Ctx;

const SCHEMA: &str = "DROP TABLE IF EXISTS events; \
    CREATE TABLE events (stream_id TEXT NOT NULL, version BIGINT NOT NULL, type TEXT NOT NULL, \
    data JSONB NOT NULL, metadata JSONB NOT NULL, PRIMARY KEY (stream_id, version))";

/// The conventional store: every command its own transaction.
struct Conventional {
    pool: PgPool,
}

#[async_trait::async_trait]
impl Peer for Conventional {
    async fn attempt(&self, command: &Command, meta: &Metadata) -> Result<(Outcome, usize)> {
        let (decision, loaded) = peer::load_and_check(&self.pool, None, command, meta).await?;
        let Decision::Append(event) = decision else {
            return Ok((Outcome::Refused, loaded));
        };
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO events (stream_id, version, type, data, metadata) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)",
        )
        .bind(&event.stream)
        .bind(event.version)
        .bind(event.kind)
        .bind(&event.data)
        .bind(&event.metadata)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {
                tx.commit().await?;
                Ok((Outcome::Appended, loaded))
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Ok((Outcome::Conflict, loaded))
            }
            Err(e) => Err(e.into()),
        }
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
    conventional(ctx, &server).await?;
    crate::grouped::run(ctx, &server).await
}

/// The conventional peer on `server`.
async fn conventional(ctx: &mut Ctx, server: &str) -> Result<()> {
    let fixture = ctx.fixture().await?;
    let commands = Arc::new(ctx.commands().await?);
    let url = ctx.fresh_database(server).await?;
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
    let seeded = peer::seed(&pool, &fixture.log_path()).await?;
    ctx.rec.note(&format!(
        "baseline: {seeded} events of the region's learners seeded into their streams; server {}",
        server_settings
    ));

    let limit = Duration::from_secs_f64(ctx.opts.baseline_seconds);
    let peer = Arc::new(Conventional { pool: pool.clone() });
    let tally = peer::drive(peer, commands, connections, limit).await?;
    pool.close().await;
    if tally.appended == 0 {
        anyhow::bail!(
            "the baseline appended nothing ({} commands refused)",
            tally.refused
        );
    }
    let baseline = rate(tally.appended, tally.elapsed);
    ctx.rec.figure(
        "baseline",
        "postgres_event_store_events_per_s",
        baseline,
        "events/s",
        json!({
            "commands_done": tally.appended + tally.refused, "appended": tally.appended,
            "refused": tally.refused, "conflicts_retried": tally.conflicts,
            "mean_stream_events_loaded": round(tally.loaded_per_command(), 1),
            "connections": connections, "seconds": round(tally.elapsed.as_secs_f64(), 2),
            "latency": tally.latency.json(), "server": server_settings,
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
