//! Projection rebuild throughput per read model, into SQLite and PostgreSQL, from the region's
//! embedded log; next to reading the log alone and PostgreSQL `COPY` into a plain table as wide
//! as the diary's marks.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use contingent_log::{Envelope, EventLog, Hash, LogError, RawEvent, RecordedEvent};
use contingent_log_sqlite::SqliteLog;
use contingent_projections::{
    all_projections, decode_envelope, open_recorded, read_decoded_after, Projection, Projector,
    ReadDatabase, ReadStore,
};
use serde_json::json;
use sqlx::Connection;

use crate::report::{rate, round};
use crate::Ctx;

fn standard_open(raw: RawEvent) -> Result<RecordedEvent, LogError> {
    let hash: [u8; 32] = raw
        .hash
        .try_into()
        .map_err(|_| LogError::Codec("a stored hash is not 32 bytes".into()))?;
    RecordedEvent::open(raw.body, Hash(hash))
}

/// Reads the whole log page by page, the next page's stored bytes read (by SQLite's worker
/// thread) while this page is decoded with `decode` on the caller's task; returns the events.
async fn read_ahead(
    log: &SqliteLog,
    batch: usize,
    decode: fn(RawEvent) -> Result<RecordedEvent, LogError>,
) -> Result<u64> {
    let spawn_read = |after: u64| {
        let log = log.clone();
        tokio::spawn(async move { log.read_raw_after(after, batch).await })
    };
    let mut pending = spawn_read(0);
    let mut events = 0u64;
    loop {
        let page = pending.await??;
        let Some(last) = page.last() else { break };
        pending = spawn_read(last.position);
        let decoded = page
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        events += decoded.len() as u64;
        std::hint::black_box(decoded);
    }
    Ok(events)
}

/// The result of one rebuild.
struct Rebuilt {
    events: u64,
    rows: u64,
    statements: u64,
    /// Everything, as `contingent rebuild` does it.
    elapsed: Duration,
    /// Of which `VACUUM (ANALYZE)` at the end (PostgreSQL).
    vacuum: Duration,
}

