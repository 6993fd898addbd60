//! An append to a broker that stops answering mid-append (a private tansu, paused with SIGSTOP
//! past the producer's `message.timeout.ms`, then resumed with SIGCONT): whatever `append`
//! answers, the log every reader sees afterwards agrees with it. The broker writes the records
//! it received while paused once it runs again, after the producer gave them up.

mod common;
mod private_broker;

use std::time::Duration;

use common::*;
use contingent_domain::LearnerId;
use contingent_log::{EventLog, Head, LogError, RecordedEvent};
use contingent_log_kafka::{KafkaConfig, KafkaLog};
use private_broker::PrivateBroker;

async fn open_at(broker: &PrivateBroker, topic: &str, short_timeouts: bool) -> KafkaLog {
    let mut config = KafkaConfig::new(broker.address.clone(), topic);
    config.client_id = "contingent-log-kafka-tests".into();
    if short_timeouts {
        config.extra = vec![
            ("message.timeout.ms".into(), "1500".into()),
            ("request.timeout.ms".into(), "1000".into()),
        ];
    }
    KafkaLog::open(config).await.expect("open the Kafka log")
}

/// The events a fresh reader finds at the positions of `batch`.
async fn found_at(
    broker: &PrivateBroker,
    topic: &str,
    batch: &[RecordedEvent],
) -> Vec<RecordedEvent> {
    let reader = open_at(broker, topic, false).await;
    let after = batch[0].position() - 1;
    reader
        .read_after(after, batch.len())
        .await
        .expect("a fresh reader reads the log")
}

/// Appends a first event, then a batch of three while the broker is paused for `pause`, and
/// checks that the log agrees with the answer. Returns the answer.
async fn append_while_paused(pause: Duration) -> Result<(), LogError> {
    let broker = PrivateBroker::start();
    let topic = unique_topic();
    let log = open_at(&broker, &topic, true).await;
    log.append(&seal(vec![org_event("Первая школа")], Head::EMPTY))
        .await
        .expect("the first append");
    let head = log.head().await.expect("head");
    let learner = LearnerId::generate();
    let batch = seal(
        vec![
            org_event("Вторая школа"),
            learner_event(learner),
            learner_event(LearnerId::generate()),
        ],
        head,
    );

    broker.pause();
    let appending = tokio::spawn({
        let (log, batch) = (log.clone(), batch.clone());
        async move { log.append(&batch).await }
    });
    tokio::time::sleep(pause).await;
    broker.resume();
    let answer = tokio::time::timeout(Duration::from_secs(30), appending)
        .await
        .expect("append answered once the broker ran again")
        .expect("the append task");

    eprintln!("paused {pause:?}: append answered {answer:?}");
    let hashes = |events: &[RecordedEvent]| events.iter().map(|e| e.hash).collect::<Vec<_>>();
    match &answer {
        Ok(()) => {
            let found = found_at(&broker, &topic, &batch).await;
            assert_eq!(
                hashes(&found),
                hashes(&batch),
                "Ok, and the log holds the append"
            );
            assert_eq!(log.read_learner(learner).await.expect("read").len(), 1);
        }
        Err(e) => {
            // Whatever was still on its way has landed by now.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let found = found_at(&broker, &topic, &batch).await;
            assert!(
                found.iter().zip(&batch).all(|(f, b)| f.hash != b.hash),
                "answered {e}, yet the log holds the append"
            );
        }
    }
    // The log goes on: the next append continues the head every reader sees.
    let reader = open_at(&broker, &topic, false).await;
    let head = reader.head().await.expect("head");
    log.append(&seal(vec![org_event("Третья школа")], head))
        .await
        .expect("an append after the pause");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_the_paused_broker_writes_later_is_answered_as_accepted() {
    // Past the message timeout, not past the time a read may go without an answer.
    let answer = append_while_paused(Duration::from_secs(4)).await;
    assert!(answer.is_ok(), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_is_not_answered_failed_while_its_outcome_is_unknown() {
    // Past the 30 s a read may go without an answer: the log could not be read then, and the
    // append waits to learn its outcome rather than answer that it failed.
    let answer = append_while_paused(Duration::from_secs(32)).await;
    assert!(answer.is_ok(), "{answer:?}");
}
