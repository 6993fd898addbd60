//! The federal feed on Kafka: the federal view of every event of the region's log, published in
//! log order to one single-partition topic (e.g. `contingent.region-22.federal`) that any Kafka
//! client can subscribe to. The subscriber's contract is `docs/federal-topic.md`.
//!
//! This crate owns that topic: its layout (key, value, headers), its creation, and where its
//! publisher left off. It reads the log through [`EventLog`] only and writes nothing to it. What
//! of an event may leave the region is not decided here: the value of every record is
//! [`contingent_access::federal_view`] of the event's envelope as served
//! ([`contingent_log::RecordedEvent::served_json`]: in the current version of its type), so `FEDERAL_FIELDS` stays
//! the one list of what the federal segment receives.
//!
//! - **Layout.** One partition, so the topic's order is the log's order. One record per event of
//!   the log, none skipped (an event with no federal data still carries its envelope fields), so
//!   a subscriber sees a gapless sequence of positions. Key = learner id ([`REGION_KEY`] for
//!   events about no learner), value = the JSON of the federal view, headers [`header::TYPE`],
//!   [`header::SCHEMA_VERSION`], [`header::EVENT_ID`], [`header::POSITION`], [`header::HASH`]
//!   (the event's hash in the region's log, so the federal segment holds the region's chain
//!   heads). A record also carries the region's newest signed checkpoint not yet carried
//!   (headers [`header::CHECKPOINT_POSITION`] … [`header::CHECKPOINT_SIGNATURE`]): on the
//!   record at the checkpoint's position when the publisher knows the checkpoint by then,
//!   otherwise on the first record it publishes after it. Checkpoints are read through
//!   [`EventLog::checkpoints`], at most every [`CHECKPOINT_REFRESH`]; after a restart the
//!   newest one is carried again (at least once, like the records).
//! - **Where it left off** is the topic itself: [`FederalPublisher::open`] reads the `position`
//!   header of the topic's last record, and the first batch checks that the log holds the same
//!   event (by id) at that position, so a topic is never continued from another region's log.
//! - **Delivery.** An idempotent producer (`acks=all`, `enable.gapless.guarantee=true`: an
//!   error that would leave a gap in what it produced stops it with a fatal error instead); a
//!   batch moves the position only when every record of it is acknowledged. On the first failed
//!   record of a batch the records not yet sent are purged, so nothing after a failed record is
//!   sent by that producer. After a failed or abandoned batch the publisher replaces the
//!   producer (a fatal one for good), waits for the old one's records in flight, and reads the
//!   topic's end again before producing, so duplicates arise only when a record lands after
//!   that read: at-least-once, and a duplicate carries the same `event_id` and `position` and
//!   comes after the first copy.
//!
//! One publisher per topic: two publishers on one topic would each publish every event.
#![deny(missing_docs)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use contingent_access::federal_view;
use contingent_log::{Checkpoint, EventLog, LogError, RecordedEvent};
use contingent_log_kafka::{KafkaConfig, Quiet};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, PurgeConfig};
use rdkafka::{Offset, TopicPartitionList};

/// The only partition of the federal topic.
pub const PARTITION: i32 = 0;

/// The record key of events that concern no learner (organizations, classes, teachers).
pub const REGION_KEY: &str = "region";

/// The headers of every record of the federal topic (UTF-8 text).
pub mod header {
    /// The event type name, e.g. `enrolled`.
    pub const TYPE: &str = "type";
    /// The version of the event type's schema, decimal.
    pub const SCHEMA_VERSION: &str = "schema_version";
    /// The event id (UUID), the same as in the region's log.
    pub const EVENT_ID: &str = "event_id";
    /// The event's position in the region's log, decimal, from 1.
    pub const POSITION: &str = "position";
    /// The event's hash in the region's log (SHA-256 of its stored bytes, 64 hex digits): the
    /// head of the region's hash chain at this position, held by the federal segment.
    pub const HASH: &str = "hash";

