//! The Kafka log of record: the region's events in one single-partition topic
//! (e.g. `contingent.region-22.events`), behind the same [`EventLog`] trait as the embedded
//! SQLite log.
//!
//! This crate owns the topic's layout and the rule that turns the topic's records into the log.
//! It implements [`EventLog`] and nothing else: it knows nothing of the domain's rules, does not
//! decide, project or serve.
//!
//! - **Layout.** One topic per region, one partition, so the region has one total order. Each
//!   event is one record: key = learner id (`region` for reference facts), value = the exact
//!   stored bytes of the event (`body`), headers `type`, `schema_version`, `position`,
//!   `event_id`, `hash`, `prev_hash` and `append_last` (see [`header`]), so a consumer can route
//!   and check the chain without parsing the value. The last record of an append made with a
//!   writer key ([`KafkaLog::with_writer_key`]) also carries `key_id` and `signature`: the
//!   append's Ed25519 signature; the first record of an append of several carries them too,
//!   with `append_last_hash`, the last hash the signature covers.
//! - **Writing.** An idempotent producer (`acks=all`); no Kafka transactions (tansu has none, and
//!   correctness must not depend on them). A writer whose events lose a race still leaves its
//!   records in the topic: they are not part of the log.
//! - **The agreed history.** Every reader applies [`AgreedHistory`] to the partition in offset
//!   order: a record is accepted iff it continues the accepted head (position + 1, `prev_hash`
//!   equal to the head's hash, `hash` equal to SHA-256 of the value), and a multi-event append
//!   is accepted whole or not at all. The rule is stated for outside consumers in the crate's
//!   README. [`EventLog::append`] returns only once the agreed history holds the events, and
//!   [`LogError::Conflict`] when another writer's events took the positions first. After a
//!   failed delivery it reads the partition back (and sends the identical records again while
//!   their positions are free) to learn which, rather than answer that it failed.
//! - **Reading.** A [`KafkaLog`] follows the partition on demand with an assigned consumer
//!   (explicit offsets, no consumer group) and keeps a small index in memory: position → offset,
//!   learner → positions, the head, and a bounded cache of the most recent bodies. Every read
//!   first catches up to the end of the partition as reported by a fetch sent after the read
//!   began (not by ListOffsets: tansu 0.6 answers it wrongly), so it sees every append
//!   acknowledged before it started. A writer's own records, when nothing was written between
//!   the index and them, are applied to the index without being read back.
//!
//! See the crate's README for the rule as outside consumers must apply it, and for what tansu
//! lacks.
#![deny(missing_docs)]

mod agreed;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use contingent_domain::LearnerId;
use contingent_log::{
    BatchSignature, Checkpoint, EventLog, Hash, Head, LogError, RawEvent, RecordedEvent,
    StrayAppend, WriterKey, GENESIS_HASH,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer as RdBaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, PurgeConfig};
use rdkafka::{Offset, TopicPartitionList};

pub use agreed::{append_last_hash, header, signature_headers, Accepted, AgreedHistory, Candidate};

/// The only partition of a region's topic.
pub const PARTITION: i32 = 0;

/// The record key of events that concern no learner (organizations, classes).
pub const REGION_KEY: &str = "region";

/// How long one network step (metadata, topic creation) may take, and how long a catch-up or a
/// fetch may go without receiving a record.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Following to the end, a partition that delivers no new record for this long is at its end
/// (for brokers that report no end-of-partition; Apache Kafka does, and is not waited for).
const END_QUIET: Duration = Duration::from_millis(250);

/// After the broker sent our last record again (tansu's answer at the end), how long to wait
/// for anything newer in the same answer.
const END_RESENT_QUIET: Duration = Duration::from_millis(5);

/// Bytes of recent bodies kept in memory, so that readers following the tail do not fetch.
const TAIL_CACHE_BYTES: usize = 8 << 20;

/// How long an append whose delivery failed keeps reading the partition (and sending its
/// records again) to learn whether it was accepted, before it reports its outcome unknown.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(120);

/// A gap (in offsets) larger than this is crossed by seeking, not by reading through it.
const SEEK_GAP: i64 = 512;

/// Where the log lives and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port`.
    pub brokers: String,
    /// The region's topic, e.g. `contingent.region-22.events` (see [`KafkaConfig::region_topic`]).
    pub topic: String,
    /// `client.id` of the producer and consumers.
    pub client_id: String,
    /// Further librdkafka properties for every client (security, timeouts...), applied last.
    pub extra: Vec<(String, String)>,
}

