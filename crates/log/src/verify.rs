//! Walking the hash chain.

use crate::envelope::{Envelope, Hash, RecordedEvent, GENESIS_HASH};

/// The first place where the stored log does not match its chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    /// Position of the offending event (as stored, or as expected where the position is wrong).
    pub position: u64,
    /// What does not match.
    pub problem: String,
}

/// Checks events in log order, continuing from a known position and hash.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_position: u64,
    prev_hash: Hash,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_position: 1,
            prev_hash: GENESIS_HASH,
        }
    }
}

impl ChainVerifier {
    /// A verifier for a log from its first event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events checked so far.
    pub fn checked(&self) -> u64 {
        self.expected_position - 1
    }

    /// The hash of the last event checked.
    pub fn head(&self) -> Hash {
        self.prev_hash
    }

    /// Checks the next stored event, given as its raw bytes and stored hash.
    pub fn check(
        &mut self,
        position: u64,
        body: &[u8],
        stored_hash: Hash,
    ) -> Result<(), ChainBreak> {
        let here = self.expected_position;
        if position != here {
            return Err(ChainBreak {
                position: here,
                problem: format!("expected position {here}, found {position}"),
            });
        }
        if Hash::of(body) != stored_hash {
            return Err(ChainBreak {
                position,
                problem: "the stored bytes do not match the stored hash: the event was altered"
                    .into(),
            });
        }
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| ChainBreak {
            position,
            problem: format!("the stored bytes are not a valid event: {e}"),
        })?;
        if envelope.position != position {
            return Err(ChainBreak {
                position,
                problem: format!(
                    "the event says position {}, stored at {position}",
                    envelope.position
                ),
            });
        }
        if envelope.prev_hash != self.prev_hash {
            return Err(ChainBreak {
                position,
                problem: format!(
                    "prev_hash {} does not match the previous event's hash {}",
                    envelope.prev_hash, self.prev_hash
                ),
            });
        }
        self.prev_hash = stored_hash;
        self.expected_position += 1;
        Ok(())
    }

    /// Checks a stored event as read back raw.
    pub fn check_raw(&mut self, raw: &crate::RawEvent) -> Result<(), ChainBreak> {
        let hash: [u8; 32] = raw.hash.as_slice().try_into().map_err(|_| ChainBreak {
            position: raw.position,
            problem: "the stored hash is not 32 bytes".into(),
        })?;
        self.check(raw.position, &raw.body, Hash(hash))
    }

    /// Checks a recorded event.
    pub fn check_recorded(&mut self, event: &RecordedEvent) -> Result<(), ChainBreak> {
        self.check(event.position(), &event.body, event.hash)
    }
}

/// Verifies a whole sequence from the first event; the first break, if any.
pub fn verify_chain<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<u64, ChainBreak> {
    let mut verifier = ChainVerifier::new();
    for event in events {
        verifier.check_recorded(event)?;
    }
    Ok(verifier.checked())
}

/// What kind of damage a finding names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The stored bytes do not match the stored hash, or are not an event.
    Changed,
    /// Positions are missing from the log.
    Removed,
    /// An event is stored at another position than the one it was written at.
    Reordered,
    /// An event's `prev_hash` is not the previous event's hash: something before it was
    /// removed, replaced or moved.
    ChainBroken,
    /// Events no registered writer signed.
    Unsigned,
    /// A signature or checkpoint that does not verify, or does not match the stored events.
    BadSignature,
    /// The log ends before a position a signature or a checkpoint vouches for.
    Truncated,
    /// The event at a checkpoint's position has another hash than the checkpoint says.
    Rewritten,
    /// The learner index (or the learner column) does not match the events' own learner ids.
    LearnerIndex,
    /// Records of an honest writer that lost a race for positions: validly signed, complete,
    /// and not part of the log. Not damage.
    LostRace,
    /// The first records of an honest writer's append whose last records never arrived (the
    /// writer stopped while they were on their way): its first record's signature holds, and
    /// they are built on the log and not part of it. Not damage.
    UnfinishedAppend,
}

impl FindingKind {
    /// Whether the finding is damage (everything but a lost race or an unfinished append).
    pub fn is_damage(self) -> bool {
        !matches!(self, FindingKind::LostRace | FindingKind::UnfinishedAppend)
    }
}