    /// On a record that carries a signed checkpoint of the region's log: the checkpoint's
    /// position, decimal. At most the record's own `position`.
    pub const CHECKPOINT_POSITION: &str = "checkpoint_position";
    /// The log's head hash at the checkpoint's position, 64 hex digits: the `hash` header of
    /// the record at that position.
    pub const CHECKPOINT_HEAD_HASH: &str = "checkpoint_head_hash";
    /// When the checkpoint was signed, in milliseconds since the Unix epoch, decimal.
    pub const CHECKPOINT_TIME_MS: &str = "checkpoint_time_ms";
    /// The id of the writer key that signed it (16 hex digits).
    pub const CHECKPOINT_KEY_ID: &str = "checkpoint_key_id";
    /// The Ed25519 signature of [`contingent_log::Checkpoint::message`], 128 hex digits.
    pub const CHECKPOINT_SIGNATURE: &str = "checkpoint_signature";
}

/// How long the publisher uses the checkpoints it read from the log before reading them again
/// (reading them from Kafka takes a quarter of a second or more).
pub const CHECKPOINT_REFRESH: Duration = Duration::from_secs(5);

/// How long one network step (metadata, topic creation, reading the topic's end, flushing) may
/// take, and how long reading may go without receiving a record.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the records of a failed batch may take to land: past the producer's
/// `message.timeout.ms` (60 s), after which each has a delivery report.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(65);

