//! Read models built from the event log: the register of learners, diaries, class registers,
//! vacancies and queues, and the federal export, each a set of SQLite tables whose DDL lives in
//! `projections/sqlite/`. A [`Projector`] applies events in batches and stores each projection's
//! position in the same transaction as the rows it changes, so a crash never loses or doubles an
//! event. [`queries`] answers the read side.
//!
//! This crate reads the log through [`contingent_log::EventLog`] and never writes to it; it does
//! not decide anything and knows nothing of HTTP.
#![deny(missing_docs)]

mod class_register;
mod diary;
mod federal;
mod projector;
pub mod queries;
mod register;
mod store;
mod vacancies;

use async_trait::async_trait;
use contingent_log::RecordedEvent;
use sqlx::SqliteConnection;

pub use projector::{Projector, ProjectorError};
pub use store::{dump_tables, ReadStore};

/// One read model: its tables and how an event changes them.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Its name, as in `projection_positions` and `contingent rebuild --model`.
    fn name(&self) -> &'static str;
    /// The DDL of its tables.
    fn schema(&self) -> &'static str;
    /// Its tables, for dropping on rebuild and comparing.
    fn tables(&self) -> &'static [&'static str];
    /// Applies one event inside the projector's transaction.
    async fn apply(
        &self,
        tx: &mut SqliteConnection,
        event: &RecordedEvent,
    ) -> Result<(), sqlx::Error>;
}

/// Every read model of the registry.
pub fn all_projections() -> Vec<Box<dyn Projection>> {
    vec![
        Box::new(register::Register),
        Box::new(diary::Diary),
        Box::new(class_register::ClassRegister),
        Box::new(vacancies::Vacancies),
        Box::new(federal::Federal),
    ]
}

/// Names of every read model.
pub fn projection_names() -> Vec<&'static str> {
    all_projections().iter().map(|p| p.name()).collect()
}

pub(crate) mod sql {
    //! Small conversions shared by the projections.
    use chrono::{Datelike, Days, NaiveDate};

    /// ISO date text.
    pub fn date(d: NaiveDate) -> String {
        d.format("%Y-%m-%d").to_string()
    }

    /// The day before, as ISO text.
    pub fn day_before(d: NaiveDate) -> String {
        date(d.checked_sub_days(Days::new(1)).unwrap_or(d))
    }

    /// The day after, as ISO text.
    pub fn day_after(d: NaiveDate) -> String {
        date(d.checked_add_days(Days::new(1)).unwrap_or(d))
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
