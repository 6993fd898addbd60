//! The second PostgreSQL peer, shaped like the PostgreSQL event stores (Marten's `mt_events`,
//! message-db's `messages`): one `events` table with a global position (`global_position
//! BIGSERIAL PRIMARY KEY`) and each event's stream and version in its stream, unique together,
//! which is the optimistic-concurrency check; appends of many callers gathered by one committer
//! and written in one `INSERT … SELECT FROM unnest(…) ON CONFLICT (stream_id, version) DO NOTHING
//! RETURNING` statement, its own transaction, with `synchronous_commit = on` (group commit):
//! each caller is answered after that commit, appended or refused for a version another append
//! took first. Every command loads its stream and is checked against it as the conventional
//! peer does (`peer::load_and_check`), from as many concurrent submitters as the registry's
//! append benchmark has (4,096), the loads over `--baseline-connections` (32) connections.
//!
//! It runs twice: without a cache, every attempt loading and parsing the learner's whole stream
//! (as message-db's `get_stream_messages` and a handler folding it do), and with the streams'
//! states kept in memory between commands (`peer::StreamCache`, as Equinox's cache or a Marten
//! aggregate kept live do), an attempt then loading only the events after the version it holds.
//! No snapshots in the database, no hash chain or signature. One committer writes at a time, so global
//! positions follow commit order; an append refused by the unique constraint still takes a value
//! of the sequence, so positions have gaps.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use contingent_domain::Command;
use contingent_log::Metadata;
use serde_json::json;
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{Connection, Executor, PgPool};
use tokio::sync::{mpsc, oneshot};

use crate::peer::{self, Decision, NewEvent, Outcome, Peer, StreamCache};
use crate::report::{rate, round};
use crate::Ctx;

pub const SCHEMA: &str = "DROP TABLE IF EXISTS events; \
    CREATE TABLE events (global_position BIGSERIAL PRIMARY KEY, stream_id TEXT NOT NULL, \
    version BIGINT NOT NULL, type TEXT NOT NULL, data JSONB NOT NULL, metadata JSONB NOT NULL, \
    UNIQUE (stream_id, version))";

/// Most appends one transaction takes (the registry's group commits fill to about as many).
pub const MAX_BATCH: usize = 1024;

const INSERT: &str = "INSERT INTO events (stream_id, version, type, data, metadata) \
    SELECT s, v, t, d::jsonb, m::jsonb \
    FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[]) \
    WITH ORDINALITY AS x(s, v, t, d, m, o) ORDER BY o \
    ON CONFLICT (stream_id, version) DO NOTHING RETURNING stream_id, version";

struct Pending {
    event: NewEvent,
    answer: oneshot::Sender<Result<bool, String>>,
}

/// Gathers appends from many callers and writes whatever has arrived in one transaction.
pub struct Committer {
    tx: mpsc::UnboundedSender<Pending>,
    task: tokio::task::JoinHandle<()>,
    /// Transactions committed.
    pub commits: Arc<AtomicU64>,
    /// Events appended.
    pub events: Arc<AtomicU64>,
}