impl KafkaConfig {
    /// A configuration with client id `contingent` and no extra properties.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic: topic.into(),
            client_id: "contingent".into(),
            extra: Vec::new(),
        }
    }

    /// The topic name of a region: `contingent.<region>.events`.
    pub fn region_topic(region: &str) -> String {
        format!("contingent.{region}.events")
    }

    /// The topic of the signed checkpoints of an events topic: `contingent.<region>.checkpoints`
    /// beside `contingent.<region>.events` (any other name gets `.checkpoints` appended).
    pub fn checkpoints_topic(events_topic: &str) -> String {
        match events_topic.strip_suffix(".events") {
            Some(base) => format!("{base}.checkpoints"),
            None => format!("{events_topic}.checkpoints"),
        }
    }

    /// The topic name of a region's federal feed: `contingent.<region>.federal`.
    pub fn federal_topic(region: &str) -> String {
        format!("contingent.{region}.federal")
    }

    /// The configuration of the log's producer: idempotent, `acks=all`, then `extra`.
    pub fn producer_config(&self) -> ClientConfig {
        self.producer()
    }

    /// The configuration of the log's consumers: assigned with explicit offsets, no commits,
    /// `read_committed`, end-of-partition events, then `extra`.
    pub fn consumer_config(&self) -> ClientConfig {
        self.consumer()
    }

    /// The configuration of an admin client: brokers, client id, then `extra`.
    pub fn admin_config(&self) -> ClientConfig {
        self.with_extra(self.client())
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id);
        config
    }

    fn with_extra(&self, mut config: ClientConfig) -> ClientConfig {
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }

    fn producer(&self) -> ClientConfig {
        let mut config = self.client();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("linger.ms", "0")
            .set("message.timeout.ms", "60000");
        self.with_extra(config)
    }

    fn consumer(&self) -> ClientConfig {
        let mut config = self.client();
        config
            // Offsets are explicit (assign): the group id is one librdkafka requires, but
            // nothing joins the group and nothing is committed to it.
            .set("group.id", format!("{}.log-reader", self.client_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A log that starts anywhere but its first record is not the log: fail loudly.
            .set("auto.offset.reset", "error")
            .set("isolation.level", "read_committed")
            // "Caught up" is the end-of-partition event of a fetch sent after the call began.
            .set("enable.partition.eof", "true")
            // Consumers are assigned only while a call reads, so a short wait costs nothing
            // when idle; tansu holds every Fetch for this long, even one with data.
            .set("fetch.wait.max.ms", "1")
            .set("queued.max.messages.kbytes", "16384");
        self.with_extra(config)
    }
}

/// The client context of the log's consumers: librdkafka reports reaching the end of the
/// partition (which the log asks for, to know it is caught up) as an error; it is not one.
#[derive(Debug, Clone, Copy)]
pub struct Quiet;

impl ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::trace!(reason, "end of partition");
        } else {
            tracing::error!(%error, reason, "librdkafka");
        }
    }
}

impl ConsumerContext for Quiet {}

/// The log's consumers.
type BaseConsumer = RdBaseConsumer<Quiet>;

/// The one mapping of Kafka's errors into the log's.
fn storage(e: KafkaError) -> LogError {
    LogError::Storage(format!("kafka: {e}"))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The region's log in a Kafka topic.
#[derive(Clone)]
pub struct KafkaLog {
    inner: Arc<Inner>,
    key: Option<Arc<WriterKey>>,
}

struct Inner {
    config: KafkaConfig,
    topic: String,
    /// Replaced after a failed delivery: the old one's queued records are purged.
    producer: Mutex<FutureProducer>,
    follower: Mutex<Follower>,
    fetcher: Mutex<BaseConsumer>,
    closed: AtomicBool,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("topic", &self.inner.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Connects, creates the topic with one partition if it is missing (retention unlimited,
    /// replication factor the broker's default), and checks that it has exactly one partition.
    /// Reads nothing yet: the first read or append catches up from offset 0.
    pub async fn open(config: KafkaConfig) -> Result<Self, LogError> {
        let topic = config.topic.clone();
        let follower: Arc<BaseConsumer> = Arc::new(
            config
                .consumer()
                .create_with_context(Quiet)
                .map_err(storage)?,
        );
        let exists = {
            let (follower, topic) = (follower.clone(), topic.clone());
            blocking(move || topic_exists(&follower, &topic)).await?
        };
        if !exists {
            create_topic(&config).await?;
        }
        let producer: FutureProducer = config.producer().create().map_err(storage)?;
        let fetcher: BaseConsumer = config
            .consumer()
            .create_with_context(Quiet)
            .map_err(storage)?;
        let inner = blocking(move || {
            check_partitions(&follower, &topic)?;
            let config = config;
            let follower = Arc::into_inner(follower)
                .ok_or_else(|| LogError::Storage("kafka: the follower is still shared".into()))?;
            Ok(Inner {
                follower: Mutex::new(Follower::new(follower)),
                fetcher: Mutex::new(fetcher),
                producer: Mutex::new(producer),
                topic,
                config,
                closed: AtomicBool::new(false),
            })
        })
        .await?;
        Ok(Self {
            inner: Arc::new(inner),
            key: None,
        })
    }

    /// The same log, signing every append with `key`.
    pub fn with_writer_key(mut self, key: Arc<WriterKey>) -> Self {
        self.key = Some(key);
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// Catches up, then runs `f` on the index.
    async fn caught_up<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Follower) -> R + Send + 'static,
    ) -> Result<R, LogError> {
        let inner = self.inner.clone();
        blocking(move || {
            let mut follower = lock(&inner.follower);
            follower.catch_up(&inner.topic, Until::End)?;
            Ok(f(&follower))
        })
        .await
    }

    /// Positions → stored events: from the tail cache where possible, else fetched by offset.
    async fn load(&self, wanted: Vec<Wanted>) -> Result<Vec<Stored>, LogError> {
        if wanted.iter().all(|w| w.cached.is_some()) {
            return Ok(wanted.into_iter().filter_map(|w| w.cached).collect());
        }
        let inner = self.inner.clone();
        blocking(move || {
            let offsets: Vec<i64> = wanted
                .iter()
                .filter(|w| w.cached.is_none())
                .map(|w| w.offset)
                .collect();
            let mut fetched = fetch(&lock(&inner.fetcher), &inner.topic, &offsets)?.into_iter();
            wanted
                .into_iter()
                .map(|w| match w.cached {
                    Some(stored) => Ok(stored),
                    None => fetched.next().ok_or_else(|| {
                        LogError::Storage(format!("kafka: offset {} was not read", w.offset))
                    }),
                })
                .collect()
        })
        .await
    }

    async fn read_stored_after(&self, after: u64, limit: usize) -> Result<Vec<Stored>, LogError> {
        let wanted = self
            .caught_up(move |f| {
                let end = after.saturating_add(limit as u64).min(f.head().position);
                (after.saturating_add(1)..=end)
                    .map(|p| f.wanted(p))
                    .collect::<Vec<_>>()
            })
            .await?;
        self.load(wanted).await
    }
}

async fn create_topic(config: &KafkaConfig) -> Result<(), LogError> {
    let admin: AdminClient<DefaultClientContext> = config
        .with_extra(config.client())
        .create()
        .map_err(storage)?;
    let topic = NewTopic::new(&config.topic, 1, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "delete")
        .set("retention.ms", "-1")
        .set("retention.bytes", "-1");
    let options = AdminOptions::new().operation_timeout(Some(STEP_TIMEOUT));
    for result in admin
        .create_topics([&topic], &options)
        .await
        .map_err(storage)?
    {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(LogError::Storage(format!(
                    "kafka: cannot create topic {name}: {code}"
                )))
            }
        }
    }
    Ok(())
}

