//! Keyed row changes and the change set that coalesces them per batch.
//!
//! A projection turns an event into changes of whole rows addressed by primary key: an insert of
//! a full row, an update of some columns, a delete. Values are absolute (a count is written as the
//! count after the event, never as an increment), so the changes of a batch can be coalesced per
//! `(table, primary key)` in event order and written, a table and a kind of change at a time,
//! by the store's writer ([`crate::write`]) without changing the result.

use foldhash::HashMap;
use std::hash::{Hash, Hasher};

/// A read-model table as the projections write it: its columns in DDL order, the first `key` of
/// which are its primary key.
#[derive(Debug)]
pub struct Table {
    /// Table name.
    pub name: &'static str,
    /// Every column, in the order of the DDL (and of the rows given to [`ChangeSet::insert`]).
    pub columns: &'static [&'static str],
    /// How many leading columns form the primary key.
    pub key: usize,
    /// Rows are only ever inserted, each keyed by the position of the event that inserts it:
    /// a batch's inserted rows cannot be in the table yet (its earlier events' rows all have
    /// lower positions), so a writer may load them without looking for a conflict. A row that
    /// is there after all makes the batch fail (PostgreSQL's key refuses it), not change.
    pub appended: bool,
}

impl Table {
    /// `ON CONFLICT (key) DO UPDATE SET c = excluded.c, …` (`DO NOTHING` for a table of keys
    /// only): what makes an insert of a full row an upsert, on both engines.
    pub(crate) fn on_conflict(&self) -> String {
        let key = self.columns[..self.key].join(", ");
        let update: Vec<String> = self.columns[self.key..]
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        if update.is_empty() {
            format!("ON CONFLICT ({key}) DO NOTHING")
        } else {
            format!("ON CONFLICT ({key}) DO UPDATE SET {}", update.join(", "))
        }
    }

    /// The index of a column; panics on a column the table does not have (a programming error
    /// the tests catch).
    pub fn column(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("{} has no column {name}", self.name))
    }
}

/// One column value. The type travels with NULL too, so PostgreSQL is told the parameter's type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// An INTEGER (SQLite) / BIGINT (PostgreSQL) value; booleans are 0 or 1.
    Int(Option<i64>),
    /// A TEXT value.
    Text(Option<String>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_owned()))
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.clone()))
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}

/// Builds a row (or a key) of [`Value`]s from anything convertible into one.
#[macro_export]
macro_rules! row {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::Value::from($v)),*]
    };
}

/// The net change of one row after the changes of a batch, in the order they were made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The full row, written with an upsert. `fresh` when the batch inserted it (it did not exist
    /// before), so that a later delete in the same batch cancels it.
    Put {
        /// Every column, in table order.
        row: Vec<Value>,
        /// Inserted by this batch.
        fresh: bool,
    },
    /// Some columns of a row that may or may not exist: `(column index, value)`, by column index.
    Patch {
        /// The columns set.
        set: Vec<(usize, Value)>,
    },
    /// The row is deleted.
    Delete,
}

/// A row of a table, by primary key.
#[derive(Clone, Debug)]
struct RowKey {
    table: &'static Table,
    key: Vec<Value>,
}

impl PartialEq for RowKey {
    fn eq(&self, other: &Self) -> bool {
        self.table.name == other.table.name && self.key == other.key
    }
}

impl Eq for RowKey {}

impl Hash for RowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.table.name.hash(state);
        self.key.hash(state);
    }
}