/// Errors of the federal publisher.
#[derive(Debug, thiserror::Error)]
pub enum FederalError {
    /// Kafka refused or failed an operation (connection, creation, delivery).
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The region's log could not be read.
    #[error("log: {0}")]
    Log(#[from] LogError),
    /// The topic cannot hold the federal feed: it could not be created, does not have exactly
    /// one partition, or its last record is not a federal record.
    #[error("federal topic {topic}: {detail}")]
    Topic {
        /// The topic.
        topic: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The topic's last record is not the log's event at its position: the topic was published
    /// from another log.
    #[error("federal topic {topic} does not continue this log at position {position}: {detail}")]
    Diverged {
        /// The topic.
        topic: String,
        /// The position of the topic's last record.
        position: u64,
        /// How they differ.
        detail: String,
    },
    /// An event of the log cannot be published: its stored bytes are not JSON, or the log
    /// answered out of order.
    #[error("event at position {position}: {detail}")]
    Event {
        /// The event's position.
        position: u64,
        /// What is wrong.
        detail: String,
    },
}

/// The last record of the topic, as its headers describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Published {
    position: u64,
    event_id: String,
}

/// Publishes the federal view of the region's log to the federal topic.
pub struct FederalPublisher {
    config: KafkaConfig,
    producer: FutureProducer,
    /// Set while a batch is being produced and left set when it fails or is abandoned: the
    /// topic's end is then read again before the next batch.
    stale: bool,
    /// The position of the last event known to be in the topic.
    position: u64,
    /// The event id the topic holds at `position`, until compared with the log's.
    unchecked: Option<String>,
    /// The log's signed checkpoints, ordered by position, and when they were read.
    checkpoints: Vec<Checkpoint>,
    checkpoints_read: Option<Instant>,
    /// The position of the last checkpoint the topic is known to carry; `None` after opening
    /// or resuming, when the newest one is carried again.
    carried: Option<u64>,
}

impl std::fmt::Debug for FederalPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederalPublisher")
            .field("topic", &self.config.topic)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl FederalPublisher {
    /// Connects to `config.brokers`, creates `config.topic` (see
    /// [`KafkaConfig::federal_topic`]) with one partition if it is missing (retention unlimited,
    /// replication factor the broker's default), refuses a topic with other than one partition,
    /// and reads the topic's last record: the publisher continues after its `position`.
    pub async fn open(config: KafkaConfig) -> Result<Self, FederalError> {
        let consumer = end_reader(&config)?;
        let topic = config.topic.clone();
        let (consumer, exists) = blocking(move || {
            let exists = topic_exists(&consumer, &topic)?;
            Ok((consumer, exists))
        })
        .await?;
        if !exists {
            create_topic(&config).await?;
        }
        let topic = config.topic.clone();
        let last = blocking(move || {
            check_partitions(&consumer, &topic)?;
            read_last(&consumer, &topic)
        })
        .await?;
        let producer = gapless_producer(&config)?;
        let (position, unchecked) = match last {
            Some(p) => (p.position, Some(p.event_id)),
            None => (0, None),
        };
        tracing::info!(topic = %config.topic, position, "federal publisher opened");
        Ok(Self {
            config,
            producer,
            stale: false,
            position,
            unchecked,
            checkpoints: Vec::new(),
            checkpoints_read: None,
            carried: None,
        })
    }

    /// The position of the last event of the log known to be published (0 before the first).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The federal topic.
    pub fn topic(&self) -> &str {
        &self.config.topic
    }

    /// Publishes up to `batch` events of `log` after [`FederalPublisher::position`], one record
    /// each, and returns how many; 0 when the topic is up to date. The position moves only when
    /// Kafka acknowledged every record of the batch.
    ///
    /// On an error nothing is assumed of the batch: the next call flushes the producer, reads the
    /// topic's last record again and continues after it. Dropping the future midway is the same.
    pub async fn run_once(
        &mut self,
        log: &dyn EventLog,
        batch: usize,
    ) -> Result<usize, FederalError> {
        if self.stale {
            self.resume_from_topic().await?;
        }
        if let Some(event_id) = self.unchecked.clone() {
            self.check_continues(log, &event_id).await?;
            self.unchecked = None;
        }
        let events = log.read_after(self.position, batch.max(1)).await?;
        let Some(last) = events.last().map(RecordedEvent::position) else {
            return Ok(0);
        };
        if self
            .checkpoints_read
            .is_none_or(|read| read.elapsed() >= CHECKPOINT_REFRESH)
        {
            let mut checkpoints = log.checkpoints().await?;
            // Stable: of checkpoints at one position the one stored last is kept last.
            checkpoints.sort_by_key(|c| c.position);
            self.checkpoints = checkpoints;
            self.checkpoints_read = Some(Instant::now());
        }
        let mut carried = self.carried;
        let records = events
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let expected = self.position + 1 + i as u64;
                if event.position() != expected {
                    return Err(FederalError::Event {
                        position: event.position(),
                        detail: format!("the log answered it where position {expected} was due"),
                    });
                }
                let signed = self.checkpoints.partition_point(|c| c.position <= expected);
                let checkpoint = signed
                    .checked_sub(1)
                    .map(|i| &self.checkpoints[i])
                    .filter(|c| carried.is_none_or(|p| c.position > p));
                if let Some(c) = checkpoint {
                    carried = Some(c.position);
                }
                FederalRecord::of(event, checkpoint)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Should this future fail or be dropped before every record is acknowledged, the next
        // call starts from the topic's end.
        self.stale = true;
        produce(&self.producer, &self.config.topic, &records).await?;
        self.stale = false;
        self.position = last;
        self.carried = carried;
        tracing::debug!(topic = %self.config.topic, position = last, count = records.len(), "federal records published");
        Ok(records.len())
    }

    /// After a failed or abandoned batch: waits for the records still in flight (a new producer
    /// replaces the old one, which may have failed for good), then reads the topic's end again.
    async fn resume_from_topic(&mut self) -> Result<(), FederalError> {
        let fresh = gapless_producer(&self.config)?;
        let old = std::mem::replace(&mut self.producer, fresh);
        let topic = self.config.topic.clone();
        if let Some((code, reason)) = old.client().fatal_error() {
            tracing::warn!(%topic, %code, reason, "the federal producer failed for good; replaced");
        }
        blocking(move || {
            if let Err(e) = old.flush(FLUSH_TIMEOUT) {
                tracing::warn!(%topic, error = %e, "flushing the failed batch's producer failed");
            }
            drop(old);
            Ok(())
        })
        .await?;
        let consumer = end_reader(&self.config)?;
        let topic = self.config.topic.clone();
        let last = blocking(move || read_last(&consumer, &topic)).await?;
        match last {
            Some(p) => {
                self.position = p.position;
                self.unchecked = Some(p.event_id);
            }
            None => {
                self.position = 0;
                self.unchecked = None;
            }
        }
        self.carried = None;
        self.stale = false;
        tracing::info!(topic = %self.config.topic, position = self.position, "federal publisher resumed from the topic's end");
        Ok(())
    }

    /// Checks that the log holds the event `event_id` at the position of the topic's last record.
    async fn check_continues(
        &self,
        log: &dyn EventLog,
        event_id: &str,
    ) -> Result<(), FederalError> {
        let position = self.position;
        let diverged = |detail: String| FederalError::Diverged {
            topic: self.config.topic.clone(),
            position,
            detail,
        };
        let found = log.read_after(position.saturating_sub(1), 1).await?;
        match found.first() {
            Some(event) if event.position() == position => {
                let in_log = event.envelope.event_id.to_string();
                if in_log == event_id {
                    Ok(())
                } else {
                    Err(diverged(format!(
                        "the topic holds event {event_id} there, the log event {in_log}"
                    )))
                }
            }
            _ => {
                let head = log.head().await?.position;
                Err(diverged(format!("the log ends at position {head}")))
            }
        }
    }
}

/// The publisher's producer: the log's idempotent producer, and a fatal error rather than a gap
/// in what it produced (`enable.gapless.guarantee`; librdkafka does not count records that
/// fail by `message.timeout.ms`, which [`produce`] guards against by purging).
fn gapless_producer(config: &KafkaConfig) -> Result<FutureProducer, FederalError> {
    let mut client = config.producer_config();
    client.set("enable.gapless.guarantee", "true");
    Ok(client.create()?)
}

/// One event's record, ready to produce.
struct FederalRecord {
    key: String,
    value: Vec<u8>,
    headers: OwnedHeaders,
}

impl FederalRecord {
    fn of(event: &RecordedEvent, checkpoint: Option<&Checkpoint>) -> Result<Self, FederalError> {
        let position = event.position();
        let invalid = |e: serde_json::Error| FederalError::Event {
            position,
            detail: e.to_string(),
        };
        let envelope = event.served_json().map_err(|e| FederalError::Event {
            position,
            detail: e.to_string(),
        })?;
        let value = serde_json::to_vec(&federal_view(&envelope)).map_err(invalid)?;
        let key = event
            .envelope
            .learner_id
            .map_or_else(|| REGION_KEY.to_owned(), |l| l.to_string());
        let mut text = vec![
            (header::TYPE, event.envelope.event.type_name().to_owned()),
            (
                header::SCHEMA_VERSION,
                event.envelope.schema_version.to_string(),
            ),
            (header::EVENT_ID, event.envelope.event_id.to_string()),
            (header::POSITION, position.to_string()),
            (header::HASH, event.hash.to_hex()),
        ];
        if let Some(c) = checkpoint {
            text.extend([
                (header::CHECKPOINT_POSITION, c.position.to_string()),
                (header::CHECKPOINT_HEAD_HASH, c.head_hash.to_hex()),
                (
                    header::CHECKPOINT_TIME_MS,
                    c.time.timestamp_millis().to_string(),
                ),
                (header::CHECKPOINT_KEY_ID, c.key_id.clone()),
                (header::CHECKPOINT_SIGNATURE, c.signature.clone()),
            ]);
        }
        let mut headers = OwnedHeaders::new_with_capacity(text.len());
        for (key, value) in &text {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_str()),
            });
        }
        Ok(Self {
            key,
            value,
            headers,
        })
    }
}