/// Whether the metadata knows the topic (consumers do not create topics by asking).
fn topic_exists(consumer: &BaseConsumer, topic: &str) -> Result<bool, LogError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), STEP_TIMEOUT)
        .map_err(storage)?;
    Ok(metadata
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()))
}

/// Waits until the topic is known and refuses a topic with other than one partition.
fn check_partitions(consumer: &BaseConsumer, topic: &str) -> Result<(), LogError> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let metadata = consumer
            .fetch_metadata(Some(topic), STEP_TIMEOUT)
            .map_err(storage)?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        match found {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                let n = t.partitions().len();
                if n != 1 {
                    return Err(LogError::Storage(format!(
                        "kafka: topic {topic} has {n} partitions; the log needs exactly one"
                    )));
                }
                return Ok(());
            }
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                return Err(LogError::Storage(format!(
                    "kafka: topic {topic} did not appear in the metadata"
                )))
            }
        }
    }
}

fn assign(consumer: &BaseConsumer, topic: &str, offset: i64) -> Result<(), LogError> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, PARTITION, Offset::Offset(offset))
        .map_err(storage)?;
    consumer.assign(&assignment).map_err(storage)
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, LogError> + Send + 'static,
) -> Result<R, LogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Storage(format!("kafka: a reader task failed: {e}")))?
}

/// An event as kept or fetched: its bytes and stored hash.
#[derive(Debug, Clone)]
struct Stored {
    position: u64,
    body: Vec<u8>,
    hash: Hash,
}

impl Stored {
    fn decode(self) -> Result<RecordedEvent, LogError> {
        RecordedEvent::open(self.body, self.hash)
    }
}

/// One position to load: its offset, and its bytes when the tail cache has them.
struct Wanted {
    offset: i64,
    cached: Option<Stored>,
}

/// How far a catch-up reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Until the next offset is at least this.
    Offset(i64),
    /// Until the end of the partition, as reported by a fetch sent during the catch-up, and at
    /// least to the high watermark the broker reported when it began.
    End,
}

/// What the follower keeps per record while an append is unfinished.
struct Item {
    offset: i64,
    learner: Option<LearnerId>,
    body: Vec<u8>,
    /// The `key_id` and `signature` headers, on the last record of a signed append (and on the
    /// first of one of several, where the follower ignores them).
    signature: Option<(String, String)>,
}

/// The in-memory index, kept by following the partition from offset 0.
struct Follower {
    consumer: BaseConsumer,
    /// The next offset to read.
    next_offset: i64,
    history: AgreedHistory<Item>,
    /// `offsets[p - 1]` is the offset of the event at position `p`.
    offsets: Vec<i64>,
    learners: HashMap<LearnerId, Vec<u64>>,
    tail: TailCache,
    /// Positions appenders of this process wait for: the hash accepted there, once it is.
    watches: HashMap<u64, Watch>,
    /// The signature of every signed accepted append, in order.
    signatures: Vec<BatchSignature>,
    /// Every record seen, kept only by an audit's scan of the whole partition.
    scan: Option<Scan>,
}

/// What an audit keeps of the partition: every record's chain headers, and which were accepted.
#[derive(Default)]
struct Scan {
    records: Vec<ScanRecord>,
    accepted: HashSet<i64>,
    /// The accepted hash at each position (`hashes[p - 1]`).
    hashes: Vec<Hash>,
}

struct ScanRecord {
    offset: i64,
    candidate: Option<Candidate>,
    claimed_position: u64,
    signature: Option<(String, String)>,
    /// The `append_last_hash` header, on the first record of a signed append of several.
    last_hash: Option<Hash>,
}

/// A run of stray records being grouped into the append they claim.
struct Group {
    stray: StrayAppend,
    append_last: u64,
}

