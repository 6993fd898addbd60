//! The writer's mark book: marks the writer no longer holds in memory are still known to the
//! rules — a correction of any of them is decided against its current value, a mark id is never
//! taken twice — across restarts, and a book made from another log is not believed.

use std::path::Path;

use contingent_domain::{Command, CorrectMark, Event, Mark, MarkRecorded, Text};
use contingent_log::{Metadata, Source};
use contingent_registry::{Registry, RegistryError, Settings};
use contingent_simulate::{Config, Scale};

/// Settle after a few hundred marks, so a tiny region spills most of its marks to the book.
const SETTLE_AT: usize = 300;

fn settings(dir: &Path) -> Settings {
    let mut settings = Settings::new(dir);
    settings.project = false;
    settings.settle_marks_at = SETTLE_AT;
    settings
}

fn meta() -> Metadata {
    Metadata {
        source: Source {
            kind: contingent_domain::SourceKind::Region,
            id: "tests".into(),
        },
        actor: "mark-book-test".into(),
        idempotency_key: None,
        request_fingerprint: None,
    }
}

async fn region(dir: &Path, seed: u64) -> Registry {
    let registry = Registry::open(settings(dir), |_| {}).await.expect("open");
    let config = Config {
        seed,
        scale: Scale::tiny(),
        today: chrono::Utc::now().date_naive(),
    };
    contingent_simulate::generate(&registry, &config, |_, _, _| {})
        .await
        .expect("generate");
    registry
}

/// Every mark recorded in the log, first to last, with its value after corrections.
async fn marks(registry: &Registry) -> Vec<MarkRecorded> {
    let mut out: Vec<MarkRecorded> = Vec::new();
    let mut at = 0;
    loop {
        let page = registry.log().read_after(at, 10_000).await.expect("read");
        let Some(last) = page.last() else { break };
        at = last.position();
        for e in page {
            match e.envelope.event {
                Event::MarkRecorded(m) => out.push(m),
                Event::MarkCorrected(c) => {
                    if let Some(m) = out.iter_mut().find(|m| m.mark_id == c.mark_id) {
                        m.value = c.value;
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn other_value(mark: Mark) -> Mark {
    if mark == Mark::Three {
        Mark::Four
    } else {
        Mark::Three
    }
}

fn correction(mark: &MarkRecorded, value: Mark) -> Command {
    Command::CorrectMark(CorrectMark {
        mark_id: mark.mark_id,
        value,
        reason: Text::parse("ошибка ввода").expect("text"),
        teacher: mark.teacher.clone(),
    })
}

async fn corrected(registry: &Registry, mark: &MarkRecorded) -> (Mark, Mark) {
    let value = other_value(mark.value);
    let receipt = registry
        .submit(correction(mark, value), meta())
        .await
        .expect("the correction of a settled mark is accepted");
    let position = receipt.last_position().expect("an event");
    let event = registry
        .log()
        .read_after(position - 1, 1)
        .await
        .expect("read")
        .remove(0);
    match event.envelope.event {
        Event::MarkCorrected(c) => {
            assert_eq!((c.learner_id, c.class_id), (mark.learner_id, mark.class_id));
            (c.previous, c.value)
        }
        other => panic!("expected a correction, got {other:?}"),
    }
}

#[tokio::test]
async fn settled_marks_are_corrected_against_their_current_value_and_never_recorded_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = region(dir.path(), 7).await;
    let recorded = marks(&registry).await;
    assert!(
        recorded.len() > 4 * SETTLE_AT,
        "the region has {} marks",
        recorded.len()
    );
    let held = registry.read_state(|s| s.counts()[4]);
    assert!(
        held < recorded.len() / 2,
        "the writer holds {held} of {} marks in memory",
        recorded.len()
    );

    let first = recorded[0].clone();
    let (previous, value) = corrected(&registry, &first).await;
    assert_eq!((previous, value), (first.value, other_value(first.value)));

    let twice = registry
        .submit(Command::RecordMark(recorded[1].clone()), meta())
        .await;
    assert!(
        matches!(&twice, Err(RegistryError::Refused(e)) if e.code() == "already_exists"),
        "{twice:?}"
    );
    let unchanged = registry.submit(correction(&first, value), meta()).await;
    assert!(
        matches!(&unchanged, Err(RegistryError::Refused(e)) if e.code() == "mark_unchanged"),
        "{unchanged:?}"
    );
    registry.shutdown().await;

    // After a restart the writer holds few marks again, and knows the corrected value.
    let registry = Registry::open(settings(dir.path()), |_| {})
        .await
        .expect("reopen");
    assert!(registry.read_state(|s| s.counts()[4]) < recorded.len() / 2);
    let mut now = first.clone();
    now.value = value;
    let (previous, _) = corrected(&registry, &now).await;
    assert_eq!(previous, value);
    let (previous, _) = corrected(&registry, &recorded[2]).await;
    assert_eq!(previous, recorded[2].value);
    registry.shutdown().await;
}

#[tokio::test]
async fn a_mark_book_made_from_another_log_is_not_believed() {
    let one = tempfile::tempdir().expect("tempdir");
    let other = tempfile::tempdir().expect("tempdir");
    let registry = region(one.path(), 7).await;
    let ones = marks(&registry).await;
    registry.shutdown().await;
    let registry = region(other.path(), 8).await;
    let others = marks(&registry).await;
    registry.shutdown().await;
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("marks.db{suffix}");
        let _ = std::fs::remove_file(other.path().join(&name));
        if one.path().join(&name).exists() {
            std::fs::copy(one.path().join(&name), other.path().join(&name)).expect("copy");
        }
    }

    let registry = Registry::open(settings(other.path()), |_| {})
        .await
        .expect("reopen");
    let foreign = registry
        .submit(correction(&ones[0], Mark::Two), meta())
        .await;
    assert!(
        matches!(&foreign, Err(RegistryError::Refused(e)) if e.code() == "mark_not_found"),
        "{foreign:?}"
    );
    let (previous, _) = corrected(&registry, &others[0]).await;
    assert_eq!(previous, others[0].value);
    registry.shutdown().await;
}
