//! The one configuration struct.

use std::path::{Path, PathBuf};
use std::time::Duration;

use contingent_log_kafka::KafkaConfig;

/// Where the log of record lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogBackend {
    /// `DATA/log.db`, a SQLite file owned by one process.
    Embedded,
    /// A single-partition Kafka topic, shared by every process of the region.
    Kafka(KafkaConfig),
}

/// How the registry runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Directory of the embedded files: `log.db` (the event log), `read.db` (the read models),
    /// `journal.db` (the access journal), `marks*.db` (the writer's mark book) and `keys/`
    /// (the local token key, this writer's signing key `writer-key` and, by default, the
    /// region's trusted writer keys `writers.json`).
    pub data_dir: PathBuf,
    /// The log of record.
    pub log: LogBackend,
    /// A `postgres://` URL holding the read models and the access journal; none for the SQLite
    /// files in `data_dir`.
    pub database: Option<String>,
    /// A `postgres://` URL of the key store of learners' data keys (docs/personal-data.md)
    /// when it is not `database` (a rebuild into another database); by default `database`, or
    /// `keys.db` in `data_dir` without one.
    pub key_store: Option<String>,
    /// Whether this process applies the log to the read models. Off when separate
    /// `contingent project` processes do it.
    pub project: bool,
    /// Most commands decided and committed together in one group commit.
    pub max_batch: usize,
    /// Events applied to the read models per transaction at most.
    pub projector_batch: usize,
    /// Largest request body the API accepts, in bytes.
    pub max_body_bytes: usize,
    /// How often a process sharing the log with others reads what they appended while it has
    /// nothing to write, and how often it reads the projectors' positions when it does not
    /// project itself.
    pub follow_interval: Duration,
    /// How many marks the writer holds in memory before it settles the durable ones in its
    /// mark book (`mark_book_path`); a correction of a settled mark recalls it from there.
    pub settle_marks_at: usize,
    /// Bytes of answers to learner queries (diaries) the API keeps while nothing about the
    /// learner changes; 0 keeps none.
    pub read_cache_bytes: u64,
    /// What bounds the API's work for any one caller, address or moment.
    pub limits: RequestLimits,
    /// How long an `Idempotency-Key` is remembered after the command it came with was recorded
    /// (24 hours by default); after it, the same key names a new command.
    pub idempotency_window: Duration,
    /// The region's trusted writer keys (see [`contingent_log::WriterKeys`]). None: the file
    /// `keys/writers.json` in `data_dir`, where a writer registers its own key on first start
    /// (the embedded default). A file named here is configuration: a writer whose key it does
    /// not list as active refuses to start.
    pub writer_keys: Option<PathBuf>,
    /// How often the writer signs and stores a checkpoint of the head, when the head moved.
    pub checkpoint_interval: Duration,
    /// Appends made to fail on purpose, for fault-injection tests (none in any deployment).
    pub append_faults: Option<crate::AppendFaults>,
}

/// Bounds on the HTTP API, so that a flood of requests (with or without valid tokens) neither
/// exhausts the process nor grows the access journal, and good callers are still served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLimits {
    /// Longest a request may take before it is answered `503 timeout`.
    pub request_timeout: Duration,
    /// Requests served at once; past it a request is answered `503 overloaded` at once instead
    /// of waiting (`/healthz` and `/metrics` are not counted).
    pub max_concurrent_requests: usize,
    /// Requests per second one caller (a token's subject) may make on average (0: no limit)…
    pub caller_per_second: u32,
    /// …and at once, in a burst.
    pub caller_burst: u32,
    /// Refused requests (401: no token, a bad one, an expired one) one network address may make
    /// per minute on average (0: no limit); past it the address is answered `429` without its token being
    /// checked, until it is under the rate again.
    pub refused_per_address_per_minute: u32,
    /// …and at once, in a burst.
    pub refused_burst: u32,
    /// How often the count of refused anonymous requests is written to the access journal (one
    /// entry per period with the count, instead of one per request).
    pub anonymous_summary_every: Duration,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 2048,
            caller_per_second: 200,
            caller_burst: 1000,
            refused_per_address_per_minute: 120,
            refused_burst: 60,
            anonymous_summary_every: Duration::from_secs(60),
        }
    }
}

impl Settings {
    /// Defaults for a data directory: the embedded log and read models, projecting in process.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            log: LogBackend::Embedded,
            database: None,
            key_store: None,
            project: true,
            max_batch: 1024,
            projector_batch: contingent_projections::LIVE_BATCH,
            max_body_bytes: 64 * 1024,
            follow_interval: Duration::from_millis(100),
            settle_marks_at: 200_000,
            read_cache_bytes: 64 * 1024 * 1024,
            limits: RequestLimits::default(),
            idempotency_window: Duration::from_secs(24 * 3600),
            writer_keys: None,
            checkpoint_interval: Duration::from_secs(60),
            append_faults: None,
        }
    }

    /// The embedded event log file.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("log.db")
    }

    /// This writer's signing key: `keys/writer-key` in the data directory (mode 0600, made on
    /// first start).
    pub fn writer_key_path(&self) -> PathBuf {
        self.data_dir.join("keys").join("writer-key")
    }

    /// The file of the region's trusted writer keys.
    pub fn writer_keys_path(&self) -> PathBuf {
        self.writer_keys
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys").join("writers.json"))
    }

    /// The embedded read-model file.
    pub fn read_path(&self) -> PathBuf {
        self.data_dir.join("read.db")
    }

    /// The embedded access journal file.
    pub fn journal_path(&self) -> PathBuf {
        self.data_dir.join("journal.db")
    }

    /// The writer's mark book (derived from the log, one per log): `marks.db` beside the
    /// embedded log, `marks-<topic>.db` for a Kafka topic.
    pub fn mark_book_path(&self) -> PathBuf {
        match &self.log {
            LogBackend::Embedded => self.data_dir.join("marks.db"),
            LogBackend::Kafka(kafka) => {
                let topic: String = kafka
                    .topic
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                self.data_dir.join(format!("marks-{topic}.db"))
            }
        }
    }

    /// The writer's idempotency record (derived from the log, one per log): `idempotency.db`
    /// beside the embedded log, `idempotency-<topic>.db` for a Kafka topic.
    pub fn idempotency_path(&self) -> PathBuf {
        let book = self.mark_book_path();
        let name = book
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("marks.db")
            .replacen("marks", "idempotency", 1);
        book.with_file_name(name)
    }

    /// The read-model database: the PostgreSQL URL if one is set, else the embedded file.
    pub fn read_database(&self) -> contingent_projections::ReadDatabase {
        match &self.database {
            Some(url) => contingent_projections::ReadDatabase::Postgres(url.clone()),
            None => contingent_projections::ReadDatabase::Sqlite(self.read_path()),
        }
    }

    /// Whether other processes may append to the same log (so the writer must follow it).
    pub fn shared_log(&self) -> bool {
        matches!(self.log, LogBackend::Kafka(_))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
