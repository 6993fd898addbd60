//! The read side: typed answers from the read models. Every function takes the read-model pool
//! and returns rows shaped for one audience (parents, teachers, schools, the region, the federal
//! segment). `None` means the thing asked about is not in the read model.

use sqlx::any::AnyRow;
use sqlx::Row;

mod analytics;
mod class_register;
mod diary;
mod federal;
mod register;
mod vacancies;

pub use analytics::{
    exam_results, movements_by_month, pending_applications, reconciliation_counts, ExamResult,
    MonthMovements, PendingApplication, ReadModelCounts,
};
pub use class_register::{
    class_register, AttendanceGridRow, ClassInfo, ClassRegisterView, GridMark, MarksGridRow,
    RosterRow,
};
pub use diary::{
    diary, AttendanceRow, AttendanceSummary, Diary, ExamRow, MarkRow, PeriodMarks, SubjectMarks,
};
pub use federal::{
    federal_counts, federal_register, CountDimension, CountRow, FederalEnrollment, FederalLearner,
};
pub use register::{
    find_learners, learner, organizations, EnrollmentRow, GuardianRow, LearnerCard, LearnerSearch,
    LearnerSummary, MovementRow, OrganizationRow,
};
pub use vacancies::{
    overdue, queue, vacancies, ApplicationRow, QueueView, VacancyFilter, VacancyRow,
};

/// Why a query failed: the read-model database could not answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A query through the store's pool failed, or a row did not decode.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// A read on the SQLite driver directly failed, or a row did not decode.
    #[error("reading the SQLite read store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store is closed.
    #[error("the read store is closed")]
    Closed,
}

type Result<T> = std::result::Result<T, QueryError>;

/// The columns of a row by their place, read strictly: a missing column, a NULL where a value
/// must be or another type is an error, not a default. Rows come from the store's pool or, on
/// SQLite, from the SQLite driver directly (`crate::sqlite_read`), and are read by the same code.
trait Columns {
    /// A column that must hold a text, borrowed from the row.
    fn str(&self, i: usize) -> Result<&str>;
    /// A column that holds a text or NULL.
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    /// A column that must hold an integer.
    fn int(&self, i: usize) -> Result<i64>;
    /// A column that holds an integer or NULL.
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;

    /// A column that must hold a text.
    fn text(&self, i: usize) -> Result<String> {
        self.str(i).map(str::to_owned)
    }

    /// A column that must hold a text `parse` reads as a value (`what` names it in the error).
    fn parsed<T>(&self, i: usize, what: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T> {
        let text = self.str(i)?;
        parse(text).ok_or_else(|| undecodable(i, format!("{text:?} is not {what}")))
    }

    /// A column that holds a text `parse` reads as a value, or NULL.
    fn opt_parsed<T>(
        &self,
        i: usize,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        self.opt_text(i)?
            .map(|text| {
                parse(&text).ok_or_else(|| undecodable(i, format!("{text:?} is not {what}")))
            })
            .transpose()
    }
}

/// A column (by place or by name) whose value is not what the query holds there.
fn undecodable(i: impl std::fmt::Display, why: String) -> QueryError {
    sqlx::Error::ColumnDecode {
        index: i.to_string(),
        source: why.into(),
    }
    .into()
}

impl Columns for AnyRow {
    fn str(&self, i: usize) -> Result<&str> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.try_get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.try_get(i)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn str(&self, i: usize) -> Result<&str> {
        self.get_ref(i)?.as_str().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
                .into()
        })
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get(i)?)
    }
}

/// Runs `sql` with `params` on a reading connection of the SQLite driver, handing each row to
/// `add` as it is stepped to.
pub(super) fn each_on_sqlite(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[&str],
    mut add: impl FnMut(&rusqlite::Row<'_>) -> Result<()>,
) -> Result<()> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(rusqlite::params_from_iter(params))?;
    while let Some(r) = rows.next()? {
        add(r)?;
    }
    Ok(())
}

/// Runs `sql` with `params` on the store's pool, handing each row to `add`.
pub(super) async fn each_on_pool(
    pool: &sqlx::AnyPool,
    sql: &str,
    params: &[&str],
    mut add: impl FnMut(&sqlx::any::AnyRow) -> Result<()>,
) -> Result<()> {
    let mut query = sqlx::query(sql);
    for p in params {
        query = query.bind(*p);
    }
    for r in query.fetch_all(pool).await? {
        add(&r)?;
    }
    Ok(())
}

/// A column that must hold a text: a missing column, a NULL or another type is an error.
fn s(row: &AnyRow, col: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(col)?)
}

/// A column that holds a text or NULL: a missing column or another type is an error.
fn os(row: &AnyRow, col: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

/// A column that must hold a text `parse` reads as a value (`what` names it in the error): a
/// missing column, a NULL, another type or a text that does not parse is an error.
fn ps<T>(row: &AnyRow, col: &str, what: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T> {
    let text = s(row, col)?;
    parse(&text).ok_or_else(|| undecodable(col, format!("{text:?} is not {what}")))
}

/// A column that holds a text `parse` reads as a value, or NULL: a missing column, another type
/// or a text that does not parse is an error.
fn ops<T>(
    row: &AnyRow,
    col: &str,
    what: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>> {
    os(row, col)?
        .map(|text| parse(&text).ok_or_else(|| undecodable(col, format!("{text:?} is not {what}"))))
        .transpose()
}

/// A value written as its `FromStr` reads it: an id (a UUID) or a date (`YYYY-MM-DD`).
fn from_str<T: std::str::FromStr>(text: &str) -> Option<T> {
    text.parse().ok()
}

/// A column that must hold an integer: a missing column, a NULL or another type is an error.
fn n(row: &AnyRow, col: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

/// A column that holds an integer or NULL: a missing column or another type is an error.
fn on(row: &AnyRow, col: &str) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(col)?)
}

#[cfg(test)]
mod tests {
    use sqlx::AnyPool;

    use super::*;

    #[tokio::test]
    async fn a_missing_or_mistyped_column_is_an_error_not_a_default() {
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect("sqlite::memory:").await.expect("a pool");
        let row = sqlx::query("SELECT 'text' AS word, 7 AS number, NULL AS absent")
            .fetch_one(&pool)
            .await
            .expect("a row");
        assert_eq!(s(&row, "word").expect("a text"), "text");
        assert_eq!(n(&row, "number").expect("an integer"), 7);
        assert_eq!(os(&row, "absent").expect("a NULL"), None);
        assert_eq!(on(&row, "absent").expect("a NULL"), None);
        assert!(s(&row, "missing").is_err(), "a missing column");
        assert!(on(&row, "missing").is_err(), "a missing column");
        assert!(n(&row, "word").is_err(), "a text read as an integer");
        assert!(s(&row, "number").is_err(), "an integer read as a text");
        assert!(s(&row, "absent").is_err(), "a NULL where a text must be");
        assert!(
            n(&row, "absent").is_err(),
            "a NULL where an integer must be"
        );
    }
}