/// Produces every record to partition 0 in order, and awaits every delivery report. At the
/// first failure (a refused send or a failed delivery report) the records still queued in the
/// producer are purged: none of them is sent after a record that may be missing.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    records: &[FederalRecord],
) -> Result<(), FederalError> {
    let mut in_flight: VecDeque<DeliveryFuture> = VecDeque::with_capacity(records.len());
    let mut first_error: Option<FederalError> = None;
    for record in records {
        let mut future = FutureRecord::to(topic)
            .partition(PARTITION)
            .key(&record.key)
            .payload(&record.value)
            .headers(record.headers.clone());
        loop {
            match producer.send_result(future) {
                Ok(delivery) => {
                    in_flight.push_back(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    future = back;
                    match in_flight.pop_front() {
                        Some(delivery) => {
                            if let Err(e) = delivered(delivery).await {
                                first_error.get_or_insert(e);
                                producer.purge(PurgeConfig::default().queue());
                            }
                        }
                        None => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
                Err((e, _)) => {
                    first_error.get_or_insert(e.into());
                    producer.purge(PurgeConfig::default().queue());
                    break;
                }
            }
        }
        if first_error.is_some() {
            break;
        }
    }
    while let Some(delivery) = in_flight.pop_front() {
        if let Err(e) = delivered(delivery).await {
            if first_error.is_none() {
                producer.purge(PurgeConfig::default().queue());
            }
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn delivered(delivery: DeliveryFuture) -> Result<(), FederalError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(e.into()),
        Err(_) => Err(FederalError::Kafka(KafkaError::Canceled)),
    }
}

/// The consumer that reads the topic's end, with the log's client context: reaching the end of
/// the partition, which it asks for, is not logged as an error.
type EndReader = BaseConsumer<Quiet>;

/// A consumer that reads the topic's end: the log's consumer configuration, starting from the
/// earliest record should the requested offset be out of range.
fn end_reader(config: &KafkaConfig) -> Result<EndReader, FederalError> {
    let mut client = config.consumer_config();
    client.set("auto.offset.reset", "earliest");
    Ok(client.create_with_context(Quiet)?)
}

async fn create_topic(config: &KafkaConfig) -> Result<(), FederalError> {
    let admin: AdminClient<DefaultClientContext> = config.admin_config().create()?;
    let topic = NewTopic::new(&config.topic, 1, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "delete")
        .set("retention.ms", "-1")
        .set("retention.bytes", "-1");
    let options = AdminOptions::new().operation_timeout(Some(STEP_TIMEOUT));
    for result in admin.create_topics([&topic], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(FederalError::Topic {
                    topic: name,
                    detail: format!("cannot create it: {code}"),
                })
            }
        }
    }
    Ok(())
}

/// Whether the metadata knows the topic (consumers do not create topics by asking).
fn topic_exists(consumer: &EndReader, topic: &str) -> Result<bool, FederalError> {
    let metadata = consumer.fetch_metadata(Some(topic), STEP_TIMEOUT)?;
    Ok(metadata
        .topics()
        .iter()
        .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()))
}

/// Waits until the topic is known and refuses a topic with other than one partition.
fn check_partitions(consumer: &EndReader, topic: &str) -> Result<(), FederalError> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let metadata = consumer.fetch_metadata(Some(topic), STEP_TIMEOUT)?;
        match metadata.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                let n = t.partitions().len();
                if n != 1 {
                    return Err(FederalError::Topic {
                        topic: topic.to_owned(),
                        detail: format!(
                            "it has {n} partitions; the federal feed needs exactly one"
                        ),
                    });
                }
                return Ok(());
            }
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                return Err(FederalError::Topic {
                    topic: topic.to_owned(),
                    detail: "it did not appear in the metadata".into(),
                })
            }
        }
    }
}

