//! The machine's own limits, measured in the same run as the registry: the disk's sequential
//! write bandwidth with fdatasync, its rate of small synchronous writes (what bounds group
//! commits per second), and the broker's raw produce rate for records like the log's.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use contingent_log::RecordedEvent;
use contingent_log_kafka::{header, KafkaConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::report::Percentiles;

/// Sequential writes of `block` bytes, each followed by fdatasync, to a new file in `dir`,
/// until `total` bytes or `limit` time: bytes per second.
pub fn sequential_fsync(
    dir: &Path,
    block: usize,
    total: u64,
    limit: Duration,
) -> Result<(f64, u64)> {
    let path = dir.join("fsync-probe.bin");
    let mut file = std::fs::File::create(&path).context("creating the probe file")?;
    let buf: Vec<u8> = (0..block).map(|i| (i * 31 + 7) as u8).collect();
    let started = Instant::now();
    let mut written = 0u64;
    while written < total && started.elapsed() < limit {
        file.write_all(&buf)?;
        file.sync_data()?;
        written += block as u64;
    }
    let elapsed = started.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok((written as f64 / elapsed.as_secs_f64(), written))
}

/// Appends of `size` bytes, each followed by fdatasync, for `limit`: syncs per second and their
/// latency.
pub fn small_fsync(dir: &Path, size: usize, limit: Duration) -> Result<(f64, Percentiles)> {
    let path = dir.join("fsync-small-probe.bin");
    let mut file = std::fs::File::create(&path).context("creating the probe file")?;
    let buf = vec![0x5au8; size];
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < limit {
        let t = Instant::now();
        file.write_all(&buf)?;
        file.sync_data()?;
        samples.push(t.elapsed().as_micros() as u64);
    }
    let elapsed = started.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    let n = samples.len() as f64;
    Ok((n / elapsed.as_secs_f64(), Percentiles::of(samples)))
}

/// A record as the Kafka log writes it: key, value and the seven headers.
pub struct RawRecord {
    key: String,
    value: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl RawRecord {
    /// The record the log would write for `event`.
    pub fn like(event: &RecordedEvent) -> Self {
        let e = &event.envelope;
        Self {
            key: e
                .learner_id
                .map_or_else(|| "region".to_owned(), |l| l.to_string()),
            value: event.body.clone(),
            headers: vec![
                (header::TYPE, e.event.type_name().to_owned()),
                (header::SCHEMA_VERSION, e.schema_version.to_string()),
                (header::POSITION, e.position.to_string()),
                (header::EVENT_ID, e.event_id.to_string()),
                (header::HASH, event.hash.to_hex()),
                (header::PREV_HASH, e.prev_hash.to_hex()),
                (header::APPEND_LAST, e.position.to_string()),
            ],
        }
    }

    pub fn bytes(&self) -> usize {
        self.key.len()
            + self.value.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    fn headers(&self) -> OwnedHeaders {
        let mut h = OwnedHeaders::new_with_capacity(self.headers.len());
        for (key, value) in &self.headers {
            h = h.insert(Header {
                key,
                value: Some(value.as_str()),
            });
        }
        h
    }
}

/// Creates a one-partition topic (the broker's default replication factor), as the log does.
pub async fn create_topic(config: &KafkaConfig, topic: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = config.admin_config().create()?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics([&new], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Produces `count` records cycling over `records` to a fresh topic with the log's producer
/// settings (idempotent, `acks=all`), in batches of `batch` records: all of a batch in flight at
/// once, the next batch sent once every record of the one before is acknowledged (`batch` of
/// `count` or more: everything in flight at once). Returns records per second.
pub async fn raw_produce(
    config: &KafkaConfig,
    records: &[RawRecord],
    count: usize,
    batch: usize,
) -> Result<f64> {
    let topic = format!(
        "contingent.bench-raw-{}.events",
        uuid::Uuid::new_v4().simple()
    );
    create_topic(config, &topic).await?;
    let producer: FutureProducer = config.producer_config().create()?;
    // Warm the connection and the producer id before timing.
    if let Some(first) = records.first() {
        let record = FutureRecord::to(&topic)
            .partition(0)
            .key(&first.key)
            .payload(&first.value)
            .headers(first.headers());
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)?;
    }
    let started = Instant::now();
    let mut sent = 0usize;
    while sent < count {
        let n = batch.min(count - sent);
        let mut in_flight = VecDeque::with_capacity(n.min(100_000));
        for i in sent..sent + n {
            let r = &records[i % records.len()];
            let mut record = FutureRecord::to(&topic)
                .partition(0)
                .key(&r.key)
                .payload(&r.value)
                .headers(r.headers());
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        in_flight.push_back(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        match in_flight.pop_front() {
                            Some(d) => {
                                d.await?.map_err(|(e, _)| e)?;
                            }
                            None => tokio::time::sleep(Duration::from_millis(1)).await,
                        }
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
        }
        while let Some(d) = in_flight.pop_front() {
            d.await?.map_err(|(e, _)| e)?;
        }
        sent += n;
    }
    let elapsed = started.elapsed();
    producer.flush(Duration::from_secs(30))?;
    Ok(count as f64 / elapsed.as_secs_f64())
}