impl Scan {
    /// The records not accepted, grouped by append: a record joins the group whose last record
    /// it continues (position + 1, `prev_hash`, same `append_last`), else starts one. A record
    /// equal to the accepted one at its position (a producer's duplicate) is no stray.
    fn strays(self) -> Vec<StrayAppend> {
        let mut open: Vec<Group> = Vec::new();
        let mut done: Vec<StrayAppend> = Vec::new();
        let log_hash = |position: u64| -> Option<Hash> {
            match position {
                0 => Some(GENESIS_HASH),
                p => self.hashes.get((p - 1) as usize).copied(),
            }
        };
        for r in &self.records {
            if self.accepted.contains(&r.offset) {
                continue;
            }
            let Some(c) = r.candidate else {
                done.push(StrayAppend {
                    offset: r.offset as u64,
                    first_position: r.claimed_position,
                    last_position: r.claimed_position,
                    prev_hash: GENESIS_HASH,
                    last_hash: GENESIS_HASH,
                    complete: false,
                    signature: None,
                    first_signature: None,
                    append_last: r.claimed_position,
                    built_on_log: false,
                    malformed: Some(
                        "its chain headers are missing, or its bytes do not match its hash header"
                            .into(),
                    ),
                });
                continue;
            };
            if log_hash(c.position) == Some(c.hash) {
                continue;
            }
            let joined = open.iter_mut().find(|g| {
                g.stray.last_position + 1 == c.position
                    && g.stray.last_hash == c.prev_hash
                    && g.append_last == c.append_last
            });
            let group = match joined {
                Some(g) => {
                    g.stray.last_position = c.position;
                    g.stray.last_hash = c.hash;
                    g
                }
                None => {
                    // The first record of an append of several also carries its signature,
                    // with the last hash it covers.
                    let first_signature = match (&r.signature, r.last_hash) {
                        (Some((key_id, signature)), Some(last_hash)) => {
                            Some((key_id.clone(), signature.clone(), last_hash))
                        }
                        _ => None,
                    };
                    open.push(Group {
                        stray: StrayAppend {
                            offset: r.offset as u64,
                            first_position: c.position,
                            last_position: c.position,
                            prev_hash: c.prev_hash,
                            last_hash: c.hash,
                            complete: false,
                            signature: None,
                            first_signature,
                            append_last: c.append_last,
                            built_on_log: log_hash(c.position - 1) == Some(c.prev_hash),
                            malformed: None,
                        },
                        append_last: c.append_last,
                    });
                    open.last_mut().expect("pushed")
                }
            };
            if c.position == c.append_last {
                group.stray.signature = r.signature.clone();
                group.stray.complete =
                    log_hash(group.stray.first_position - 1) == Some(group.stray.prev_hash);
            }
        }
        done.extend(open.into_iter().map(|g| g.stray));
        done.sort_by_key(|s| s.offset);
        done
    }
}

#[derive(Default)]
struct Watch {
    waiters: usize,
    accepted: Option<Hash>,
}

impl Follower {
    fn new(consumer: BaseConsumer) -> Self {
        Self {
            consumer,
            next_offset: 0,
            history: AgreedHistory::new(),
            offsets: Vec::new(),
            learners: HashMap::new(),
            tail: TailCache::default(),
            watches: HashMap::new(),
            signatures: Vec::new(),
            scan: None,
        }
    }

    fn head(&self) -> Head {
        self.history.head()
    }

    fn wanted(&self, position: u64) -> Wanted {
        Wanted {
            offset: self.offsets[(position - 1) as usize],
            cached: self.tail.get(position),
        }
    }

    /// Reads the partition from the next offset on, applying the rule, until `until`. The
    /// consumer is assigned only for the call: a fresh assignment means fresh fetches, so the
    /// end-of-partition event it reports is the end as of some moment after the call began.
    fn catch_up(&mut self, topic: &str, until: Until) -> Result<(), LogError> {
        if let Until::Offset(target) = until {
            if self.next_offset >= target {
                return Ok(());
            }
        }
        // Following to the end: the partition's high watermark, asked before the first fetch,
        // is an end the read must reach whatever the timing (a broker that reports no
        // end-of-partition is otherwise taken at its end after a quiet moment, which a slow
        // fetch under load could end early). tansu 0.6 can answer with less than the real end,
        // never more: past it, the end-of-partition event or the quiet moment still decides.
        let floor = match until {
            Until::End => {
                self.consumer
                    .fetch_watermarks(topic, PARTITION, STEP_TIMEOUT)
                    .map_err(storage)?
                    .1
            }
            Until::Offset(_) => 0,
        };
        assign(&self.consumer, topic, self.next_offset)?;
        let read = self.read_until(until, floor);
        let unassigned = self.consumer.unassign().map_err(storage);
        read.and(unassigned)
    }

    /// Reads until `until`; to the end, never before offset `floor`.
    fn read_until(&mut self, until: Until, floor: i64) -> Result<(), LogError> {
        let mut deadline = Instant::now() + STEP_TIMEOUT;
        // When following to the end: the moment after which no new record means the end, once
        // the broker has answered this assignment at all.
        let mut quiet_until = Instant::now() + END_QUIET;
        let mut answered = false;
        loop {
            if let Until::Offset(target) = until {
                if self.next_offset >= target {
                    return Ok(());
                }
            }
            let now = Instant::now();
            let past_floor = self.next_offset >= floor;
            if until == Until::End && answered && past_floor && now >= quiet_until {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Err(LogError::Storage(format!(
                    "kafka: no progress following the log at offset {} for {}s",
                    self.next_offset,
                    STEP_TIMEOUT.as_secs()
                )));
            }
            let wait = match until {
                Until::End if answered && past_floor => {
                    left.min(quiet_until.saturating_duration_since(now))
                }
                _ => left,
            };
            match self.consumer.poll(wait) {
                Some(Err(KafkaError::PartitionEOF(_))) if until == Until::End && past_floor => {
                    return Ok(())
                }
                None | Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => return Err(storage(e)),
                Some(Ok(message)) => {
                    answered = true;
                    let offset = message.offset();
                    if offset < self.next_offset {
                        // A record read before. tansu answers a fetch at the end of the
                        // partition with its last batch again (and a high watermark inside
                        // it, so no end-of-partition event): our last record coming back
                        // means nothing newer was there, unless more follows at once.
                        if offset + 1 == self.next_offset {
                            quiet_until = quiet_until.min(Instant::now() + END_RESENT_QUIET);
                        }
                        continue;
                    }
                    deadline = Instant::now() + STEP_TIMEOUT;
                    quiet_until = Instant::now() + END_QUIET;
                    self.next_offset = offset + 1;
                    if let Some(scan) = &mut self.scan {
                        let claimed_position = message
                            .headers()
                            .and_then(|hs| {
                                hs.iter().find(|h| h.key == header::POSITION).and_then(|h| {
                                    std::str::from_utf8(h.value?).ok()?.parse::<u64>().ok()
                                })
                            })
                            .unwrap_or(0);
                        scan.records.push(ScanRecord {
                            offset,
                            candidate: Candidate::from_record(message.headers(), message.payload()),
                            claimed_position,
                            signature: signature_headers(message.headers()),
                            last_hash: append_last_hash(message.headers()),
                        });
                    }
                    let Some(candidate) =
                        Candidate::from_record(message.headers(), message.payload())
                    else {
                        continue;
                    };
                    let learner = message
                        .key()
                        .and_then(|k| std::str::from_utf8(k).ok())
                        .and_then(|k| k.parse::<LearnerId>().ok());
                    let item = Item {
                        offset,
                        learner,
                        body: message.payload().unwrap_or_default().to_vec(),
                        signature: signature_headers(message.headers()),
                    };
                    self.offer(candidate, item);
                }
            }
        }
    }

