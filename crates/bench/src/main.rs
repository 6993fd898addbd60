//! `contingent-bench`: the registry's benchmarks, each next to the machine's own limit where one
//! applies, printing every figure with its conditions and appending it as a JSON line to
//! `target/bench/results.jsonl`.
//!
//! ```sh
//! cargo run --release -p contingent-bench -- all
//! cargo run --release -p contingent-bench -- append --commands 200000
//! ```
//!
//! Suites: `append` (durable append throughput, embedded and Kafka, with the disk's fsync
//! bandwidth and the broker's raw produce rate), `baseline` (two PostgreSQL event stores driven
//! by the same commands: a conventional one, one transaction per command, and one with a global
//! position and group commit), `rebuild` (projection rebuild per read model, SQLite and
//! PostgreSQL, with PostgreSQL COPY), `query` (HTTP query latency and throughput on loopback),
//! `lag` (acknowledged to visible in the read models), `memory` (writer state per learner, log
//! bytes per event), `recovery` (what a failed append costs the writer). A suite whose server is
//! absent is skipped, saying so.

mod append;
mod baseline;
mod fixture;
mod grouped;
mod lag;
mod limits;
mod memory;
mod peer;
mod query;
mod rebuild;
mod recovery;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use contingent_domain::Command;
use contingent_log::Metadata;
use sqlx::Connection;

use crate::fixture::Fixture;
use crate::report::{Machine, Recorder};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Suite {
    Append,
    Baseline,
    Rebuild,
    Query,
    Lag,
    Memory,
    Recovery,
    All,
}

impl Suite {
    const ORDER: &'static [Suite] = &[
        Suite::Append,
        Suite::Baseline,
        Suite::Rebuild,
        Suite::Query,
        Suite::Lag,
        Suite::Memory,
        Suite::Recovery,
    ];

    fn name(self) -> &'static str {
        match self {
            Suite::Append => "append",
            Suite::Baseline => "baseline",
            Suite::Rebuild => "rebuild",
            Suite::Query => "query",
            Suite::Lag => "lag",
            Suite::Memory => "memory",
            Suite::Recovery => "recovery",
            Suite::All => "all",
        }
    }
}

/// The registry's benchmarks against the machine's limits.
#[derive(Debug, Clone, Parser)]
#[command(name = "contingent-bench", version)]
pub struct Opts {
    /// Which benchmarks to run.
    #[arg(value_enum, required_unless_present = "probe_memory")]
    suites: Vec<Suite>,
    /// PostgreSQL server for the PostgreSQL read models, COPY and the baseline (a fresh
    /// database is created on it and dropped afterwards).
    #[arg(long, env = "CONTINGENT_TEST_DATABASE_URL")]
    pub database: Option<String>,
    /// Kafka bootstrap servers for the Kafka log and the raw produce rate.
    #[arg(long, env = "CONTINGENT_TEST_KAFKA")]
    pub kafka: Option<String>,
    /// PostgreSQL server for the baseline event store only (default: --database).
    #[arg(long)]
    pub baseline_database: Option<String>,
    /// Multiplies the region (the demo's 2,500 learners, 12 schools, …) and the command counts.
    #[arg(long, default_value_t = 1)]
    pub scale: u32,
    /// Seed of the region and of the commands.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// record_mark commands per append run (times --scale).
    #[arg(long, default_value_t = 100_000)]
    pub commands: usize,
    /// Concurrent submitters of the append runs.
    #[arg(long, default_value_t = 4096)]
    pub submitters: usize,
    /// Events per batch of the rebuilds (default: `contingent rebuild`'s).
    #[arg(long, default_value_t = contingent_projections::REBUILD_BATCH)]
    pub batch: usize,
    /// Seconds each query load is measured (after one second of warm-up).
    #[arg(long, default_value_t = 5.0)]
    pub query_seconds: f64,
    /// Concurrent requests of the query loads.
    #[arg(long, value_delimiter = ',', default_value = "1,1000")]
    pub concurrency: Vec<usize>,
    /// Commands per lag run (times --scale).
    #[arg(long, default_value_t = 1000)]
    pub lag_commands: usize,
    /// Concurrent callers of the loaded lag run.
    #[arg(long, default_value_t = 64)]
    pub lag_callers: usize,
    /// Connections of the baseline event store (and of the grouped peer's stream loads).
    #[arg(long, default_value_t = 32)]
    pub baseline_connections: usize,
    /// Longest each PostgreSQL peer runs, in seconds (it stops earlier when the commands run out).
    #[arg(long, default_value_t = 30.0)]
    pub baseline_seconds: f64,
    /// The recovery suite grows the region's log to this many events first (through the
    /// writer, with marks), to show that a failed append costs the same on a long log.
    #[arg(long, default_value_t = 0)]
    pub recovery_log_events: u64,
    /// The recovery suite fails every n-th append.
    #[arg(long, default_value_t = 25)]
    pub fail_every: usize,
    /// Where regions are kept and benchmarks write.
    #[arg(long, default_value = "target/bench")]
    pub dir: PathBuf,
    /// The results file (JSON lines, appended).
    #[arg(long, default_value = "target/bench/results.jsonl")]
    pub results: PathBuf,
    /// Keep the benchmarks' working files (the generated region is always kept).
    #[arg(long)]
    pub keep: bool,
    #[arg(long, hide = true)]
    probe_memory: Option<String>,
    #[arg(long, hide = true)]
    probe_dir: Option<PathBuf>,
}

