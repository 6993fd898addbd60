//! Producer and consumer basics against librdkafka's in-process mock cluster: no broker process,
//! and a second, independent implementation of the protocol besides tansu. (The mock keeps only
//! the last few MB of a partition: fine here, not for replaying large logs.)

mod common;

use common::{learner_event, org_event, seal};
use contingent_domain::LearnerId;
use contingent_log::{verify_chain, EventLog, Head, LogError};
use contingent_log_kafka::{KafkaConfig, KafkaLog};
use rdkafka::mocking::MockCluster;

#[tokio::test]
async fn the_log_works_on_the_mock_cluster() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let topic = KafkaConfig::region_topic("mock");
    // The mock cluster does not implement CreateTopics: the topic is made here, and `open`
    // finds it in the metadata.
    cluster.create_topic(&topic, 1, 1).expect("topic");
    let open = || KafkaLog::open(KafkaConfig::new(cluster.bootstrap_servers(), &topic));
    let log = open().await.expect("open");
    let learner = LearnerId::generate();
    let first = seal(
        vec![org_event("Школа 1"), learner_event(learner)],
        Head::EMPTY,
    );
    log.append(&first).await.expect("append");
    let stale = seal(vec![org_event("Школа 2")], Head::EMPTY);
    assert!(matches!(
        log.append(&stale).await,
        Err(LogError::Conflict(1))
    ));

    let reader = open().await.expect("open");
    let back = reader.read_after(0, 10).await.expect("read");
    assert_eq!(back, first);
    assert_eq!(verify_chain(&back), Ok(2));
    assert_eq!(
        reader.read_learner(learner).await.expect("learner"),
        [first[1].clone()]
    );
    assert_eq!(reader.head().await.expect("head").hash, first[1].hash);
    log.close().await;
    reader.close().await;
}
