//! Moving a log written before personal fields were sealed into a new log that seals them
//! (`contingent migrate-log`, docs/personal-data.md "Moving a deployment").
//!
//! The old log stays as it is: its bytes are what its chain and signatures cover, and it is the
//! evidence of what was recorded before. The new log opens with a [`LogMigrated`] event naming
//! the old log's head (position and hash); then every event of the old log follows in its order,
//! one position later, with the same event id, business date, recorded time, source, actor and
//! idempotency key, in the current version of its type, its personal fields sealed under the
//! learner's data key, chained to the one before and signed by the new writer. An auditor
//! verifies the old log up to that head and the new one from its first event, and
//! [`migrate_log`] itself compares the two, event by event, before it reports success.
//!
//! A log that already holds sealed events was written by a version that seals them: there is
//! nothing to migrate, and it is refused before anything is written. A migration that was
//! interrupted (the new log begins with this old log's `log_migrated` and holds part of it) is
//! taken up where it stopped; any other non-empty new log is refused.

use chrono::{NaiveDate, Utc};
use contingent_domain::{ChainHash, Event, LogMigrated, SourceKind, Text};
use contingent_log::{
    Envelope, EventLog, Head, LogError, Metadata, RecordedEvent, Source, GENESIS_HASH,
};

use crate::registry::{lock_writer_files, open_stored_log, open_writer_log};
use crate::{RegistryError, Settings};

/// Events read and written per append.
const PAGE: usize = 1_000;

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The old log's head: its last position and hash.
    pub from_head: Head,
    /// The new log's head: one event more than the old log.
    pub to_head: Head,
    /// Events copied (the old log's length).
    pub copied: u64,
}

fn refused(why: String) -> RegistryError {
    RegistryError::Unavailable(why)
}