    fn offer(&mut self, candidate: Candidate, item: Item) {
        let before = self.history.head();
        let accepted = self.history.offer(candidate, item);
        if let (Some(first), Some(last)) = (accepted.first(), accepted.last()) {
            if let Some((key_id, signature)) = &last.item.signature {
                self.signatures.push(BatchSignature {
                    first_position: first.position,
                    last_position: last.position,
                    prev_hash: before.hash,
                    last_hash: last.hash,
                    key_id: key_id.clone(),
                    signature: signature.clone(),
                });
            }
        }
        for accepted in accepted {
            self.accept(accepted);
        }
    }

    fn accept(&mut self, accepted: Accepted<Item>) {
        let Accepted {
            position,
            hash,
            item,
        } = accepted;
        self.offsets.push(item.offset);
        if let Some(scan) = &mut self.scan {
            scan.accepted.insert(item.offset);
            scan.hashes.push(hash);
        }
        if let Some(learner) = item.learner {
            self.learners.entry(learner).or_default().push(position);
        }
        if let Some(watch) = self.watches.get_mut(&position) {
            watch.accepted = Some(hash);
        }
        self.tail.push(Stored {
            position,
            body: item.body,
            hash,
        });
    }
}

/// The bodies of the most recent accepted events, up to a number of bytes.
#[derive(Default)]
struct TailCache {
    events: VecDeque<Stored>,
    bytes: usize,
}

impl TailCache {
    fn push(&mut self, stored: Stored) {
        self.bytes += stored.body.len();
        self.events.push_back(stored);
        while self.bytes > TAIL_CACHE_BYTES {
            match self.events.pop_front() {
                Some(old) => self.bytes -= old.body.len(),
                None => break,
            }
        }
    }

    fn get(&self, position: u64) -> Option<Stored> {
        let first = self.events.front()?.position;
        let index = usize::try_from(position.checked_sub(first)?).ok()?;
        self.events.get(index).cloned()
    }
}

/// Reads the records at `offsets` (ascending) from the partition, in that order.
fn fetch(consumer: &BaseConsumer, topic: &str, offsets: &[i64]) -> Result<Vec<Stored>, LogError> {
    let Some(&first) = offsets.first() else {
        return Ok(Vec::new());
    };
    assign(consumer, topic, first)?;
    let fetched = fetch_assigned(consumer, topic, offsets);
    let unassigned = consumer.unassign().map_err(storage);
    fetched.and_then(|f| unassigned.map(|()| f))
}

fn fetch_assigned(
    consumer: &BaseConsumer,
    topic: &str,
    offsets: &[i64],
) -> Result<Vec<Stored>, LogError> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut deadline = Instant::now() + STEP_TIMEOUT;
    // How far before the wanted offset the current assignment starts (see below).
    let mut back: i64 = 0;
    while let Some(&want) = offsets.get(out.len()) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LogError::Storage(format!(
                "kafka: timed out fetching offset {want}"
            )));
        }
        match consumer.poll(left) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => return Err(storage(e)),
            Some(Ok(message)) => {
                let offset = message.offset();
                if offset == want {
                    deadline = Instant::now() + STEP_TIMEOUT;
                    back = 0;
                    let candidate = Candidate::from_record(message.headers(), message.payload())
                        .ok_or_else(|| {
                            LogError::Storage(format!(
                                "kafka: the record at offset {offset} is not the accepted one"
                            ))
                        })?;
                    out.push(Stored {
                        position: candidate.position,
                        body: message.payload().unwrap_or_default().to_vec(),
                        hash: candidate.hash,
                    });
                    if let Some(&next) = offsets.get(out.len()) {
                        if next - offset > SEEK_GAP {
                            assign(consumer, topic, next)?;
                        }
                    }
                } else if offset > want {
                    // Past the wanted record: either a record fetched before the last seek, or
                    // a broker that answers a fetch starting inside a record batch with the
                    // next batch (tansu 0.6). Start earlier, further each time, so that the
                    // fetch begins at or before the batch holding the wanted record.
                    back = (back * 2).max(64);
                    assign(consumer, topic, (want - back).max(0))?;
                } else if want - offset > SEEK_GAP.max(back) {
                    // Far behind, and not because of a step back: seek forward.
                    assign(consumer, topic, want)?;
                }
            }
        }
    }
    Ok(out)
}