/// Something an audit found, at a position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    /// The position (the first one, for a run of events).
    pub position: u64,
    /// What kind of damage.
    pub kind: FindingKind,
    /// In words.
    pub problem: String,
}

impl Finding {
    /// A finding.
    pub fn new(position: u64, kind: FindingKind, problem: impl Into<String>) -> Self {
        Self {
            position,
            kind,
            problem: problem.into(),
        }
    }
}

/// The most findings an audit keeps; it still counts the rest.
pub const MAX_FINDINGS: usize = 1000;

/// A complete audit of stored events, in stored order: every event's hash, position and link,
/// every event's signature (each must lie in exactly one batch signed by a registered writer),
/// and the head against checkpoints. Unlike [`ChainVerifier`] it does not stop at the first
/// break: it resynchronizes on the stored hash and goes on, so that every damaged place is named.
#[derive(Debug)]
pub struct Auditor {
    keys: crate::sign::WriterKeys,
    next: u64,
    prev_hash: Hash,
    prev_damaged: bool,
    signatures: std::collections::VecDeque<crate::sign::BatchSignature>,
    open_batch: Option<(crate::sign::BatchSignature, Option<String>)>,
    open_count: u64,
    unsigned_from: Option<u64>,
    checkpoints: std::collections::BTreeMap<u64, Vec<(crate::sign::Checkpoint, String)>>,
    verified: u64,
    findings: Vec<Finding>,
    omitted: u64,
}

impl Auditor {
    /// An audit from the first event, trusting `keys`.
    pub fn new(keys: crate::sign::WriterKeys) -> Self {
        Self {
            keys,
            next: 1,
            prev_hash: GENESIS_HASH,
            prev_damaged: false,
            signatures: Default::default(),
            open_batch: None,
            open_count: 0,
            unsigned_from: None,
            checkpoints: Default::default(),
            verified: 0,
            findings: Vec::new(),
            omitted: 0,
        }
    }