async fn rebuild(
    database: ReadDatabase,
    projections: Vec<Box<dyn Projection>>,
    log: &Arc<dyn EventLog>,
    batch: usize,
) -> Result<Rebuilt> {
    // As `contingent rebuild` opens it: on SQLite a fresh file written without a WAL, turned to
    // WAL and synced at the end (counted in the time).
    let fresh = match &database {
        ReadDatabase::Sqlite(path) => Some(path.clone()),
        ReadDatabase::Postgres(_) => None,
    };
    let store = match &fresh {
        Some(path) => ReadStore::open_fresh(path, &projections).await?,
        None => ReadStore::open(database, &projections).await?,
    };
    for p in &projections {
        store.reset(p.as_ref()).await?;
    }
    // As `contingent rebuild` loads an empty store: secondary indexes built once at the end
    // (counted in the time).
    let started = Instant::now();
    let tables = store.defer_for_bulk_load(&projections).await?;
    let mut projector = Projector::new(store.clone(), projections, batch).await?;
    // As `contingent rebuild` does: batches pipelined (one written while the next is read).
    let events = projector.catch_up(log, |_| {}).await?;
    let rows = projector.flushed().rows as u64;
    let statements = projector.flushed().statements as u64;
    store.restore_indexes().await?;
    // As `contingent rebuild` ends a load into PostgreSQL (nothing on SQLite).
    let vacuuming = Instant::now();
    store.vacuum_analyze(&tables).await?;
    let vacuum = vacuuming.elapsed();
    store.close().await;
    if let Some(path) = &fresh {
        ReadStore::finish_fresh(path)?;
    }
    let elapsed = started.elapsed();
    Ok(Rebuilt {
        events,
        rows,
        statements,
        elapsed,
        vacuum,
    })
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let fixture = ctx.fixture().await?;
    let log = SqliteLog::open(&fixture.log_path()).await?;
    let batch = ctx.opts.batch;

    // Reading the log alone: the ceiling of any rebuild from it. Three ways, in three rounds
    // one after the other (the first round also warms the page cache), the best round of each.
    let (mut raw, mut standard, mut one_pass) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let (mut ahead_standard, mut ahead_one_pass) = (Duration::MAX, Duration::MAX);
    let (mut at, mut bytes) = (0u64, 0u64);
    for _ in 0..3 {
        let started = Instant::now();
        (at, bytes) = (0, 0);
        loop {
            let page = log.read_raw_after(at, batch).await?;
            let Some(last) = page.last() else { break };
            at = last.position;
            bytes += page.iter().map(|e| e.body.len() as u64).sum::<u64>();
        }
        raw = raw.min(started.elapsed());
        let started = Instant::now();
        let mut read = 0u64;
        loop {
            let page = log.read_after(read, batch).await?;
            let Some(last) = page.last() else { break };
            read = last.position();
        }
        standard = standard.min(started.elapsed());
        let started = Instant::now();
        let mut read = 0u64;
        loop {
            let page = read_decoded_after(&log, read, batch).await?;
            let Some(last) = page.last() else { break };
            read = last.position();
        }
        one_pass = one_pass.min(started.elapsed());
        let started = Instant::now();
        read_ahead(&log, batch, standard_open).await?;
        ahead_standard = ahead_standard.min(started.elapsed());
        let started = Instant::now();
        read_ahead(&log, batch, open_recorded).await?;
        ahead_one_pass = ahead_one_pass.min(started.elapsed());
    }
    ctx.rec.figure(
        "rebuild",
        "log_read_raw_events_per_s",
        rate(at, raw),
        "events/s",
        json!({"events": at, "bytes": bytes, "page": batch, "rounds": 3, "what": "read_raw_after: stored bytes, not decoded; best of three rounds"}),
    );
    ctx.rec.figure(
        "rebuild",
        "log_read_decoded_events_per_s",
        rate(at, standard),
        "events/s",
        json!({"events": at, "page": batch, "rounds": 3, "what": "read_after: stored bytes decoded into envelopes by Envelope::decode (what a projector reads); best of three rounds"}),
    );
    ctx.rec.figure(
        "rebuild",
        "log_read_decoded_one_pass_events_per_s",
        rate(at, one_pass),
        "events/s",
        json!({"events": at, "page": batch, "rounds": 3, "what": "read_raw_after, then contingent_projections::open_recorded: the same envelopes decoded in one pass (sealed bodies by Envelope::decode); best of three rounds"}),
    );

    for (name, elapsed, decoder) in [
        (
            "log_read_ahead_decoded_events_per_s",
            ahead_standard,
            "RecordedEvent::open (Envelope::decode)",
        ),
        (
            "log_read_ahead_decoded_one_pass_events_per_s",
            ahead_one_pass,
            "contingent_projections::open_recorded",
        ),
    ] {
        ctx.rec.figure(
            "rebuild",
            name,
            rate(at, elapsed),
            "events/s",
            json!({"events": at, "page": batch, "rounds": 3, "decoder": decoder, "what": "read_raw_after of the next page on a task of its own while this page is decoded; best of three rounds"}),
        );
    }

    // Decoding alone, in memory: the same bodies both ways, alternated, best of three.
    let mut bodies = Vec::with_capacity(at as usize);
    let mut read = 0u64;
    loop {
        let page = log.read_raw_after(read, batch).await?;
        let Some(last) = page.last() else { break };
        read = last.position;
        bodies.extend(page.into_iter().map(|e| e.body));
    }
    let (mut standard, mut one_pass, mut fallbacks) = (Duration::MAX, Duration::MAX, 0u64);
    for _ in 0..3 {
        let started = Instant::now();
        for body in &bodies {
            std::hint::black_box(Envelope::decode(body)?);
        }
        standard = standard.min(started.elapsed());
        let started = Instant::now();
        fallbacks = 0;
        for body in &bodies {
            let envelope = match decode_envelope(body) {
                Some(e) => e,
                None => {
                    fallbacks += 1;
                    Envelope::decode(body)?
                }
            };
            std::hint::black_box(envelope);
        }
        one_pass = one_pass.min(started.elapsed());
    }
    let n = bodies.len() as u64;
    drop(bodies);
    ctx.rec.figure(
        "rebuild",
        "decode_standard_events_per_s",
        rate(n, standard),
        "events/s",
        json!({"events": n, "what": "Envelope::decode of the stored bodies, in memory, no reading; best of three"}),
    );
    ctx.rec.figure(
        "rebuild",
        "decode_one_pass_events_per_s",
        rate(n, one_pass),
        "events/s",
        json!({"events": n, "standard_decoder_for": fallbacks, "what": "decode_envelope of the same bodies (Envelope::decode for those it leaves: sealed ones), in memory; best of three"}),
    );

    // The projector reads ahead on a task of its own, which holds the log.
    let shared: Arc<dyn EventLog> = Arc::new(log.clone());
    let mut engines: Vec<(&str, Option<ReadDatabase>)> = vec![("sqlite", None)];
    match ctx.pg_database().await? {
        Some(url) => engines.push(("postgres", Some(ReadDatabase::Postgres(url)))),
        None => ctx.rec.note(
            "PostgreSQL: skipped (no server: pass --database or set CONTINGENT_TEST_DATABASE_URL)",
        ),
    }
    let count = all_projections().len();
    for (engine, pg) in engines {
        for which in 0..=count {
            let projections: Vec<Box<dyn Projection>> = if which == count {
                all_projections()
            } else {
                all_projections().into_iter().skip(which).take(1).collect()
            };
            let name = if which == count {
                "all".to_owned()
            } else {
                projections[0].name().to_owned()
            };
            let database = match &pg {
                Some(db) => db.clone(),
                None => {
                    let dir = ctx.work("rebuild-sqlite")?;
                    let path = dir.join(format!("{name}.db"));
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                    }
                    ReadDatabase::Sqlite(path)
                }
            };
            let r = rebuild(database, projections, &shared, batch).await?;
            let mut conditions = json!({
                "events": r.events, "rows_written": r.rows, "statements": r.statements,
                "rows_per_s": round(rate(r.rows, r.elapsed), 0),
                "seconds": round(r.elapsed.as_secs_f64(), 2), "batch": batch,
            });
            if engine == "postgres" {
                conditions["server"] = ctx.pg_settings().await;
                conditions["vacuum_analyze_seconds"] = json!(round(r.vacuum.as_secs_f64(), 2));
                conditions["events_per_s_without_vacuum_analyze"] =
                    json!(round(rate(r.events, r.elapsed - r.vacuum), 0));
            } else {
                conditions["sqlite"] = json!("a fresh file as contingent rebuild fills it: rollback journal in memory, synchronous=OFF, turned to WAL and synced at the end");
            }
            ctx.rec.figure(
                "rebuild",
                &format!("{engine}_{name}_events_per_s"),
                rate(r.events, r.elapsed),
                "events/s",
                conditions,
            );
        }
    }
    log.close().await;

    if let Some(url) = ctx.pg_database().await? {
        copy(ctx, &url, at as usize).await?;
    }
    Ok(())
}