/// The headers and key of one event's record, derived from the event.
fn record_parts(
    event: &RecordedEvent,
    append_last: u64,
    signed: Option<&BatchSignature>,
) -> (String, OwnedHeaders) {
    let envelope = &event.envelope;
    let key = envelope
        .learner_id
        .map_or_else(|| REGION_KEY.to_owned(), |l| l.to_string());
    let text = [
        (header::TYPE, envelope.event.type_name().to_owned()),
        (header::SCHEMA_VERSION, envelope.schema_version.to_string()),
        (header::POSITION, envelope.position.to_string()),
        (header::EVENT_ID, envelope.event_id.to_string()),
        (header::HASH, event.hash.to_hex()),
        (header::PREV_HASH, envelope.prev_hash.to_hex()),
        (header::APPEND_LAST, append_last.to_string()),
    ];
    let mut headers = OwnedHeaders::new_with_capacity(text.len());
    for (key, value) in &text {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_str()),
        });
    }
    // The signature rides on the last record, and on the first of an append of several with
    // the last hash it covers: a writer stopped while its records were on their way leaves a
    // signed beginning, not records nobody signed.
    if let Some(signed) = signed
        .filter(|s| s.last_position == envelope.position || s.first_position == envelope.position)
    {
        headers = headers
            .insert(Header {
                key: header::KEY_ID,
                value: Some(signed.key_id.as_str()),
            })
            .insert(Header {
                key: header::SIGNATURE,
                value: Some(signed.signature.as_str()),
            });
        if signed.last_position != envelope.position {
            let last_hash = signed.last_hash.to_hex();
            headers = headers.insert(Header {
                key: header::APPEND_LAST_HASH,
                value: Some(last_hash.as_str()),
            });
        }
    }
    (key, headers)
}

/// Refuses a batch whose events do not form a chain of their own: such events could never be
/// accepted, and their headers would not describe their bytes. (That a sealed event's envelope
/// is its body decoded is `RecordedEvent`'s own guarantee — `seal` and `open` build both from
/// one another — and is not checked again here: decoding every body cost as much as deciding.)
fn check_batch(events: &[RecordedEvent]) -> Result<(), LogError> {
    for (i, event) in events.iter().enumerate() {
        if Hash::of(&event.body) != event.hash {
            return Err(LogError::Codec(format!(
                "event at position {}: its hash is not SHA-256 of its body",
                event.position()
            )));
        }
        if i > 0 {
            let before = &events[i - 1];
            if event.position() != before.position() + 1 || event.envelope.prev_hash != before.hash
            {
                return Err(LogError::Codec(format!(
                    "event at position {} does not continue the event before it in the batch",
                    event.position()
                )));
            }
        }
    }
    Ok(())
}

/// The delivery reports of one append, awaited in order.
#[derive(Default)]
struct Deliveries {
    /// The offset of each record delivered so far, in the order the events were given.
    offsets: Vec<i64>,
    first_error: Option<LogError>,
}

impl Deliveries {
    async fn wait(&mut self, delivery: DeliveryFuture) {
        match delivery.await {
            Ok(Ok(delivered)) => self.offsets.push(delivered.offset),
            Ok(Err((e, _))) => {
                self.first_error.get_or_insert(storage(e));
            }
            Err(_) => {
                self.first_error.get_or_insert(LogError::Storage(
                    "kafka: the producer dropped a delivery report".into(),
                ));
            }
        }
    }
}

impl KafkaLog {
    /// Stops watching `position`.
    async fn unwatch(&self, position: u64) {
        let inner = self.inner.clone();
        let _ = blocking(move || {
            let mut follower = lock(&inner.follower);
            if let Some(watch) = follower.watches.get_mut(&position) {
                watch.waiters -= 1;
                if watch.waiters == 0 {
                    follower.watches.remove(&position);
                }
            }
            Ok(())
        })
        .await;
    }

    /// The current producer.
    fn producer(&self) -> FutureProducer {
        lock(&self.inner.producer).clone()
    }

    /// After a failed delivery: a fresh producer takes over, and the old one's records not yet
    /// sent are purged, so it sends nothing more (a record already sent may still be written by
    /// the broker: only reading the partition tells).
    async fn replace_producer(&self) -> Result<(), LogError> {
        let fresh: FutureProducer = self.inner.config.producer().create().map_err(storage)?;
        let old = std::mem::replace(&mut *lock(&self.inner.producer), fresh);
        blocking(move || {
            old.purge(PurgeConfig::default().queue().inflight());
            drop(old);
            Ok(())
        })
        .await
    }

