//! The read side of a deployment as black-box tests see it: the read models' positions and
//! rows in PostgreSQL, and the federal topic as a subscriber reads it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use contingent_projections::all_projections;
use sqlx::AnyPool;

/// A pool on the read models' database.
pub async fn pool(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(url).await.expect("PostgreSQL")
}

/// The lowest stored position of every read model.
pub async fn projected(pool: &AnyPool) -> u64 {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT projection, position FROM projection_positions")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    let stored: BTreeMap<String, i64> = rows.into_iter().collect();
    all_projections()
        .iter()
        .map(|p| stored.get(p.name()).copied().unwrap_or(0) as u64)
        .min()
        .unwrap_or(0)
}

/// The `event_id` header of every record of the federal topic, in the partition's order, read
/// by a consumer group member as a federal subscriber would: at least `expected` records, and
/// then whatever more comes within three seconds (a duplicate would come after them).
pub async fn federal_records(broker: &str, topic: &str, expected: usize) -> Vec<String> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::{Headers, Message};
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set(
            "group.id",
            format!("federal-{}", contingent_testkit::unique_region()),
        )
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut quiet_since = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "{} of {expected} federal records",
            ids.len()
        );
        match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            Ok(Ok(message)) => {
                quiet_since = None;
                let id = message
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == "event_id"))
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .expect("an event_id header");
                ids.push(id);
            }
            _ => {
                if ids.len() >= expected {
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(3) {
                        return ids;
                    }
                }
            }
        }
    }
}

/// Every read model's tables, and the positions.
pub fn tables() -> Vec<&'static str> {
    let mut tables: Vec<&'static str> = all_projections()
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    tables.push("projection_positions");
    tables
}
