//! The bodies the API answers with: typed structs whose schemas `/openapi.json` publishes.
//! Rows of the read models are the read side's own types (`contingent_projections::queries`).

use chrono::{DateTime, Utc};
use contingent_projections::queries::{
    CountRow, Diary, FederalLearner, LearnerCard, LearnerSummary, OrganizationRow, VacancyRow,
};
use contingent_registry::JournalEntry;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
use utoipa::openapi::Ref;
use utoipa::ToSchema;
use uuid::Uuid;

fn stored_events() -> ArrayBuilder {
    ArrayBuilder::new().items(Ref::from_schema_name("StoredEvent"))
}

fn feed_events() -> ArrayBuilder {
    ArrayBuilder::new().items(
        OneOfBuilder::new()
            .item(Ref::from_schema_name("StoredEvent"))
            .item(Ref::from_schema_name("FederalEvent")),
    )
}

/// `GET /v1/learners`: the learners matching the search.
#[derive(Debug, Serialize, ToSchema)]
pub struct LearnerSearchResult {
    /// Matching learners, at most `limit`.
    pub learners: Vec<LearnerSummary>,
}

/// `GET /v1/learners/{id}/history`: every event about a learner, from the log itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    /// The learner.
    pub learner_id: Uuid,
    /// The events, in log order, as stored, with their hashes.
    #[schema(schema_with = stored_events)]
    pub events: Vec<Value>,
    /// Positions of events whose stored bytes no longer match their hash.
    pub altered_positions: Vec<u64>,
}

/// `GET /v1/learners/{id}/export`: everything the registry holds about a learner.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectAccessExport {
    /// The learner.
    pub learner_id: Uuid,
    /// When the export was made.
    pub generated_at: DateTime<Utc>,
    /// The log's position it was made at: the read models had reached it.
    pub position: u64,
    /// Every event about the learner, in log order, with personal fields opened (or read as
    /// erased), as `/v1/learners/{id}/history` serves them.
    #[schema(schema_with = stored_events)]
    pub history: Vec<Value>,
    /// The learner's register entry.
    pub register: Option<LearnerCard>,
    /// The learner's diary, every academic year.
    pub diary: Option<Diary>,
    /// The access journal's entries about the learner, oldest first (this export's included).
    pub access_journal: Vec<JournalEntry>,
}

/// `GET /v1/learners/{id}/access`: the access journal of a learner.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLog {
    /// The learner.
    pub learner_id: Uuid,
    /// Every read of their personal data by an official and every refused request (with a valid
    /// token) about them, oldest first.
    pub entries: Vec<JournalEntry>,
}

/// `GET /v1/organizations`: the directory.
#[derive(Debug, Serialize, ToSchema)]
pub struct Organizations {
    /// Organizations of the region.
    pub organizations: Vec<OrganizationRow>,
}

/// `GET /v1/vacancies`: places, in total and per class or group.
#[derive(Debug, Serialize, ToSchema)]
pub struct Vacancies {
    /// Places in the classes listed.
    pub capacity: i64,
    /// Learners enrolled in them.
    pub enrolled: i64,
    /// Places free (negative when a class is over capacity).
    pub free: i64,
    /// The classes.
    pub classes: Vec<VacancyRow>,
}

/// `GET /v1/federal/register`: a page of the register in the federal segment's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct FederalRegisterPage {
    /// Learners, by id.
    pub learners: Vec<FederalLearner>,
    /// The id to continue after, when the page is full.
    pub next_after: Option<String>,
    /// The log position the read models had reached.
    pub projected_position: u64,
}

/// `GET /v1/federal/counts`: learners with an active enrollment, grouped.
#[derive(Debug, Serialize, ToSchema)]
pub struct Counts {
    /// One row per group.
    pub counts: Vec<CountRow>,
    /// The log position the read models had reached.
    pub projected_position: u64,
}