    /// After a failed delivery of an append: finds out from the partition what became of it.
    /// Reads to the end; `Ok` when the agreed history holds the append at its positions,
    /// `Conflict` when other records took them, and when neither is visible yet, sends the
    /// identical records again (an earlier copy landing later is a duplicate: the rule accepts
    /// only the first copy that continues the head) and reads again, until [`RESOLVE_TIMEOUT`].
    /// Only then does it give up, with an error saying the outcome is unknown.
    async fn resolve(
        &self,
        events: &[RecordedEvent],
        signed: Option<&BatchSignature>,
        error: LogError,
        delivery_failed: bool,
    ) -> Result<(), LogError> {
        let first_position = events.first().map_or(0, RecordedEvent::position);
        let (last_position, last_hash) = events
            .last()
            .map_or((0, GENESIS_HASH), |e| (e.position(), e.hash));
        let deadline = Instant::now() + RESOLVE_TIMEOUT;
        let mut last_error = error;
        let (mut replace, mut resend) = (delivery_failed, false);
        loop {
            tracing::warn!(topic = %self.inner.topic, position = first_position, error = %last_error, resend, "an append's outcome is not known; reading the partition");
            if replace {
                match self.replace_producer().await {
                    Ok(()) => replace = false,
                    Err(e) => last_error = e,
                }
            }
            if resend && !replace {
                if let Some(e) = self.produce(events, signed).await.first_error {
                    last_error = e;
                    replace = true;
                }
            }
            let inner = self.inner.clone();
            let read = blocking(move || {
                let mut follower = lock(&inner.follower);
                follower.catch_up(&inner.topic, Until::End)?;
                let accepted = follower
                    .watches
                    .get(&last_position)
                    .and_then(|w| w.accepted);
                Ok((accepted, follower.head()))
            })
            .await;
            match read {
                Ok((Some(hash), _)) if hash == last_hash => return Ok(()),
                // Accepted whole or not at all, and only on top of the head it continues: once
                // the head is at or past its first position without it, it never will be.
                Ok((_, head)) if head.position >= first_position => {
                    return Err(LogError::Conflict(first_position))
                }
                // Its positions are free: nothing of it is accepted. Send it again.
                Ok(_) => resend = true,
                Err(e) => last_error = e,
            }
            if Instant::now() >= deadline {
                return Err(LogError::Storage(format!(
                    "kafka: the outcome of the append at position {first_position} is unknown: \
                     the partition could not be read for {}s ({last_error})",
                    RESOLVE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Produces every event, awaiting every delivery report.
    async fn produce(
        &self,
        events: &[RecordedEvent],
        signed: Option<&BatchSignature>,
    ) -> Deliveries {
        let producer = self.producer();
        let append_last = events.last().map_or(0, RecordedEvent::position);
        let mut in_flight = VecDeque::with_capacity(events.len());
        let mut done = Deliveries::default();
        'events: for event in events {
            let (key, headers) = record_parts(event, append_last, signed);
            let mut record = FutureRecord::to(&self.inner.topic)
                .partition(PARTITION)
                .key(&key)
                .payload(&event.body)
                .headers(headers);
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        in_flight.push_back(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        match in_flight.pop_front() {
                            Some(delivery) => done.wait(delivery).await,
                            None => tokio::time::sleep(Duration::from_millis(5)).await,
                        }
                    }
                    Err((e, _)) => {
                        done.first_error.get_or_insert(storage(e));
                        break 'events;
                    }
                }
            }
        }
        while let Some(delivery) = in_flight.pop_front() {
            done.wait(delivery).await;
        }
        done
    }
}

#[async_trait]
impl EventLog for KafkaLog {
    async fn append(&self, events: &[RecordedEvent]) -> Result<(), LogError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(LogError::Storage("kafka: the log is closed".into()));
        }
        check_batch(events)?;
        let (first_position, first_prev) = (first.position(), first.envelope.prev_hash);
        let (last_position, last_hash) = (last.position(), last.hash);

        // Refuse at once what the index already knows to be stale (no network); otherwise
        // watch the last position, so the follower reports whose event is accepted there.
        let inner = self.inner.clone();
        blocking(move || {
            let mut follower = lock(&inner.follower);
            let head = follower.head();
            if first_position != head.position + 1 || first_prev != head.hash {
                return Err(LogError::Conflict(first_position));
            }
            follower.watches.entry(last_position).or_default().waiters += 1;
            Ok(())
        })
        .await?;

        let signed = self
            .key
            .as_ref()
            .map(|k| k.sign_batch(first_position, last_position, first_prev, last_hash));
        let mut delivered = self.produce(events, signed.as_ref()).await;
        if let Some(error) = delivered.first_error.take() {
            let outcome = self.resolve(events, signed.as_ref(), error, true).await;
            self.unwatch(last_position).await;
            return outcome;
        }
        // What the rule needs of our own records, should the index be right before them.
        let own: Vec<(Candidate, Item)> = events
            .iter()
            .zip(&delivered.offsets)
            .map(|(event, &offset)| {
                let candidate = Candidate {
                    position: event.position(),
                    prev_hash: event.envelope.prev_hash,
                    hash: event.hash,
                    append_last: last_position,
                };
                let item = Item {
                    offset,
                    learner: event.envelope.learner_id,
                    body: event.body.clone(),
                    signature: signed
                        .as_ref()
                        .filter(|_| event.position() == last_position)
                        .map(|s| (s.key_id.clone(), s.signature.clone())),
                };
                (candidate, item)
            })
            .collect();

        let inner = self.inner.clone();
        let accepted = blocking(move || {
            let mut follower = lock(&inner.follower);
            let contiguous = own
                .windows(2)
                .all(|pair| pair[1].1.offset == pair[0].1.offset + 1);
            let caught_up = match own.first() {
                // Nothing was written between the index and our records: they are the next
                // records of the partition, and the rule decides on them as any reader would,
                // without reading them back.
                Some((_, item)) if contiguous && item.offset == follower.next_offset => {
                    for (candidate, item) in own {
                        follower.next_offset = item.offset + 1;
                        follower.offer(candidate, item);
                    }
                    Ok(())
                }
                Some((_, item)) => {
                    tracing::debug!(
                        next_offset = follower.next_offset,
                        first_own = item.offset,
                        contiguous,
                        "own records are not the next of the partition; reading up to them"
                    );
                    let past = own.last().map_or(0, |(_, item)| item.offset + 1);
                    follower.catch_up(&inner.topic, Until::Offset(past))
                }
                // A failed delivery: whatever was written is before the end.
                None => follower.catch_up(&inner.topic, Until::End),
            };
            let accepted = follower
                .watches
                .get(&last_position)
                .and_then(|w| w.accepted);
            if caught_up.is_err() {
                // Still watched: the outcome is looked for next.
                return caught_up.map(|()| accepted);
            }
            if let Some(watch) = follower.watches.get_mut(&last_position) {
                watch.waiters -= 1;
                if watch.waiters == 0 {
                    follower.watches.remove(&last_position);
                }
            }
            caught_up.map(|()| accepted)
        })
        .await;
        match accepted {
            Ok(Some(hash)) if hash == last_hash => Ok(()),
            Ok(Some(_)) => {
                tracing::debug!(
                    topic = %self.inner.topic,
                    position = first_position,
                    "append lost the race for its positions"
                );
                Err(LogError::Conflict(first_position))
            }
            // Our records were read and not accepted.
            Ok(None) => Err(LogError::Conflict(first_position)),
            // Delivered, but the partition could not be read up to them.
            Err(error) => {
                let outcome = self.resolve(events, signed.as_ref(), error, false).await;
                self.unwatch(last_position).await;
                outcome
            }
        }
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.read_stored_after(after, limit)
            .await?
            .into_iter()
            .map(Stored::decode)
            .collect()
    }

    async fn read_raw_after(&self, after: u64, limit: usize) -> Result<Vec<RawEvent>, LogError> {
        Ok(self
            .read_stored_after(after, limit)
            .await?
            .into_iter()
            .map(|s| RawEvent {
                position: s.position,
                body: s.body,
                hash: s.hash.0.to_vec(),
            })
            .collect())
    }

    async fn read_learner(&self, learner: LearnerId) -> Result<Vec<RecordedEvent>, LogError> {
        let wanted: Vec<Wanted> = self
            .caught_up(move |f| {
                f.learners
                    .get(&learner)
                    .map(|positions| positions.iter().map(|&p| f.wanted(p)).collect())
                    .unwrap_or_default()
            })
            .await?;
        let mut events = Vec::with_capacity(wanted.len());
        for stored in self.load(wanted).await? {
            let event = stored.decode()?;
            // The key routed it here; the event itself decides.
            if event.envelope.learner_id == Some(learner) {
                events.push(event);
            }
        }
        Ok(events)
    }

    async fn head(&self) -> Result<Head, LogError> {
        self.caught_up(Follower::head).await
    }

    /// Signs the head and produces the checkpoint (JSON, key = the key id) to the checkpoints
    /// topic ([`KafkaConfig::checkpoints_topic`]), creating the topic if it is missing.
    async fn publish_checkpoint(&self) -> Result<Option<Checkpoint>, LogError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let head = self.head().await?;
        if head.position == 0 {
            return Ok(None);
        }
        let checkpoint = key.sign_checkpoint(head.position, head.hash, chrono::Utc::now());
        let mut config = self.inner.config.clone();
        config.topic = KafkaConfig::checkpoints_topic(&self.inner.topic);
        create_topic(&config).await?;
        let value = serde_json::to_vec(&checkpoint).map_err(|e| LogError::Codec(e.to_string()))?;
        let record = FutureRecord::to(&config.topic)
            .partition(PARTITION)
            .key(key.id())
            .payload(&value);
        self.producer()
            .send(record, STEP_TIMEOUT)
            .await
            .map_err(|(e, _)| storage(e))?;
        Ok(Some(checkpoint))
    }