    /// Records a finding found elsewhere (an index check, a Kafka record).
    pub fn report(&mut self, finding: Finding) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(finding);
        } else {
            self.omitted += 1;
        }
    }

    /// The position after which the next event is expected.
    pub fn checked(&self) -> u64 {
        self.next - 1
    }

    /// Queues batch signatures, in order of position.
    pub fn signatures(&mut self, batch: impl IntoIterator<Item = crate::sign::BatchSignature>) {
        self.signatures.extend(batch);
    }

    /// Adds checkpoints to hold the log against; `source` says where they come from. A
    /// checkpoint whose signature does not verify is reported and not used.
    pub fn checkpoints(
        &mut self,
        checkpoints: impl IntoIterator<Item = crate::sign::Checkpoint>,
        source: &str,
    ) {
        for c in checkpoints {
            if let Err(problem) = self.keys.check_checkpoint(&c) {
                self.report(Finding::new(
                    c.position,
                    FindingKind::BadSignature,
                    format!(
                        "a checkpoint ({source}) at position {}: {problem}",
                        c.position
                    ),
                ));
                continue;
            }
            self.checkpoints
                .entry(c.position)
                .or_default()
                .push((c, source.to_owned()));
        }
    }

    /// Checks the next stored event.
    pub fn event(&mut self, raw: &crate::RawEvent) {
        let position = raw.position;
        if position < self.next {
            self.report(Finding::new(
                position,
                FindingKind::Reordered,
                format!(
                    "position {position} is stored again after position {}",
                    self.next - 1
                ),
            ));
            return;
        }
        if position > self.next {
            let missing = if position - 1 == self.next {
                format!("position {} is missing", self.next)
            } else {
                format!("positions {}–{} are missing", self.next, position - 1)
            };
            self.report(Finding::new(self.next, FindingKind::Removed, missing));
            self.unsigned_end();
            self.prev_damaged = true;
            self.next = position;
        }
        let stored: Option<Hash> = raw.hash.as_slice().try_into().ok().map(Hash);
        let actual = Hash::of(&raw.body);
        let mut damaged = false;
        if stored != Some(actual) {
            self.report(Finding::new(
                position,
                FindingKind::Changed,
                "the stored bytes do not match the stored hash: the event was changed",
            ));
            damaged = true;
        } else {
            match Envelope::decode(&raw.body) {
                Err(e) => {
                    self.report(Finding::new(
                        position,
                        FindingKind::Changed,
                        format!("the stored bytes are not a valid event: {e}"),
                    ));
                    damaged = true;
                }
                Ok(envelope) if envelope.position != position => {
                    self.report(Finding::new(
                        position,
                        FindingKind::Reordered,
                        format!(
                            "the event stored at position {position} was written at position {}",
                            envelope.position
                        ),
                    ));
                    damaged = true;
                }
                Ok(envelope) if envelope.prev_hash != self.prev_hash => {
                    if !self.prev_damaged {
                        self.report(Finding::new(
                            position,
                            FindingKind::ChainBroken,
                            format!(
                                "prev_hash {} is not the previous event's hash {}: an event \
                                 before it was removed, replaced or moved",
                                envelope.prev_hash, self.prev_hash
                            ),
                        ));
                    }
                    damaged = true;
                }
                Ok(_) => {}
            }
        }
        let hash = stored.unwrap_or(actual);
        self.signed(position, hash, !damaged);
        if let Some(checkpoints) = self.checkpoints.remove(&position) {
            for (c, source) in checkpoints {
                if c.head_hash != hash {
                    self.report(Finding::new(
                        position,
                        FindingKind::Rewritten,
                        format!(
                            "a checkpoint ({source}) signed at {} by key {} says position \
                             {position} has hash {}; the log has {hash}: the history from \
                             there on was rewritten",
                            c.time, c.key_id, c.head_hash
                        ),
                    ));
                }
            }
        }
        self.prev_hash = hash;
        self.prev_damaged = damaged;
        self.next = position + 1;
    }

    /// Places the event at `position` with `hash` in its signed batch, counting it verified
    /// (if `good`) once the whole batch is found validly signed; reports runs of unsigned events
    /// and bad signatures.
    fn signed(&mut self, position: u64, hash: Hash, good: bool) {
        if self.open_batch.is_none() {
            while let Some(s) = self.signatures.front() {
                if s.first_position >= position {
                    break;
                }
                let s = self.signatures.pop_front().expect("front");
                self.report(Finding::new(
                    s.first_position,
                    FindingKind::BadSignature,
                    format!(
                        "a signature by key {} for positions {}–{} matches no stored batch",
                        s.key_id, s.first_position, s.last_position
                    ),
                ));
            }
            if self
                .signatures
                .front()
                .is_some_and(|s| s.first_position == position)
            {
                let s = self.signatures.pop_front().expect("front");
                let mut problem = self.keys.check_batch(&s).err();
                if problem.is_none() && s.prev_hash != self.prev_hash {
                    problem = Some(format!(
                        "it was made over the previous hash {}, and the log has {}",
                        s.prev_hash, self.prev_hash
                    ));
                }
                self.unsigned_end();
                self.open_batch = Some((s, problem));
                self.open_count = 0;
            }
        }
        let Some((batch, _)) = &self.open_batch else {
            self.unsigned_from.get_or_insert(position);
            return;
        };
        self.open_count += u64::from(good);
        if batch.last_position != position {
            return;
        }
        let (batch, mut problem) = self.open_batch.take().expect("open");
        if problem.is_none() && batch.last_hash != hash {
            problem = Some(format!(
                "it was made over the last hash {}, and the log has {hash}",
                batch.last_hash
            ));
        }
        match problem {
            None => self.verified += self.open_count,
            Some(problem) => {
                self.report(Finding::new(
                    batch.first_position,
                    FindingKind::BadSignature,
                    format!(
                        "the signature of positions {}–{} by key {} does not hold: {problem}",
                        batch.first_position, batch.last_position, batch.key_id
                    ),
                ));
            }
        }
    }

    fn unsigned_end(&mut self) {
        if let Some(from) = self.unsigned_from.take() {
            let to = self.next - 1;
            let what = if from == to {
                format!("the event at position {from} is")
            } else {
                format!("the events at positions {from}–{to} are")
            };
            self.report(Finding::new(
                from,
                FindingKind::Unsigned,
                format!("{what} not signed by a registered writer"),
            ));
        }
    }

    /// Ends the audit at the stored head: what a signature or checkpoint vouches for beyond it
    /// is reported as truncated. Returns the events found right, the head hash, and the findings
    /// in order of position (plus how many were left out past [`MAX_FINDINGS`]).
    pub fn finish(mut self) -> AuditOutcome {
        let head = self.next - 1;
        self.unsigned_end();
        if let Some((batch, _)) = self.open_batch.take() {
            self.report(Finding::new(
                head + 1,
                FindingKind::Truncated,
                format!(
                    "the log ends at position {head}, inside the batch {}–{} signed by key {}",
                    batch.first_position, batch.last_position, batch.key_id
                ),
            ));
        }
        if let Some(s) = self.signatures.pop_back() {
            self.report(Finding::new(
                head + 1,
                FindingKind::Truncated,
                format!(
                    "the log ends at position {head}, and key {} signed a batch through \
                     position {}",
                    s.key_id, s.last_position
                ),
            ));
        }
        if let Some((&position, list)) = self.checkpoints.iter().next_back() {
            let (c, source) = &list[0];
            self.report(Finding::new(
                head + 1,
                FindingKind::Truncated,
                format!(
                    "the log ends at position {head}, and a checkpoint ({source}) signed at {} \
                     by key {} says the log reached position {position} with hash {}",
                    c.time, c.key_id, c.head_hash
                ),
            ));
        }
        let mut findings = self.findings;
        findings.sort_by_key(|f| f.position);
        AuditOutcome {
            verified: self.verified,
            head,
            head_hash: self.prev_hash,
            findings,
            omitted: self.omitted,
        }
    }
}