const MARK_COLUMNS: &str = "mark_id TEXT COLLATE \"C\", learner_id TEXT COLLATE \"C\", \
     class_id TEXT COLLATE \"C\", subject TEXT COLLATE \"C\", lesson_date TEXT COLLATE \"C\", \
     period TEXT COLLATE \"C\", kind TEXT COLLATE \"C\", work TEXT COLLATE \"C\", \
     value TEXT COLLATE \"C\", points BIGINT, weight BIGINT, teacher TEXT COLLATE \"C\", \
     corrections BIGINT, original_value TEXT COLLATE \"C\"";

/// `rows` rows shaped like `diary_marks`, as COPY text.
fn mark_rows(rows: usize) -> String {
    let mut out = String::with_capacity(rows * 260);
    let learners = 2_500u128;
    for i in 0..rows as u128 {
        let mark = uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | i);
        let learner =
            uuid::Uuid::from_u128(0x0191_0000_0000_7000_8000_0000_0000_0000 | (i % learners));
        let class =
            uuid::Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 | (i % learners / 25));
        let points = 2 + (i % 4) as u8;
        let _ = writeln!(
            out,
            "{mark}\t{learner}\t{class}\tМатематика\t2026-10-{:02}\tterm-1\tcurrent\tсамостоятельная работа\t{points}\t{points}\t2\tteacher-{}\t0\t{points}",
            1 + (i % 28),
            i % 400
        );
    }
    out
}

/// PostgreSQL `COPY` of as many rows as the log has events into a table as wide as
/// `diary_marks`: plain, then with its primary key and index.
async fn copy(ctx: &mut Ctx, url: &str, rows: usize) -> Result<()> {
    let text = mark_rows(rows);
    let settings = ctx.pg_settings().await;
    let mut conn = sqlx::postgres::PgConnection::connect(url).await?;
    for (name, keyed) in [("plain", false), ("keyed", true)] {
        sqlx::raw_sql("DROP TABLE IF EXISTS bench_copy")
            .execute(&mut conn)
            .await?;
        sqlx::raw_sql(&format!("CREATE TABLE bench_copy ({MARK_COLUMNS})"))
            .execute(&mut conn)
            .await?;
        if keyed {
            sqlx::raw_sql(
                "ALTER TABLE bench_copy ADD PRIMARY KEY (mark_id); \
                 CREATE INDEX bench_copy_by_learner ON bench_copy (learner_id, subject, lesson_date)",
            )
            .execute(&mut conn)
            .await?;
        }
        let started = Instant::now();
        let mut copy = conn.copy_in_raw("COPY bench_copy FROM STDIN").await?;
        for chunk in text.as_bytes().chunks(1 << 20) {
            copy.send(chunk).await?;
        }
        let copied = copy.finish().await?;
        let elapsed = started.elapsed();
        ctx.rec.figure(
            "rebuild",
            &format!("postgres_copy_{name}_rows_per_s"),
            rate(copied, elapsed),
            "rows/s",
            json!({"rows": copied, "bytes": text.len(), "columns": 14,
                   "table": if keyed { "diary_marks' columns, primary key and index" } else { "diary_marks' columns, no key, no index" },
                   "server": settings.clone()}),
        );
    }
    sqlx::raw_sql("DROP TABLE IF EXISTS bench_copy")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