/// The topic's last record, or `None` when the topic is empty.
///
/// The end is where a fetch reports end-of-partition. ListOffsets (the watermarks) only says
/// where to start reading: tansu 0.6 answers it with an offset that can lag the real end, never
/// one past it, so reading from one before it to end-of-partition finds the last record on any
/// broker.
fn read_last(consumer: &EndReader, topic: &str) -> Result<Option<Published>, FederalError> {
    let (low, high) = consumer.fetch_watermarks(topic, PARTITION, STEP_TIMEOUT)?;
    let start = low.max(high - 1).max(0);
    let mut last = read_to_end(consumer, topic, start)?;
    if last.is_none() && start > low {
        last = read_to_end(consumer, topic, low.max(0))?;
    }
    let Some((offset, position, event_id)) = last else {
        return Ok(None);
    };
    let not_federal = |what: &str| FederalError::Topic {
        topic: topic.to_owned(),
        detail: format!("its last record (offset {offset}) has {what}: not a federal record"),
    };
    let position = position
        .and_then(|p| p.parse::<u64>().ok())
        .filter(|&p| p >= 1)
        .ok_or_else(|| not_federal("no valid position header"))?;
    let event_id = event_id.ok_or_else(|| not_federal("no event_id header"))?;
    Ok(Some(Published { position, event_id }))
}

/// The offset and the `position` and `event_id` headers of the last record at or after
/// `start`, read until end-of-partition.
type LastRecord = (i64, Option<String>, Option<String>);

fn read_to_end(
    consumer: &EndReader,
    topic: &str,
    start: i64,
) -> Result<Option<LastRecord>, FederalError> {
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, PARTITION, Offset::Offset(start))?;
    consumer.assign(&assignment)?;
    let read = read_assigned(consumer);
    let unassigned = consumer.unassign().map_err(FederalError::from);
    read.and_then(|last| unassigned.map(|()| last))
}