/// `GET /v1/feed`: a page of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    /// Events in log order: as stored with their hashes (region, auditor), or their federal
    /// view (federal).
    #[schema(schema_with = feed_events)]
    pub events: Vec<Value>,
    /// The position to continue after.
    pub next_after: u64,
    /// The log's last position.
    pub head: u64,
}

/// Where the chain first does not match.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainBreak {
    /// Position of the offending event.
    pub position: u64,
    /// What does not match.
    pub problem: String,
}

/// Something an audit found, at a position.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditFinding {
    /// The position (the first one, for a run of events).
    pub position: u64,
    /// What kind: `changed`, `removed`, `reordered`, `chain_broken`, `unsigned`,
    /// `bad_signature`, `truncated`, `rewritten`, `learner_index` (damage), `lost_race` (the
    /// records of an honest writer that lost a race on Kafka) or `unfinished_append` (the first
    /// records of an honest writer's append whose writer stopped before the rest arrived): the
    /// last two are not damage.
    pub kind: String,
    /// In words.
    pub problem: String,
}

/// What an audit of the whole log found.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditReport {
    /// Events whose bytes, position, link and signature were checked and found right.
    pub verified: u64,
    /// The last stored position.
    pub head: u64,
    /// Hash of the last stored event: compare it with a published head.
    pub head_hash: String,
    /// The first damage found, if any.
    pub first_break: Option<ChainBreak>,
    /// Everything found, by position.
    pub findings: Vec<AuditFinding>,
    /// Findings left out past the first ones kept.
    pub omitted: u64,
}

/// One run of the background audit.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRun {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; none while it runs.
    pub finished_at: Option<DateTime<Utc>>,
    /// What it found, once it ended.
    pub report: Option<AuditReport>,
    /// Why it could not finish (the log could not be read).
    pub error: Option<String>,
}

/// `GET|POST /v1/audit/verify`: the background audit, at most one run at a time.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditState {
    /// The run under way, if any.
    pub running: Option<AuditRun>,
    /// The last run that ended.
    pub last: Option<AuditRun>,
}

impl From<contingent_registry::VerifyRun> for AuditRun {
    fn from(r: contingent_registry::VerifyRun) -> Self {
        Self {
            started_at: r.started_at,
            finished_at: r.finished_at,
            report: r.report.map(|r| AuditReport {
                verified: r.verified,
                head: r.head,
                head_hash: r.head_hash,
                first_break: r.first_break.map(|b| ChainBreak {
                    position: b.position,
                    problem: b.problem,
                }),
                findings: r
                    .findings
                    .into_iter()
                    .map(|f| AuditFinding {
                        kind: contingent_registry::kind_name(&f),
                        position: f.position,
                        problem: f.problem,
                    })
                    .collect(),
                omitted: r.omitted,
            }),
            error: r.error,
        }
    }
}

impl From<contingent_registry::VerifyJobState> for AuditState {
    fn from(s: contingent_registry::VerifyJobState) -> Self {
        Self {
            running: s.running.map(AuditRun::from),
            last: s.last.map(AuditRun::from),
        }
    }
}

/// A signed statement of the log's head.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointView {
    /// Position of the head.
    pub position: u64,
    /// Hash of the event at that position (64 hex digits).
    pub head_hash: String,
    /// When it was signed.
    pub time: DateTime<Utc>,
    /// The writer key that signed.
    pub key_id: String,
    /// Ed25519 signature (128 hex digits) of `contingent.checkpoint.v1`, the position (8 bytes
    /// big-endian), the head hash, the time in milliseconds (8 bytes big-endian) and the key id.
    pub signature: String,
}

/// `GET /v1/audit/checkpoints`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checkpoints {
    /// The checkpoints, by position.
    pub checkpoints: Vec<CheckpointView>,
}

/// `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `refusing_commands` (with 503) while the writer cannot read the log after a
    /// failed append: reads still work.
    pub status: String,
    /// Why commands are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The log's last position.
    pub log_head: u64,
    /// The position the read models have applied.
    pub projected: u64,
}