/// What an [`Auditor`] concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOutcome {
    /// Events whose bytes, position, link and signature were found right.
    pub verified: u64,
    /// The last stored position.
    pub head: u64,
    /// Its hash.
    pub head_hash: Hash,
    /// What was found, by position.
    pub findings: Vec<Finding>,
    /// Findings left out past [`MAX_FINDINGS`].
    pub omitted: u64,
}

/// Records a store holds that are not part of the log (on Kafka: records the agreed-history
/// rule did not accept), grouped as the appends they claim to belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayAppend {
    /// Where the first record is stored (the Kafka offset).
    pub offset: u64,
    /// The position its first record claims.
    pub first_position: u64,
    /// The position its last record claims.
    pub last_position: u64,
    /// The `prev_hash` of its first record.
    pub prev_hash: Hash,
    /// The hash of its last record.
    pub last_hash: Hash,
    /// Whether it is a whole append (from the position after the log's event it chains to, up
    /// to its `append_last`, every record chained to the one before) built on an event of the
    /// log.
    pub complete: bool,
    /// The writer key id and signature its last record carries.
    pub signature: Option<(String, String)>,
    /// The writer key id, signature and the last hash it covers that its first record carries
    /// (an append of several records signs its first record too).
    pub first_signature: Option<(String, String, Hash)>,
    /// The position of the last event of the append its records claim (`append_last`).
    pub append_last: u64,
    /// Whether its first record's `prev_hash` is the log's hash at the position before it.
    pub built_on_log: bool,
    /// Why its records could never be part of any log (bytes that do not match their hash
    /// header, headers missing), if so.
    pub malformed: Option<String>,
}

impl Auditor {
    /// Judges records the store holds outside the log: an honest writer's append that lost a
    /// race is complete, built on the log, and validly signed by a registered writer, and is
    /// reported as [`FindingKind::LostRace`] (not damage); anything else is tampering.
    pub fn stray(&mut self, s: &StrayAppend) {
        let at = format!(
            "records from offset {} claiming positions {}–{}",
            s.offset, s.first_position, s.last_position
        );
        if let Some(problem) = &s.malformed {
            self.report(Finding::new(
                s.first_position,
                FindingKind::Changed,
                format!("{at} are not part of the log: {problem}"),
            ));
            return;
        }
        let signed = s.signature.as_ref().map(|(key_id, signature)| {
            let batch = crate::sign::BatchSignature {
                first_position: s.first_position,
                last_position: s.last_position,
                prev_hash: s.prev_hash,
                last_hash: s.last_hash,
                key_id: key_id.clone(),
                signature: signature.clone(),
            };
            self.keys.check_batch(&batch)
        });
        match signed {
            Some(Ok(())) if s.complete => self.report(Finding::new(
                s.first_position,
                FindingKind::LostRace,
                format!(
                    "{at}: a complete append signed by writer key {}, built on the log, that lost \
                     the race for positions already taken; not part of the log, not damage",
                    s.signature.as_ref().map_or("", |(k, _)| k.as_str())
                ),
            )),
            Some(Ok(())) => self.report(Finding::new(
                s.first_position,
                FindingKind::ChainBroken,
                format!(
                    "{at}: signed by a registered writer, but not a whole append built on the \
                     log: records were copied or reordered"
                ),
            )),
            Some(Err(problem)) => self.report(Finding::new(
                s.first_position,
                FindingKind::BadSignature,
                format!(
                    "{at} are not part of the log, and their signature does not hold: {problem}"
                ),
            )),
            None => self.unfinished(s, &at),
        }
    }

