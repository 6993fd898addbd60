//! The change set coalesces the row changes of a batch per (table, primary key), in event order:
//! what it keeps for a row is what the row must end up as, whatever was there before the batch.

use contingent_projections::{row, Change, ChangeSet, Table, Value};

static T: Table = Table {
    name: "t",
    columns: &["id", "a", "b", "c"],
    key: 1,
    appended: false,
};

static U: Table = Table {
    name: "u",
    columns: &["x", "y", "v"],
    key: 2,
    appended: false,
};

fn only(set: &ChangeSet) -> Change {
    let changes = set.changes();
    assert_eq!(changes.len(), 1, "{changes:?}");
    changes.into_iter().next().expect("one change").2
}

#[test]
fn an_insert_then_updates_is_one_insert_with_the_final_values() {
    let mut set = ChangeSet::new();
    set.insert(&T, row!["k", 1i64, "one", Value::Text(None)]);
    set.update(&T, row!["k"], vec![("a", 2i64.into())]);
    set.update(&T, row!["k"], vec![("c", "see".into()), ("a", 3i64.into())]);
    assert_eq!(
        only(&set),
        Change::Put {
            row: row!["k", 3i64, "one", "see"],
            fresh: true
        }
    );
}

#[test]
fn an_insert_then_a_delete_is_nothing() {
    let mut set = ChangeSet::new();
    set.insert(&T, row!["k", 1i64, "one", "c"]);
    set.update(&T, row!["k"], vec![("a", 2i64.into())]);
    set.delete(&T, row!["k"]);
    assert!(set.is_empty());
    assert!(set.changes().is_empty());
}

#[test]
fn an_update_then_a_delete_is_a_delete() {
    let mut set = ChangeSet::new();
    set.update(&T, row!["k"], vec![("a", 2i64.into())]);
    set.delete(&T, row!["k"]);
    assert_eq!(only(&set), Change::Delete);
}

#[test]
fn a_delete_then_an_insert_replaces_the_row() {
    let mut set = ChangeSet::new();
    set.delete(&T, row!["k"]);
    set.insert(&T, row!["k", 1i64, "one", "c"]);
    // Not fresh: the row may have existed before the batch, so a later delete must be written.
    assert_eq!(
        only(&set),
        Change::Put {
            row: row!["k", 1i64, "one", "c"],
            fresh: false
        }
    );
    set.delete(&T, row!["k"]);
    assert_eq!(only(&set), Change::Delete);
}

#[test]
fn updates_of_a_row_not_inserted_merge_their_columns_last_value_winning() {
    let mut set = ChangeSet::new();
    set.update(&T, row!["k"], vec![("b", "x".into())]);
    set.update(&T, row!["k"], vec![("a", 1i64.into()), ("b", "y".into())]);
    set.update(&T, row!["k"], vec![("c", Value::Text(None))]);
    assert_eq!(
        only(&set),
        Change::Patch {
            set: vec![
                (1, Value::from(1i64)),
                (2, Value::from("y")),
                (3, Value::Text(None))
            ]
        }
    );
}

#[test]
fn an_update_after_a_delete_changes_nothing() {
    let mut set = ChangeSet::new();
    set.delete(&T, row!["k"]);
    set.update(&T, row!["k"], vec![("a", 1i64.into())]);
    assert_eq!(only(&set), Change::Delete);
}

#[test]
fn an_update_then_an_insert_is_the_inserted_row() {
    let mut set = ChangeSet::new();
    set.update(&T, row!["k"], vec![("a", 1i64.into())]);
    set.insert(&T, row!["k", 5i64, "five", "c"]);
    assert_eq!(
        only(&set),
        Change::Put {
            row: row!["k", 5i64, "five", "c"],
            fresh: false
        }
    );
}

#[test]
fn rows_are_told_apart_by_table_and_whole_key() {
    let mut set = ChangeSet::new();
    set.insert(&U, row!["a", "b", 1i64]);
    set.insert(&U, row!["a", "c", 2i64]);
    set.update(&U, row!["a", "b"], vec![("v", 3i64.into())]);
    set.insert(&T, row!["a", 1i64, "x", "y"]);
    set.delete(&U, row!["a", "c"]);
    let changes = set.changes();
    assert_eq!(
        changes,
        vec![
            (
                "t",
                row!["a"],
                Change::Put {
                    row: row!["a", 1i64, "x", "y"],
                    fresh: true
                }
            ),
            (
                "u",
                row!["a", "b"],
                Change::Put {
                    row: row!["a", "b", 3i64],
                    fresh: true
                }
            ),
        ]
    );
}

#[test]
fn rows_keep_the_order_they_were_first_changed_in() {
    let mut set = ChangeSet::new();
    for k in ["c", "a", "b"] {
        set.insert(&T, row![k, 0i64, "", ""]);
    }
    set.update(&T, row!["a"], vec![("a", 1i64.into())]);
    let keys: Vec<Vec<Value>> = set.changes().into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(keys, vec![row!["c"], row!["a"], row!["b"]]);
}

#[test]
fn a_discarding_set_records_nothing() {
    let mut set = ChangeSet::discarding();
    set.insert(&T, row!["k", 1i64, "one", "c"]);
    set.update(&T, row!["j"], vec![("a", 1i64.into())]);
    set.delete(&T, row!["i"]);
    assert!(set.is_empty());
}

#[test]
#[should_panic(expected = "cannot update key column")]
fn a_key_column_cannot_be_updated() {
    let mut set = ChangeSet::new();
    set.update(&T, row!["k"], vec![("id", "j".into())]);
}

#[test]
#[should_panic(expected = "t has no column")]
fn an_unknown_column_is_a_programming_error() {
    let mut set = ChangeSet::new();
    set.update(&T, row!["k"], vec![("nope", 1i64.into())]);
}
