//! Read models built from the event log: the register of learners, diaries, class registers,
//! vacancies and queues, and the federal export, each a set of tables in SQLite (embedded, DDL in
//! `projections/sqlite/`) or PostgreSQL (a regional deployment, DDL in `projections/postgres/`).
//!
//! Each [`Projection`] turns an event into keyed row changes (insert a full row, update some
//! columns, delete — by primary key) from the event and the small in-memory state it keeps, with
//! absolute values only. A [`Projector`] collects the changes of a batch of events into one
//! [`ChangeSet`], which coalesces them per row, and writes them with a few multi-row statements in
//! one transaction that also stores each projection's position, so a crash never loses or doubles
//! an event: on SQLite with prepared statements on the driver directly (`rusqlite`, a connection
//! of its own), on PostgreSQL with `COPY` into staging tables and set-based statements (a small
//! pool of its own). Every read and schema change goes through one `sqlx::AnyPool` on both
//! engines. [`queries`] answers the read side.
//!
//! This crate reads the log through [`contingent_log::EventLog`] and never writes to it; it does
//! not decide anything and knows nothing of HTTP.
#![deny(missing_docs)]

mod changes;
mod class_register;
mod decode;
mod diary;
mod federal;
mod migrate;
mod pg_write;
mod projector;
pub mod queries;
mod register;
mod sqlite_read;
mod sqlite_write;
mod store;
mod vacancies;
mod write;

use contingent_log::RecordedEvent;

pub use changes::{Change, ChangeSet, Table, Value};
pub use decode::{decode_envelope, open_recorded, read_decoded_after};
pub use projector::{Projector, ProjectorError, LIVE_BATCH, REBUILD_BATCH};
pub use store::{dump_tables, Engine, ReadDatabase, ReadStore};
pub use vacancies::due_on;
pub use write::FlushStats;

/// One read model: its tables, and how an event changes their rows.
///
/// A projection may keep in memory what it needs to compute a row change from an event alone (a
/// class's count of places taken, an enrollment's programme for a transfer...). That state is a
/// function of the events applied: the projector rebuilds it on start by replaying the log up to
/// the projection's stored position, and [`clear`](Projection::clear)s it before doing so.
pub trait Projection: Send + Sync + 'static {
    /// Its name, as in `projection_positions` and `contingent rebuild --model`.
    fn name(&self) -> &'static str;
    /// Its tables, for dropping on rebuild and comparing.
    fn tables(&self) -> &'static [&'static str];
    /// Its tables' columns and keys, as its row changes address them (the same tables as
    /// [`tables`](Projection::tables), in the same order).
    fn table_defs(&self) -> &'static [&'static Table];
    /// Records the row changes of one event and updates the in-memory state. Never fails: an
    /// event naming something unknown changes nothing, as an SQL update of a missing row would.
    fn apply(&mut self, event: &RecordedEvent, changes: &mut ChangeSet);
    /// Forgets the in-memory state (before a replay from the first event).
    fn clear(&mut self);
}

/// Every read model of the registry.
pub fn all_projections() -> Vec<Box<dyn Projection>> {
    vec![
        Box::new(register::Register::default()),
        Box::new(diary::Diary::default()),
        Box::new(class_register::ClassRegister::default()),
        Box::new(vacancies::Vacancies::default()),
        Box::new(federal::Federal::default()),
    ]
}

/// Names of every read model.
pub fn projection_names() -> Vec<&'static str> {
    all_projections().iter().map(|p| p.name()).collect()
}

pub(crate) mod sql {
    //! Small conversions shared by the projections.
    use chrono::{Datelike, Days, NaiveDate};

    #[cfg(test)]
    #[test]
    fn dates_are_iso_text() {
        let d = NaiveDate::from_ymd_opt(2026, 9, 1).expect("a date");
        assert_eq!(date(d), "2026-09-01");
        assert_eq!(day_before(d), "2026-08-31");
    }

    /// ISO date text (`NaiveDate`'s `Display`, which is `%Y-%m-%d` for the years of the
    /// registry, without going through a format string).
    pub fn date(d: NaiveDate) -> String {
        d.to_string()
    }

    /// The day before, as ISO text.
    pub fn day_before(d: NaiveDate) -> String {
        date(d.checked_sub_days(Days::new(1)).unwrap_or(d))
    }

    /// The school term (четверть) a date falls in: term-1 September–October, term-2
    /// November–December, term-3 January–March, term-4 April–August.
    pub fn term(d: NaiveDate) -> &'static str {
        match d.month() {
            9 | 10 => "term-1",
            11 | 12 => "term-2",
            1..=3 => "term-3",
            _ => "term-4",
        }
    }
}