/// A table and the net change of each of its rows that changed: `(primary key, change)`.
pub(crate) type TableChanges = (&'static Table, Vec<(Vec<Value>, Change)>);

/// The coalesced changes of a batch: at most one [`Change`] per `(table, primary key)`.
#[derive(Debug, Default)]
pub struct ChangeSet {
    rows: HashMap<RowKey, (u64, Change)>,
    seq: u64,
    discard: bool,
}

impl ChangeSet {
    /// An empty change set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A change set that records nothing: for replaying the log into the projections' in-memory
    /// state without writing.
    pub fn discarding() -> Self {
        Self {
            discard: true,
            ..Self::default()
        }
    }

    /// How many rows change.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row changes.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn key_of(table: &'static Table, key: Vec<Value>) -> RowKey {
        assert_eq!(key.len(), table.key, "key of {}", table.name);
        RowKey { table, key }
    }

    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Inserts a new row (every column, in table order). Written as an upsert, so a row already
    /// there is replaced.
    pub fn insert(&mut self, table: &'static Table, row: Vec<Value>) {
        if self.discard {
            return;
        }
        assert_eq!(row.len(), table.columns.len(), "row of {}", table.name);
        let key = Self::key_of(table, row[..table.key].to_vec());
        let seq = self.next();
        match self.rows.get_mut(&key) {
            None => {
                self.rows
                    .insert(key, (seq, Change::Put { row, fresh: true }));
            }
            Some((_, change)) => {
                let fresh = matches!(change, Change::Put { fresh: true, .. });
                *change = Change::Put { row, fresh };
            }
        }
    }

    /// Sets some columns of the row with this primary key, if there is one.
    pub fn update(&mut self, table: &'static Table, key: Vec<Value>, set: Vec<(&str, Value)>) {
        if self.discard {
            return;
        }
        let key = Self::key_of(table, key);
        let mut set: Vec<(usize, Value)> = set
            .into_iter()
            .map(|(name, v)| {
                let i = table.column(name);
                assert!(
                    i >= table.key,
                    "{}: cannot update key column {name}",
                    table.name
                );
                (i, v)
            })
            .collect();
        set.sort_by_key(|(i, _)| *i);
        let seq = self.next();
        match self.rows.get_mut(&key) {
            None => {
                self.rows.insert(key, (seq, Change::Patch { set }));
            }
            Some((_, Change::Put { row, .. })) => {
                for (i, v) in set {
                    row[i] = v;
                }
            }
            Some((_, Change::Patch { set: before })) => {
                for (i, v) in set {
                    match before.iter_mut().find(|(j, _)| *j == i) {
                        Some(slot) => slot.1 = v,
                        None => before.push((i, v)),
                    }
                }
                before.sort_by_key(|(i, _)| *i);
            }
            // An update of a deleted row changes nothing.
            Some((_, Change::Delete)) => {}
        }
    }

    /// Deletes the row with this primary key, if there is one.
    pub fn delete(&mut self, table: &'static Table, key: Vec<Value>) {
        if self.discard {
            return;
        }
        let key = Self::key_of(table, key);
        let seq = self.next();
        match self.rows.get_mut(&key) {
            Some((_, Change::Put { fresh: true, .. })) => {
                // Inserted and deleted in the same batch: nothing to write.
                self.rows.remove(&key);
            }
            Some((_, change)) => *change = Change::Delete,
            None => {
                self.rows.insert(key, (seq, Change::Delete));
            }
        }
    }

    /// The net changes by table name, each table's rows in the order they were first changed:
    /// `(table, primary key, change)`.
    pub fn changes(&self) -> Vec<(&'static str, Vec<Value>, Change)> {
        self.ordered()
            .into_iter()
            .map(|(k, c)| (k.table.name, k.key.clone(), c.clone()))
            .collect()
    }

    fn ordered(&self) -> Vec<(&RowKey, &Change)> {
        let mut all: Vec<(&RowKey, &(u64, Change))> = self.rows.iter().collect();
        all.sort_by(|a, b| a.0.table.name.cmp(b.0.table.name).then(a.1 .0.cmp(&b.1 .0)));
        all.into_iter().map(|(k, (_, c))| (k, c)).collect()
    }

    /// Takes the changes out, grouped by table (tables by name, rows in first-change order).
    pub(crate) fn into_tables(self) -> Vec<TableChanges> {
        let mut all: Vec<(RowKey, (u64, Change))> = self.rows.into_iter().collect();
        all.sort_by(|a, b| a.0.table.name.cmp(b.0.table.name).then(a.1 .0.cmp(&b.1 .0)));
        let mut out: Vec<TableChanges> = Vec::new();
        for (key, (_, change)) in all {
            match out.last_mut() {
                Some((t, rows)) if t.name == key.table.name => rows.push((key.key, change)),
                _ => out.push((key.table, vec![(key.key, change)])),
            }
        }
        out
    }
}