    /// Every record of the checkpoints topic that is a checkpoint, in offset order.
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, LogError> {
        let inner = self.inner.clone();
        blocking(move || {
            let topic = KafkaConfig::checkpoints_topic(&inner.topic);
            let consumer: BaseConsumer = inner
                .config
                .consumer()
                .create_with_context(Quiet)
                .map_err(storage)?;
            if !topic_exists(&consumer, &topic)? {
                return Ok(Vec::new());
            }
            assign(&consumer, &topic, 0)?;
            let mut out = Vec::new();
            let (mut next, mut answered) = (0i64, false);
            let deadline = Instant::now() + STEP_TIMEOUT;
            let mut quiet_until = Instant::now() + END_QUIET;
            loop {
                let now = Instant::now();
                if now >= deadline || (answered && now >= quiet_until) {
                    break;
                }
                let wait = if answered {
                    quiet_until - now
                } else {
                    deadline - now
                };
                match consumer.poll(wait) {
                    None => {}
                    Some(Err(KafkaError::PartitionEOF(_))) => break,
                    Some(Err(e)) => return Err(storage(e)),
                    Some(Ok(message)) => {
                        answered = true;
                        if message.offset() < next {
                            // tansu sends the last batch again at the end.
                            quiet_until = quiet_until.min(Instant::now() + END_RESENT_QUIET);
                            continue;
                        }
                        next = message.offset() + 1;
                        quiet_until = Instant::now() + END_QUIET;
                        if let Some(c) = message
                            .payload()
                            .and_then(|v| serde_json::from_slice::<Checkpoint>(v).ok())
                        {
                            out.push(c);
                        }
                    }
                }
            }
            consumer.unassign().map_err(storage)?;
            Ok(out)
        })
        .await
    }

    /// Reads the whole partition again with a fresh consumer, keeping every record's chain
    /// headers, and groups the records the rule did not accept by the append they claim.
    async fn stray_appends(&self) -> Result<Vec<StrayAppend>, LogError> {
        let inner = self.inner.clone();
        blocking(move || {
            let consumer: BaseConsumer = inner
                .config
                .consumer()
                .create_with_context(Quiet)
                .map_err(storage)?;
            let mut follower = Follower::new(consumer);
            follower.scan = Some(Scan::default());
            follower.catch_up(&inner.topic, Until::End)?;
            Ok(follower.scan.take().map(Scan::strays).unwrap_or_default())
        })
        .await
    }

    async fn read_signatures_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<BatchSignature>, LogError> {
        self.caught_up(move |f| {
            let from = f.signatures.partition_point(|s| s.last_position <= after);
            f.signatures[from..].iter().take(limit).cloned().collect()
        })
        .await
    }

    /// Flushes the producer; appends after this fail.
    async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let inner = self.inner.clone();
        let flushed = blocking(move || {
            let producer = lock(&inner.producer).clone();
            producer.flush(STEP_TIMEOUT).map_err(storage)
        })
        .await;
        if let Err(e) = flushed {
            tracing::warn!(topic = %self.inner.topic, error = %e, "flushing the producer failed");
        }
    }
}