/// Figures later suites compare against.
#[derive(Default)]
pub struct Results {
    /// The embedded log's durable append rate, events per second.
    pub embedded_events_per_s: Option<f64>,
}

/// What the suites share in one run.
pub struct Ctx {
    /// The command line.
    pub opts: Opts,
    /// Where figures go.
    pub rec: Recorder,
    /// Figures later suites compare against.
    pub results: Results,
    run_dir: PathBuf,
    fixture: Option<Fixture>,
    commands: Option<Vec<(Command, Metadata)>>,
    pg: Option<Option<String>>,
    pg_settings: Option<serde_json::Value>,
    /// The databases this run created: server, name and URL.
    databases: Vec<(String, String, String)>,
}

impl Ctx {
    /// The region (generated on first use, or reused).
    pub async fn fixture(&mut self) -> Result<Fixture> {
        if self.fixture.is_none() {
            let f =
                Fixture::get(&self.opts.dir, self.opts.seed, self.opts.scale, &self.rec).await?;
            self.fixture = Some(f);
        }
        Ok(self.fixture.clone().expect("set above"))
    }

    /// The append benchmarks' command stream: the same for the embedded log, Kafka and the
    /// baseline.
    pub async fn commands(&mut self) -> Result<Vec<(Command, Metadata)>> {
        if self.commands.is_none() {
            let fixture = self.fixture().await?;
            let state = fixture.state().await?;
            let n = self.opts.commands * self.opts.scale.max(1) as usize;
            self.commands = Some(fixture::mark_commands(
                &state,
                fixture.today,
                n,
                self.opts.seed,
            )?);
        }
        Ok(self.commands.clone().expect("set above"))
    }

    /// A fresh directory for one benchmark's files.
    pub fn work(&self, name: &str) -> Result<PathBuf> {
        let dir = self.run_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// A fresh database on the `--database` server for this run, if there is a server.
    pub async fn pg_database(&mut self) -> Result<Option<String>> {
        if self.pg.is_none() {
            let url = match self.opts.database.clone() {
                Some(server) => Some(self.fresh_database(&server).await?),
                None => None,
            };
            self.pg = Some(url);
        }
        Ok(self.pg.clone().flatten())
    }

    /// The settings of the `--database` server that bear on durability, as `name=value` text.
    pub async fn pg_settings(&mut self) -> serde_json::Value {
        if self.pg_settings.is_none() {
            let settings = match self.pg_database().await {
                Ok(Some(url)) => server_settings(&url).await.unwrap_or_default(),
                _ => serde_json::Value::Null,
            };
            self.pg_settings = Some(settings);
        }
        self.pg_settings.clone().unwrap_or_default()
    }

    /// Creates a database on `server` (dropped at the end of the run); returns its URL.
    pub async fn fresh_database(&mut self, server: &str) -> Result<String> {
        let name = format!("contingent_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::postgres::PgConnection::connect(server)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {server}"))?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let (base, rest) = server
            .rsplit_once('/')
            .context("a PostgreSQL URL ends in /database")?;
        let query = rest
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        let url = format!("{base}/{name}{query}");
        self.databases.push((server.to_owned(), name, url.clone()));
        Ok(url)
    }

