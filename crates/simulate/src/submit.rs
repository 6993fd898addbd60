//! Submitting commands through the registry's normal command path, many in flight at once so
//! that the writer's group commit fills its batches.
//!
//! The submissions of a wave are polled from one task, in the order they were made: each enters
//! the writer's queue in that order, so the log is the same on every run with the same seed, while
//! up to [`IN_FLIGHT`] commands wait for their commit together.

use std::collections::{BTreeMap, VecDeque};
use std::future::{poll_fn, Future};
use std::task::Poll;

use contingent_domain::Command;
use contingent_log::Metadata;
use contingent_registry::{Receipt, Registry, RegistryError};

use crate::{SimError, Stage};

/// Commands waiting for their commit at once.
pub const IN_FLIGHT: usize = 1024;
/// At most this many unexpected outcomes are kept for the report.
const UNEXPECTED_KEPT: usize = 50;

/// A command to submit, and the refusal code it is meant to draw, if it is a deliberate bad one.
pub(crate) struct Item {
    pub command: Command,
    pub meta: Metadata,
    pub expect: Option<&'static str>,
}

struct Outcome {
    command: &'static str,
    expect: Option<&'static str>,
    result: Result<Receipt, RegistryError>,
}

async fn submit_one(registry: &Registry, item: Item) -> Outcome {
    let command = item.command.name();
    let result = registry.submit(item.command, item.meta).await;
    Outcome {
        command,
        expect: item.expect,
        result,
    }
}

/// The running counts.
#[derive(Default)]
pub(crate) struct Tally {
    pub commands: u64,
    pub accepted: u64,
    pub replayed: u64,
    pub events: u64,
    pub refused: BTreeMap<String, u64>,
    pub unexpected: Vec<String>,
}

/// Submits stages, wave by wave, and reports progress.
pub(crate) struct Runner<'r, P> {
    registry: &'r Registry,
    progress: P,
    pub tally: Tally,
    stage: Stage,
    done: u64,
    total: u64,
    reported: u64,
}

impl<'r, P: FnMut(Stage, u64, u64)> Runner<'r, P> {
    pub(crate) fn new(registry: &'r Registry, progress: P) -> Self {
        Self {
            registry,
            progress,
            tally: Tally::default(),
            stage: Stage::Directory,
            done: 0,
            total: 0,
            reported: 0,
        }
    }

    /// Starts a stage of `total` commands.
    pub(crate) fn begin(&mut self, stage: Stage, total: u64) {
        self.stage = stage;
        self.done = 0;
        self.total = total;
        self.reported = 0;
        (self.progress)(stage, 0, total);
    }

    /// Ends the current stage.
    pub(crate) fn end(&mut self) {
        self.total = self.total.max(self.done);
        (self.progress)(self.stage, self.done, self.total);
    }

    /// Submits a whole stage given as waves.
    pub(crate) async fn stage(
        &mut self,
        stage: Stage,
        waves: Vec<Vec<Item>>,
    ) -> Result<(), SimError> {
        self.begin(stage, waves.iter().map(|w| w.len() as u64).sum());
        for wave in waves {
            self.wave(wave.into_iter()).await?;
        }
        self.end();
        Ok(())
    }

    /// Submits independent commands, many in flight, and returns when every one is answered.
    pub(crate) async fn wave(&mut self, items: impl Iterator<Item = Item>) -> Result<(), SimError> {
        let registry = self.registry;
        let mut items = items.fuse();
        let mut in_flight = VecDeque::with_capacity(IN_FLIGHT);
        loop {
            while in_flight.len() < IN_FLIGHT {
                match items.next() {
                    Some(item) => in_flight.push_back(Box::pin(submit_one(registry, item))),
                    None => break,
                }
            }
            if in_flight.is_empty() {
                return Ok(());
            }
            // Poll in submission order: a new submission's first poll puts it in the writer's
            // queue, after every one made before it.
            let finished = poll_fn(|cx| {
                let mut finished = Vec::new();
                in_flight.retain_mut(|f| match f.as_mut().poll(cx) {
                    Poll::Ready(outcome) => {
                        finished.push(outcome);
                        false
                    }
                    Poll::Pending => true,
                });
                if finished.is_empty() {
                    Poll::Pending
                } else {
                    Poll::Ready(finished)
                }
            })
            .await;
            for outcome in finished {
                self.account(outcome)?;
            }
            if self.done - self.reported >= 500 {
                self.reported = self.done;
                (self.progress)(self.stage, self.done, self.total.max(self.done));
            }
        }
    }

    fn note(&mut self, message: String) {
        tracing::warn!(stage = self.stage.label(), "{message}");
        if self.tally.unexpected.len() < UNEXPECTED_KEPT {
            self.tally.unexpected.push(message);
        }
    }

    fn account(&mut self, outcome: Outcome) -> Result<(), SimError> {
        self.tally.commands += 1;
        self.done += 1;
        match outcome.result {
            Ok(receipt) => {
                self.tally.accepted += 1;
                self.tally.events += receipt.events.len() as u64;
                if receipt.replayed {
                    self.tally.replayed += 1;
                }
                if let Some(code) = outcome.expect {
                    self.note(format!(
                        "{}: expected a refusal ({code}), but it was accepted",
                        outcome.command
                    ));
                }
            }
            Err(RegistryError::Refused(error)) => {
                let code = error.code();
                *self.tally.refused.entry(code.to_owned()).or_default() += 1;
                if outcome.expect != Some(code) {
                    self.note(format!("{} refused ({code}): {error}", outcome.command));
                }
            }
            Err(error @ RegistryError::IdempotencyKeyReused { .. }) => {
                *self
                    .tally
                    .refused
                    .entry("idempotency_key_reused".to_owned())
                    .or_default() += 1;
                self.note(format!("{}: {error}", outcome.command));
            }
            Err(RegistryError::Forbidden(message)) => {
                *self
                    .tally
                    .refused
                    .entry("forbidden".to_owned())
                    .or_default() += 1;
                self.note(format!("{} forbidden: {message}", outcome.command));
            }
            Err(RegistryError::Unavailable(message)) => return Err(SimError::Unavailable(message)),
        }
        Ok(())
    }
}