fn read_assigned(consumer: &EndReader) -> Result<Option<LastRecord>, FederalError> {
    let mut last = None;
    let mut deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(KafkaError::MessageConsumption(RDKafkaErrorCode::OperationTimedOut).into());
        }
        match consumer.poll(left) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(last),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(message)) => {
                deadline = Instant::now() + STEP_TIMEOUT;
                let text = |name: &str| {
                    message.headers().and_then(|hs| {
                        hs.iter()
                            .filter(|h| h.key == name)
                            .find_map(|h| h.value)
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .map(str::to_owned)
                    })
                };
                last = Some((
                    message.offset(),
                    text(header::POSITION),
                    text(header::EVENT_ID),
                ));
            }
        }
    }
}

/// Runs blocking Kafka calls off the async workers.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, FederalError> + Send + 'static,
) -> Result<R, FederalError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // The runtime is shutting down.
            Err(_) => Err(FederalError::Kafka(KafkaError::Canceled)),
        },
    }
}

#[cfg(test)]
mod tests {
    use contingent_access::{FEDERAL_ENVELOPE_FIELDS, FEDERAL_FIELDS};

    const DOC: &str = include_str!("../../../docs/federal-topic.md");

    /// The cells of the rows of the table whose header row starts with `header`.
    fn table(header: &str) -> Vec<Vec<String>> {
        DOC.lines()
            .map(str::trim)
            .skip_while(|l| !l.starts_with(header))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                l.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_owned())
                    .collect()
            })
            .collect()
    }

    /// `` `a`, `b` `` → `["a", "b"]`.
    fn names(cell: &str) -> Vec<String> {
        cell.split(',')
            .map(|n| n.trim().trim_matches('`').to_owned())
            .filter(|n| !n.is_empty())
            .collect()
    }

    fn expected_data_table() -> String {
        FEDERAL_FIELDS
            .iter()
            .map(|(ty, fields)| {
                let fields: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
                format!("| `{ty}` | {} |\n", fields.join(", "))
            })
            .collect()
    }

    #[test]
    fn the_docs_table_of_data_fields_is_federal_fields() {
        let documented: Vec<(String, Vec<String>)> = table("| event type | data fields |")
            .into_iter()
            .map(|cells| (cells[0].trim_matches('`').to_owned(), names(&cells[1])))
            .collect();
        let expected: Vec<(String, Vec<String>)> = FEDERAL_FIELDS
            .iter()
            .map(|(ty, fields)| {
                let fields = fields.iter().map(|f| (*f).to_owned()).collect();
                ((*ty).to_owned(), fields)
            })
            .collect();
        assert_eq!(
            documented,
            expected,
            "docs/federal-topic.md: the table of data fields must read\n{}",
            expected_data_table()
        );
    }

    #[test]
    fn the_docs_table_of_value_fields_is_the_federal_envelope() {
        let documented: Vec<String> = table("| field ")
            .into_iter()
            .map(|cells| cells[0].trim_matches('`').to_owned())
            .collect();
        let mut expected: Vec<String> = FEDERAL_ENVELOPE_FIELDS
            .iter()
            .map(|f| (*f).to_owned())
            .collect();
        expected.extend(["source_kind".to_owned(), "data".to_owned()]);
        assert_eq!(
            documented, expected,
            "docs/federal-topic.md: the value's fields"
        );
    }

    #[test]
    fn the_docs_table_of_headers_is_what_records_carry() {
        let documented: Vec<String> = table("| header ")
            .into_iter()
            .map(|cells| cells[0].trim_matches('`').to_owned())
            .collect();
        let expected = [
            super::header::TYPE,
            super::header::SCHEMA_VERSION,
            super::header::EVENT_ID,
            super::header::POSITION,
            super::header::HASH,
        ];
        assert_eq!(documented, expected, "docs/federal-topic.md: the headers");
        let documented: Vec<String> = table("| checkpoint header ")
            .into_iter()
            .map(|cells| cells[0].trim_matches('`').to_owned())
            .collect();
        let expected = [
            super::header::CHECKPOINT_POSITION,
            super::header::CHECKPOINT_HEAD_HASH,
            super::header::CHECKPOINT_TIME_MS,
            super::header::CHECKPOINT_KEY_ID,
            super::header::CHECKPOINT_SIGNATURE,
        ];
        assert_eq!(
            documented, expected,
            "docs/federal-topic.md: the checkpoint headers"
        );
    }
}