    /// Records without the signature of a last record: the beginning of an append whose writer
    /// stopped before the rest arrived, when its first record's signature holds, it is built on
    /// the log and it stops short of the position the signature names; else unsigned.
    fn unfinished(&mut self, s: &StrayAppend, at: &str) {
        let signed = s
            .first_signature
            .as_ref()
            .map(|(key_id, signature, last_hash)| {
                let batch = crate::sign::BatchSignature {
                    first_position: s.first_position,
                    last_position: s.append_last,
                    prev_hash: s.prev_hash,
                    last_hash: *last_hash,
                    key_id: key_id.clone(),
                    signature: signature.clone(),
                };
                (key_id.clone(), self.keys.check_batch(&batch))
            });
        match signed {
            Some((key_id, Ok(()))) if s.built_on_log && s.last_position < s.append_last => self
                .report(Finding::new(
                    s.first_position,
                    FindingKind::UnfinishedAppend,
                    format!(
                        "{at}: the beginning of an append of positions {}–{} signed by writer \
                         key {key_id}, built on the log, whose last records never arrived (its \
                         writer stopped while they were on their way); not part of the log, not \
                         damage",
                        s.first_position, s.append_last
                    ),
                )),
            Some((_, Err(problem))) => self.report(Finding::new(
                s.first_position,
                FindingKind::BadSignature,
                format!(
                    "{at} are not part of the log, and their signature does not hold: {problem}"
                ),
            )),
            _ => self.report(Finding::new(
                s.first_position,
                FindingKind::Unsigned,
                format!("{at} are not part of the log and no registered writer signed them"),
            )),
        }
    }
}

/// Audits a whole log from its first event (see [`Auditor`]): every stored event, every batch
/// signature, the log's own checkpoints and `against` (checkpoints an auditor kept), the records
/// the store holds outside the log ([`crate::EventLog::stray_appends`]) and the backend's
/// indexes ([`crate::EventLog::check_indexes`]). `progress` hears the position reached.
pub async fn audit(
    log: &dyn crate::EventLog,
    keys: &crate::sign::WriterKeys,
    against: &[crate::sign::Checkpoint],
    mut progress: impl FnMut(u64),
) -> Result<AuditOutcome, crate::LogError> {
    let mut auditor = Auditor::new(keys.clone());
    auditor.checkpoints(log.checkpoints().await?, "stored in the log");
    auditor.checkpoints(against.iter().cloned(), "kept by the auditor");
    let (mut more_signatures, mut signed_through) = (true, 0);
    loop {
        let batch = log.read_raw_after(auditor.checked(), 10_000).await?;
        let Some(last) = batch.last() else {
            break;
        };
        while more_signatures && signed_through < last.position {
            let signatures = log.read_signatures_after(signed_through, 10_000).await?;
            more_signatures = !signatures.is_empty();
            signed_through = signatures
                .last()
                .map_or(signed_through, |s| s.last_position);
            auditor.signatures(signatures);
        }
        for raw in &batch {
            auditor.event(raw);
        }
        progress(auditor.checked());
    }
    while more_signatures {
        let signatures = log.read_signatures_after(signed_through, 10_000).await?;
        more_signatures = !signatures.is_empty();
        signed_through = signatures
            .last()
            .map_or(signed_through, |s| s.last_position);
        auditor.signatures(signatures);
    }
    for stray in log.stray_appends().await? {
        auditor.stray(&stray);
    }
    for finding in log.check_indexes().await? {
        auditor.report(finding);
    }
    Ok(auditor.finish())
}