    /// Vacuums and analyzes the benchmark's PostgreSQL databases after a suite (not timed), so
    /// that autovacuum does not take its turn on what the suite loaded while the next suite is
    /// measured.
    async fn settle(&mut self) {
        for (_, _, url) in &self.databases {
            let Ok(mut conn) = sqlx::postgres::PgConnection::connect(url).await else {
                continue;
            };
            if let Err(error) = sqlx::raw_sql("VACUUM (ANALYZE)").execute(&mut conn).await {
                println!("  (vacuuming {url} failed: {error})");
            }
            let _ = conn.close().await;
        }
    }

    async fn cleanup(&mut self) {
        for (server, name, _) in self.databases.drain(..) {
            if let Ok(mut conn) = sqlx::postgres::PgConnection::connect(&server).await {
                let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        }
        if !self.opts.keep {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

/// `fsync`, `synchronous_commit`, `full_page_writes` and the version of a PostgreSQL server.
pub async fn server_settings(url: &str) -> Result<serde_json::Value> {
    let mut conn = sqlx::postgres::PgConnection::connect(url).await?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, setting FROM pg_settings WHERE name IN \
         ('fsync', 'synchronous_commit', 'full_page_writes', 'server_version') ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    Ok(serde_json::Value::Object(
        rows.into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    ))
}

/// Whether a TCP address (`host:port`, the first of a list) answers.
async fn reachable(addresses: &str) -> bool {
    let first = addresses.split(',').next().unwrap_or(addresses).trim();
    let first = first
        .split("://")
        .last()
        .unwrap_or(first)
        .rsplit('@')
        .next()
        .unwrap_or(first);
    let host_port = first.split('/').next().unwrap_or(first);
    matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(3),
            tokio::net::TcpStream::connect(host_port)
        )
        .await,
        Ok(Ok(_))
    )
}

/// mimalloc rather than the system allocator: answering queries allocates many short-lived
/// buffers from many threads, where glibc's malloc spent ~18 % of the CPU in a profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let mut opts = Opts::parse();
    if let Some(mode) = &opts.probe_memory {
        let dir = opts.probe_dir.clone().context("--probe-dir")?;
        return memory::probe(mode, &dir).await;
    }
    std::fs::create_dir_all(&opts.dir)?;
    let machine = Machine::probe(&opts.dir);
    let rec = Recorder::new(opts.results.clone(), machine)?;
    println!(
        "contingent-bench on {}; load average {:.2}",
        rec.machine().describe(),
        report::load_average()
    );
    if let Some(db) = opts.database.clone() {
        if !reachable(&db).await {
            println!("  · PostgreSQL at {db} does not answer: its suites are skipped");
            opts.database = None;
        }
    }
    if let Some(k) = opts.kafka.clone() {
        if !reachable(&k).await {
            println!("  · Kafka at {k} does not answer: its suites are skipped");
            opts.kafka = None;
        }
    }
    let suites: Vec<Suite> = if opts.suites.contains(&Suite::All) {
        Suite::ORDER.to_vec()
    } else {
        Suite::ORDER
            .iter()
            .copied()
            .filter(|s| opts.suites.contains(s))
            .collect()
    };
    let run_dir = opts.dir.join(format!("run-{}", std::process::id()));
    let mut ctx = Ctx {
        rec,
        results: Results::default(),
        run_dir,
        fixture: None,
        commands: None,
        pg: None,
        pg_settings: None,
        databases: Vec::new(),
        opts,
    };
    let started = Instant::now();
    let mut failed = Vec::new();
    for suite in suites {
        println!("\n== {} ==", suite.name());
        let t = Instant::now();
        let outcome = match suite {
            Suite::Append => append::run(&mut ctx).await,
            Suite::Baseline => baseline::run(&mut ctx).await,
            Suite::Rebuild => rebuild::run(&mut ctx).await,
            Suite::Query => query::run(&mut ctx).await,
            Suite::Lag => lag::run(&mut ctx).await,
            Suite::Memory => memory::run(&mut ctx).await,
            Suite::Recovery => recovery::run(&mut ctx).await,
            Suite::All => Ok(()),
        };
        ctx.settle().await;
        match outcome {
            Ok(()) => println!(
                "  ({} took {:.1}s)",
                suite.name(),
                t.elapsed().as_secs_f64()
            ),
            Err(e) => {
                println!("  {} failed: {e:#}", suite.name());
                failed.push(suite.name());
            }
        }
    }
    ctx.cleanup().await;
    println!(
        "\nfinished in {:.1}s; figures appended to {}",
        started.elapsed().as_secs_f64(),
        ctx.rec.path().display()
    );
    if !failed.is_empty() {
        anyhow::bail!("failed: {}", failed.join(", "));
    }
    Ok(())
}