/// Writes the log `from` names into the empty log `to` names, sealing personal fields under
/// `to`'s key store, then compares the two. `from_log` says where the old log was, for the
/// auditor; `progress` is told each position written, then each compared.
pub async fn migrate_log(
    from: &Settings,
    to: &Settings,
    from_log: Text,
    reason: Text,
    migrated_on: NaiveDate,
    mut progress: impl FnMut(u64),
) -> Result<Migration, RegistryError> {
    std::fs::create_dir_all(&to.data_dir)
        .map_err(|e| refused(format!("{}: {e}", to.data_dir.display())))?;
    let _lock = lock_writer_files(to)?;
    let old = open_stored_log(from).await?;
    let from_head = old.head().await?;
    if from_head.position == 0 {
        return Err(refused("the old log is empty: nothing to migrate".into()));
    }
    // Refused before anything is written: a log already sealed has nothing to migrate.
    let mut at = 0;
    while at < from_head.position {
        let page = old.read_after(at, PAGE).await?;
        let Some(last) = page.last() else { break };
        if let Some(sealed) = page.iter().find(|e| e.envelope.personal.is_some()) {
            return Err(refused(format!(
                "the old log's event at position {} is stored with its personal fields sealed: \
                 the log was written by a version that seals them, and there is nothing to \
                 migrate",
                sealed.position()
            )));
        }
        at = last.position();
    }
    let new = open_writer_log(to).await?;
    let head = new.head().await?;
    let from_head_hash = ChainHash::parse(&from_head.hash.to_hex()).map_err(refused)?;
    // An interrupted migration of this same log is taken up where it stopped; any other
    // non-empty log is refused.
    let (mut batch, mut prev, mut at) = if head.position == 0 {
        let meta = Metadata {
            source: Source {
                kind: SourceKind::Region,
                id: "migrate-log".into(),
            },
            actor: "system:migrate-log".into(),
            idempotency_key: None,
            request_fingerprint: None,
        };
        let first = Event::LogMigrated(LogMigrated {
            from_head_position: from_head.position,
            from_head_hash,
            from_log,
            reason,
            migrated_on,
        });
        let batch =
            Envelope::seal_all_with(vec![first], &meta, 1, GENESIS_HASH, Utc::now(), |e| {
                new.seal(e)
            })?;
        let prev = batch[0].hash;
        (batch, prev, 0)
    } else {
        let first = new.read_after(0, 1).await?;
        let resumes = first.first().is_some_and(|e| {
            matches!(&e.envelope.event, Event::LogMigrated(m)
                if m.from_head_position == from_head.position && m.from_head_hash == from_head_hash)
        });
        if !resumes || head.position > from_head.position + 1 {
            return Err(refused(format!(
                "the new log already holds {} events and is not a migration of this log: \
                 migrate into an empty log",
                head.position
            )));
        }
        tracing::info!(
            copied = head.position - 1,
            "taking up the migration of this log where it stopped"
        );
        (Vec::new(), head.hash, head.position - 1)
    };
    // Up to the head verified and named in the first event, whatever the old log does since.
    loop {
        let page = page_until(&*old, at, from_head.position).await?;
        if page.is_empty() {
            break;
        }
        for event in page {
            at = event.position();
            let e = event.envelope;
            let copy = new.seal(Envelope {
                position: at + 1,
                event_id: e.event_id,
                schema_version: e.schema_version,
                learner_id: e.learner_id,
                business_date: e.business_date,
                recorded_at: e.recorded_at,
                source: e.source,
                actor: e.actor,
                idempotency_key: e.idempotency_key,
                request_fingerprint: e.request_fingerprint,
                prev_hash: prev,
                event: e.event,
                personal: None,
                stored_schema_version: None,
            })?;
            prev = copy.hash;
            batch.push(copy);
        }
        new.append(&batch).await?;
        progress(at + 1);
        batch.clear();
    }
    if !batch.is_empty() {
        new.append(&batch).await?;
    }
    let to_head = new.head().await?;
    new.publish_checkpoint().await?;

    // The new log, read back through its key store, says what the old one says.
    let reread = crate::registry::open_log(to).await?;
    if to_head.position != from_head.position + 1 {
        return Err(refused(format!(
            "the new log's head is at position {}, not {}: the old log ended early",
            to_head.position,
            from_head.position + 1
        )));
    }
    let mut at = 0;
    loop {
        let page = page_until(&*old, at, from_head.position).await?;
        if page.is_empty() {
            break;
        }
        let copies = reread.read_after(at + 1, page.len()).await?;
        if copies.len() != page.len() {
            return Err(refused(format!(
                "the new log ends at position {}, before the old log's events after {at}",
                at + 1 + copies.len() as u64
            )));
        }
        for (was, copy) in page.iter().zip(&copies) {
            if !same_fact(was, copy) {
                return Err(refused(format!(
                    "the new log's event at position {} is not the old log's event at \
                     position {}: the migration is not faithful",
                    copy.position(),
                    was.position()
                )));
            }
        }
        at = page.last().map_or(at, RecordedEvent::position);
        progress(at);
    }
    let still = old.head().await?;
    reread.close().await;
    new.close().await;
    old.close().await;
    if still != from_head {
        return Err(refused(format!(
            "the old log grew to position {} while it was migrated (up to {}): stop every \
             writer of the old deployment, then run the migration again into an empty log",
            still.position, from_head.position
        )));
    }
    Ok(Migration {
        from_head,
        to_head,
        copied: from_head.position,
    })
}

/// The old log's next page after `at`, up to position `end` (empty at `end`).
async fn page_until(log: &dyn EventLog, at: u64, end: u64) -> Result<Vec<RecordedEvent>, LogError> {
    if at >= end {
        return Ok(Vec::new());
    }
    log.read_after(at, PAGE.min((end - at) as usize)).await
}

/// Whether a copied event records what the old one recorded, one position later.
fn same_fact(was: &RecordedEvent, copy: &RecordedEvent) -> bool {
    let (a, b) = (&was.envelope, &copy.envelope);
    b.position == a.position + 1
        && b.event_id == a.event_id
        && b.learner_id == a.learner_id
        && b.business_date == a.business_date
        && b.recorded_at == a.recorded_at
        && b.source == a.source
        && b.actor == a.actor
        && b.idempotency_key == a.idempotency_key
        && b.request_fingerprint == a.request_fingerprint
        && b.event == a.event
        && b.personal.as_ref().is_none_or(|p| p.readable)
}
