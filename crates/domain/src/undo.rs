//! Taking back changes to the state: the writer applies a batch's events before they are
//! durable, and when their append fails it returns to the last durable state by undoing the
//! batch, in time proportional to the batch rather than to the log.
//!
//! Every map of [`State`](crate::State) is a [`Tracked`] map: it reads as a `HashMap` (through
//! `Deref`), but changes go through its own methods, which record the value each change
//! replaced while a [`Savepoint`] is open. There is no `DerefMut`, so a change the undo record
//! would miss does not compile.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::ops::Deref;

/// A map whose changes can be taken back.
#[derive(Clone, Debug)]
pub(crate) struct Tracked<K, V> {
    map: HashMap<K, V>,
    /// What each change replaced (none: the key was absent), oldest first.
    undo: VecDeque<(K, Option<V>)>,
    /// How many records were released from the front of `undo`: record `n` of the map's life
    /// is `undo[n - released]`.
    released: u64,
    /// Whether changes are recorded (a savepoint is open).
    tracking: bool,
    /// Where the record ended when the latest savepoint was opened: a record past it may stand
    /// for a later change of the same key too.
    floor: u64,
}

impl<K, V> Default for Tracked<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            undo: VecDeque::new(),
            released: 0,
            tracking: false,
            floor: 0,
        }
    }
}

impl<K: Eq + Hash, V: PartialEq> PartialEq for Tracked<K, V> {
    /// Equal when the maps are: what may still be taken back is not the state.
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<K, V> Deref for Tracked<K, V> {
    type Target = HashMap<K, V>;

    fn deref(&self) -> &HashMap<K, V> {
        &self.map
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Tracked<K, V> {
    /// Whether a change of `key` needs a record: recording is on, and the newest record (if it
    /// is about `key` and was made since the latest savepoint) does not already hold an older
    /// value of it, which a rollback would restore anyway. An event touches the same learner
    /// more than once, and a batch often several events of one learner in a row.
    fn needs_record(&self, key: &K) -> bool {
        self.tracking
            && !(self.undo.back().is_some_and(|(last, _)| last == key) && self.mark() > self.floor)
    }

    /// Sets `key` to `value`.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        let prior = if self.needs_record(&key) {
            Some(key.clone())
        } else {
            None
        };
        let replaced = self.map.insert(key, value);
        if let Some(key) = prior {
            self.undo.push_back((key, replaced));
        }
    }

    /// Sets `key` to `value` unless it holds one already.
    pub(crate) fn insert_if_absent(&mut self, key: K, value: V) {
        if !self.map.contains_key(&key) {
            self.insert(key, value);
        }
    }

    /// The value of `key`, to be changed: what it holds now is recorded first.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        if self.needs_record(key) {
            if let Some(value) = self.map.get(key) {
                self.undo.push_back((key.clone(), Some(value.clone())));
            }
        }
        self.map.get_mut(key)
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(removed) = self.map.remove(key) {
            if self.tracking {
                self.undo.push_back((key.clone(), Some(removed)));
            }
        }
    }

    /// Keeps only the entries `keep` says to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let gone: Vec<K> = self
            .map
            .iter()
            .filter(|(k, v)| !keep(k, v))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.remove(&key);
        }
    }

    /// The map itself, for changes that are not facts (values moved out of the state and back,
    /// which leave what it says unchanged) and so are never taken back.
    pub(crate) fn untracked(&mut self) -> &mut HashMap<K, V> {
        &mut self.map
    }
}

/// What a savepoint needs of each tracked map, whatever its types.
pub(crate) trait Undo {
    /// Starts or stops recording changes.
    fn track(&mut self, on: bool);
    /// Where the record ends now.
    fn mark(&self) -> u64;
    /// Forgets the records before `mark` (their changes are kept for good).
    fn release_to(&mut self, mark: u64);
    /// Takes back every change recorded from `mark` on, newest first.
    fn rollback_to(&mut self, mark: u64);
}

impl<K: Eq + Hash, V> Undo for Tracked<K, V> {
    fn track(&mut self, on: bool) {
        self.tracking = on;
        self.floor = self.mark();
        if !on {
            self.released += self.undo.len() as u64;
            self.undo = VecDeque::new();
        }
    }

    fn mark(&self) -> u64 {
        self.released + self.undo.len() as u64
    }

    fn release_to(&mut self, mark: u64) {
        while self.released < mark && self.undo.pop_front().is_some() {
            self.released += 1;
        }
    }

    fn rollback_to(&mut self, mark: u64) {
        while self.mark() > mark {
            let Some((key, prior)) = self.undo.pop_back() else {
                break;
            };
            match prior {
                Some(value) => {
                    self.map.insert(key, value);
                }
                None => {
                    self.map.remove(&key);
                }
            }
        }
        self.floor = self.floor.min(self.mark());
    }
}

/// A point the state can be taken back to: where each map's record ended, and the counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Savepoint {
    pub(crate) marks: Vec<u64>,
    pub(crate) applied: u64,
}