impl Committer {
    /// Connects its own connection to `url` (`synchronous_commit = on`) and starts committing.
    pub async fn start(url: &str) -> Result<Self> {
        let mut conn = PgConnection::connect(url)
            .await
            .context("connecting the committer")?;
        conn.execute("SET synchronous_commit = on").await?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Pending>();
        let commits = Arc::new(AtomicU64::new(0));
        let events = Arc::new(AtomicU64::new(0));
        let (c, e) = (commits.clone(), events.clone());
        let task = tokio::spawn(async move {
            let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                // Two appends at the same stream version in one batch: the first goes in, the
                // later ones lose the race without being sent.
                let mut keys = HashSet::with_capacity(batch.len());
                let mut sent = Vec::with_capacity(batch.len());
                for p in batch.drain(..) {
                    if keys.insert((p.event.stream.clone(), p.event.version)) {
                        sent.push(p);
                    } else {
                        let _ = p.answer.send(Ok(false));
                    }
                }
                match write(&mut conn, &sent).await {
                    Ok(appended) => {
                        c.fetch_add(1, Ordering::Relaxed);
                        e.fetch_add(appended.len() as u64, Ordering::Relaxed);
                        for p in sent {
                            let key = (p.event.stream, p.event.version);
                            let _ = p.answer.send(Ok(appended.contains(&key)));
                        }
                    }
                    Err(err) => {
                        let text = format!("{err:#}");
                        for p in sent {
                            let _ = p.answer.send(Err(text.clone()));
                        }
                    }
                }
            }
            let _ = conn.close().await;
        });
        Ok(Self {
            tx,
            task,
            commits,
            events,
        })
    }

    /// Appends `event` with the next group commit: true once committed, false when its stream
    /// already held its version (another append was first).
    pub async fn append(&self, event: NewEvent) -> Result<bool> {
        let (answer, answered) = oneshot::channel();
        self.tx
            .send(Pending { event, answer })
            .map_err(|_| anyhow::anyhow!("the committer has stopped"))?;
        answered
            .await
            .context("the committer dropped an append")?
            .map_err(|e| anyhow::anyhow!("group commit failed: {e}"))
    }

    /// Stops after the appends already sent.
    pub async fn stop(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// One transaction: the batch's events in their order; returns the (stream, version) of those
/// inserted.
async fn write(conn: &mut PgConnection, batch: &[Pending]) -> Result<HashSet<(String, i64)>> {
    let streams: Vec<&str> = batch.iter().map(|p| p.event.stream.as_str()).collect();
    let versions: Vec<i64> = batch.iter().map(|p| p.event.version).collect();
    let kinds: Vec<&str> = batch.iter().map(|p| p.event.kind).collect();
    let data: Vec<&str> = batch.iter().map(|p| p.event.data.as_str()).collect();
    let metadata: Vec<&str> = batch.iter().map(|p| p.event.metadata.as_str()).collect();
    let rows: Vec<(String, i64)> = sqlx::query_as(INSERT)
        .bind(&streams)
        .bind(&versions)
        .bind(&kinds)
        .bind(&data)
        .bind(&metadata)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// The peer: load and check over a pool (with a cache of the streams' states or without), append
/// through the committer.
pub struct GroupedStore {
    pub pool: PgPool,
    pub cache: Option<StreamCache>,
    pub committer: Committer,
}

#[async_trait::async_trait]
impl Peer for GroupedStore {
    async fn attempt(&self, command: &Command, meta: &Metadata) -> Result<(Outcome, usize)> {
        let (decision, loaded) =
            peer::load_and_check(&self.pool, self.cache.as_ref(), command, meta).await?;
        let Decision::Append(event) = decision else {
            return Ok((Outcome::Refused, loaded));
        };
        let outcome = if self.committer.append(event).await? {
            Outcome::Appended
        } else {
            Outcome::Conflict
        };
        Ok((outcome, loaded))
    }
}

/// Opens the peer on `url`: the schema created afresh, loads over `connections` connections, the
/// streams' states kept between commands if `cached`.
pub async fn open(url: &str, connections: usize, cached: bool) -> Result<GroupedStore> {
    let pool = PgPoolOptions::new()
        .max_connections(connections as u32)
        .connect(url)
        .await
        .context("connecting to the grouped peer's PostgreSQL")?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    let committer = Committer::start(url).await?;
    Ok(GroupedStore {
        pool,
        cache: cached.then(StreamCache::default),
        committer,
    })
}

/// The benchmark: the append benchmark's commands from `--submitters` workers, on a fresh
/// database each, without a cache of the streams' states and with one.
pub async fn run(ctx: &mut Ctx, server: &str) -> Result<()> {
    measure(ctx, server, false).await?;
    measure(ctx, server, true).await
}

async fn measure(ctx: &mut Ctx, server: &str, cached: bool) -> Result<()> {
    let name = if cached {
        "grouped_cached_event_store"
    } else {
        "grouped_event_store"
    };
    let fixture = ctx.fixture().await?;
    let commands = Arc::new(ctx.commands().await?);
    let url = ctx.fresh_database(server).await?;
    let connections = ctx.opts.baseline_connections;
    let submitters = ctx.opts.submitters;
    let server_settings = crate::server_settings(&url).await?;
    let store = open(&url, connections, cached).await?;
    let seeded = peer::seed(&store.pool, &fixture.log_path()).await?;
    ctx.rec.note(&format!(
        "{name}: {seeded} events of the region's learners seeded into their streams"
    ));
    let limit = Duration::from_secs_f64(ctx.opts.baseline_seconds);
    let store = Arc::new(store);
    let tally = peer::drive(store.clone(), commands, submitters, limit).await?;
    let commits = store.committer.commits.load(Ordering::Relaxed);
    let committed = store.committer.events.load(Ordering::Relaxed);
    let Ok(store) = Arc::try_unwrap(store) else {
        anyhow::bail!("the grouped peer is still in use");
    };
    store.committer.stop().await;
    store.pool.close().await;
    if committed != tally.appended {
        anyhow::bail!(
            "{name} committed {committed} events but answered {} appends",
            tally.appended
        );
    }
    if tally.appended == 0 {
        anyhow::bail!(
            "{name} appended nothing ({} commands refused)",
            tally.refused
        );
    }
    let events_per_s = rate(tally.appended, tally.elapsed);
    ctx.rec.figure(
        "baseline",
        &format!("{name}_events_per_s"),
        events_per_s,
        "events/s",
        json!({
            "commands_done": tally.appended + tally.refused, "appended": tally.appended,
            "refused": tally.refused, "conflicts_retried": tally.conflicts,
            "group_commits": commits,
            "events_per_group_commit": round(tally.appended as f64 / commits.max(1) as f64, 1),
            "mean_stream_events_loaded": round(tally.loaded_per_command(), 1),
            "submitters": submitters, "load_connections": connections,
            "seconds": round(tally.elapsed.as_secs_f64(), 2),
            "latency": tally.latency.json(), "server": server_settings,
            "session": "synchronous_commit=on", "seeded_events": seeded,
            "stream_state_cache": cached,
            "peer": "one events table, global position bigserial, unique (stream_id, version); each command loads and parses its learner's stream (with the cache: only the events after the version the cache holds); appends of all submitters gathered into one INSERT per transaction (group commit, up to 1,024), a version already taken refused and the command retried from the load",
        }),
    );
    match ctx.results.embedded_events_per_s {
        Some(ours) => ctx.rec.figure(
            "baseline",
            &format!("embedded_over_{name}_ratio"),
            ours / events_per_s.max(1e-9),
            "x",
            json!({"embedded_events_per_s": round(ours, 0), "peer_events_per_s": round(events_per_s, 0)}),
        ),
        None => ctx
            .rec
            .note("ratio: run the append suite in the same run (`all`) to compare"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Against the test PostgreSQL (`CONTINGENT_TEST_DATABASE_URL`), a fresh database each.

    use super::*;
    use contingent_domain::{
        ClassId, LearnerId, Mark, MarkId, MarkKind, MarkRecorded, SourceKind, Text,
    };
    use contingent_log::Source;
    use contingent_testkit::PgDatabase;
    use sqlx::Row;

    fn text(s: &str) -> Text {
        Text::parse(s).expect("a constant text is valid")
    }

    fn mark(learner: LearnerId, class: ClassId) -> (Command, Metadata) {
        let command = Command::RecordMark(MarkRecorded {
            mark_id: MarkId::from_uuid(uuid::Uuid::new_v4()),
            learner_id: learner,
            class_id: class,
            subject: text("Математика"),
            lesson_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 2).expect("a date"),
            kind: MarkKind::Current,
            work: text("ответ на уроке"),
            period: None,
            value: Mark::Four,
            weight: 1,
            teacher: text("teacher-1"),
        });
        let meta = Metadata {
            source: Source {
                kind: SourceKind::Organization,
                id: "school-1".to_owned(),
            },
            actor: "teacher-1".to_owned(),
            idempotency_key: None,
            request_fingerprint: None,
        };
        (command, meta)
    }

    /// `streams` learners, each placed in a class by the first event of its stream.
    async fn placed(store: &GroupedStore, streams: usize) -> Vec<(LearnerId, ClassId)> {
        let mut out = Vec::new();
        for _ in 0..streams {
            let learner = LearnerId::from_uuid(uuid::Uuid::new_v4());
            let class = ClassId::from_uuid(uuid::Uuid::new_v4());
            sqlx::query(
                "INSERT INTO events (stream_id, version, type, data, metadata) \
                 VALUES ($1, 1, 'learner_placed', $2::jsonb, '{}'::jsonb)",
            )
            .bind(learner.to_string())
            .bind(json!({"class_id": class.to_string()}).to_string())
            .execute(&store.pool)
            .await
            .expect("a placement");
            out.push((learner, class));
        }
        out
    }

    #[tokio::test]
    async fn concurrent_submitters_append_every_event_once_in_stream_order() {
        every_event_once_in_stream_order(false).await;
    }

    #[tokio::test]
    async fn with_the_cache_of_stream_states_every_event_is_appended_once_in_stream_order() {
        every_event_once_in_stream_order(true).await;
    }

    async fn every_event_once_in_stream_order(cached: bool) {
        let db = PgDatabase::create().await;
        let store = Arc::new(open(db.url(), 8, cached).await.expect("the peer opens"));
        let learners = placed(&store, 20).await;
        // 400 commands, 20 per learner, dealt round-robin to 128 workers: appends to the same
        // stream race all the time.
        let commands: Vec<_> = (0..400)
            .map(|i| {
                let (l, c) = learners[i % learners.len()];
                mark(l, c)
            })
            .collect();
        let marks: Vec<String> = commands
            .iter()
            .map(|(c, _)| match c {
                Command::RecordMark(m) => m.mark_id.to_string(),
                _ => unreachable!(),
            })
            .collect();
        let commands = Arc::new(commands);
        let tally = peer::drive(
            store.clone(),
            commands.clone(),
            128,
            Duration::from_secs(60),
        )
        .await
        .expect("the commands run");
        assert_eq!((tally.appended, tally.refused), (400, 0));
        assert!(
            tally.conflicts > 0,
            "racing appends to 20 streams met no version conflict"
        );
        assert_eq!(store.committer.events.load(Ordering::Relaxed), 400);
        assert!(store.committer.commits.load(Ordering::Relaxed) < 400);

        // Every mark once, nothing else appended.
        let rows = sqlx::query(
            "SELECT data->>'mark_id' AS mark, count(*) AS n FROM events \
             WHERE type = 'mark_recorded' GROUP BY 1",
        )
        .fetch_all(&store.pool)
        .await
        .expect("the marks");
        let mut found: Vec<String> = rows
            .iter()
            .map(|r| {
                assert_eq!(r.get::<i64, _>("n"), 1, "a mark appended twice");
                r.get("mark")
            })
            .collect();
        found.sort();
        let mut expected = marks.clone();
        expected.sort();
        assert_eq!(found, expected);
        // Each stream's versions are 1..=21 without a hole, and its global positions rise with
        // its versions.
        let streams: Vec<(String, i64, i64, bool)> = sqlx::query_as(
            "SELECT stream_id, count(*), max(version), \
             bool_and(global_position > coalesce(prev, 0)) FROM \
             (SELECT stream_id, version, global_position, \
              lag(global_position) OVER (PARTITION BY stream_id ORDER BY version) AS prev \
              FROM events) e GROUP BY stream_id",
        )
        .fetch_all(&store.pool)
        .await
        .expect("the streams");
        assert_eq!(streams.len(), 20);
        for (stream, count, max, rising) in streams {
            assert_eq!((count, max), (21, 21), "stream {stream}");
            assert!(rising, "stream {stream}: positions out of version order");
        }
        // The same command again is refused: the mark is no longer new.
        let (outcome, _) = store
            .attempt(&commands[0].0, &commands[0].1)
            .await
            .expect("an attempt");
        assert_eq!(outcome, Outcome::Refused);
        let Ok(store) = Arc::try_unwrap(store) else {
            panic!("the store is still shared")
        };
        store.committer.stop().await;
        store.pool.close().await;
    }

    #[tokio::test]
    async fn an_append_at_a_version_already_taken_is_refused() {
        let db = PgDatabase::create().await;
        let store = open(db.url(), 4, false).await.expect("the peer opens");
        let (learner, class) = placed(&store, 1).await[0];
        let (first, meta) = mark(learner, class);
        let (second, _) = mark(learner, class);
        let event = |command: &Command| {
            let store = &store;
            let meta = &meta;
            let command = command.clone();
            async move {
                match peer::load_and_check(&store.pool, store.cache.as_ref(), &command, meta)
                    .await
                    .expect("a load")
                {
                    (Decision::Append(e), _) => e,
                    other => panic!("expected an append, got {other:?}"),
                }
            }
        };
        // Two callers both loaded the stream at version 1: both append at version 2 together.
        let (a, b) = (event(&first).await, event(&second).await);
        assert_eq!((a.version, b.version), (2, 2));
        let (a, b) = tokio::join!(store.committer.append(a), store.committer.append(b));
        let mut answers = [a.expect("answered"), b.expect("answered")];
        answers.sort();
        assert_eq!(
            answers,
            [false, true],
            "exactly one of the two appends wins"
        );

        // Another writer takes version 3 on its own connection; an append loaded before it
        // loses.
        let (third, _) = mark(learner, class);
        let late = event(&third).await;
        assert_eq!(late.version, 3);
        let mut other = PgConnection::connect(db.url()).await.expect("a connection");
        sqlx::query(
            "INSERT INTO events (stream_id, version, type, data, metadata) \
             VALUES ($1, 3, 'other', '{}'::jsonb, '{}'::jsonb)",
        )
        .bind(learner.to_string())
        .execute(&mut other)
        .await
        .expect("the other writer's event");
        other.close().await.expect("close");
        assert!(!store.committer.append(late).await.expect("answered"));
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&store.pool)
            .await
            .expect("a count");
        assert_eq!(
            count, 3,
            "the placement, one of the racing marks, the other writer's"
        );
        store.committer.stop().await;
        store.pool.close().await;
    }
}
