//! `/openapi.json`: the OpenAPI 3.1 description of every endpoint. Command bodies are the JSON
//! Schemas of `events-schema/commands/`, event payloads those of `events-schema/events/`, and
//! query answers are generated from the read side's types, so the document cannot drift from
//! what the code accepts and returns.

use axum::response::{IntoResponse, Response};
use axum::Json;
use contingent_projections::queries::{
    ApplicationRow, AttendanceGridRow, AttendanceRow, AttendanceSummary, ClassInfo,
    ClassRegisterView, CountRow, Diary, EnrollmentRow, ExamRow, FederalEnrollment, FederalLearner,
    GridMark, GuardianRow, LearnerCard, LearnerSummary, MarkRow, MarksGridRow, MovementRow,
    OrganizationRow, PeriodMarks, QueueView, RosterRow, SubjectMarks, VacancyRow,
};
use serde_json::{json, Map, Value};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(components(schemas(
    LearnerCard,
    EnrollmentRow,
    MovementRow,
    GuardianRow,
    LearnerSummary,
    Diary,
    SubjectMarks,
    PeriodMarks,
    MarkRow,
    AttendanceSummary,
    AttendanceRow,
    ExamRow,
    ClassInfo,
    ClassRegisterView,
    RosterRow,
    MarksGridRow,
    GridMark,
    AttendanceGridRow,
    VacancyRow,
    QueueView,
    ApplicationRow,
    OrganizationRow,
    FederalLearner,
    FederalEnrollment,
    CountRow
)))]
struct ReadSchemas;

macro_rules! schema_files {
    ($dir:literal, $suffix:literal, [$($name:literal),+ $(,)?]) => {
        &[$(($name, include_str!(concat!("../../../events-schema/", $dir, "/", $name, $suffix)))),+]
    };
}

const COMMAND_SCHEMAS: &[(&str, &str)] = schema_files!(
    "commands",
    ".v1.schema.json",
    [
        "register_organization",
        "open_class",
        "change_class_capacity",
        "assign_teacher",
        "unassign_teacher",
        "register_birth",
        "register_learner",
        "record_snils",
        "register_death",
        "link_guardian",
        "submit_application",
        "withdraw_application",
        "reject_application",
        "enroll",
        "transfer",
        "record_mark",
        "correct_mark",
        "record_attendance",
        "record_exam_result",
        "leave",
    ]
);

const ENVELOPE_SCHEMA: &str = include_str!("../../../events-schema/envelope.v1.schema.json");

fn problem() -> Value {
    json!({ "description": "A problem document (RFC 9457) with a stable `code`.",
            "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } })
}

fn ok(schema: Value, description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn param(name: &str, location: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": location, "required": location == "path", "description": description, "schema": schema })
}

fn min_position() -> Value {
    param("min_position", "query", "Wait (up to 5 s) until the read models have applied this log position: read your own writes.", json!({"type": "integer", "minimum": 0}))
}

fn get(summary: &str, tag: &str, params: Vec<Value>, response: Value) -> Value {
    json!({ "get": { "summary": summary, "tags": [tag], "parameters": params,
        "responses": { "200": response, "400": problem(), "401": problem(), "403": problem(), "404": problem(), "503": problem() } } })
}

fn id(description: &str) -> Value {
    param(
        "id",
        "path",
        description,
        json!({"type": "string", "format": "uuid"}),
    )
}

fn schema_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The OpenAPI document.
pub fn build() -> Value {
    let mut schemas: Map<String, Value> = serde_json::to_value(ReadSchemas::openapi())
        .ok()
        .and_then(|v| v.pointer("/components/schemas").cloned())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    schemas.insert(
        "Problem".into(),
        json!({ "type": "object", "required": ["type", "title", "status", "detail", "code"], "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "code": {"type": "string", "description": "Stable machine-readable code."},
            "field": {"type": "string", "description": "The request field at fault."} } }),
    );
    schemas.insert("Envelope".into(), schema_value(ENVELOPE_SCHEMA));
    schemas.insert(
        "Receipt".into(),
        json!({ "type": "object", "required": ["command", "events", "replayed"], "properties": {
            "command": {"type": "string"},
            "learner_id": {"type": "string", "format": "uuid"},
            "replayed": {"type": "boolean", "description": "True when nothing new was recorded: the same Idempotency-Key or the same civil registry record was seen before."},
            "events": {"type": "array", "items": {"type": "object", "properties": {
                "position": {"type": "integer"}, "event_id": {"type": "string", "format": "uuid"},
                "type": {"type": "string"}, "hash": {"type": "string"}, "data": {"type": "object"} } } } } }),
    );
    let mut commands = Vec::new();
    for (name, text) in COMMAND_SCHEMAS {
        let key = format!("Command_{name}");
        schemas.insert(key.clone(), schema_value(text));
        commands.push(json!({ "$ref": format!("#/components/schemas/{key}") }));
    }
    let mut paths = Map::new();
    paths.insert("/v1/commands/{name}".into(), json!({ "post": {
        "summary": "Record a lifecycle fact. The body is the command named by the path; it is validated against every rule before anything is appended, and acknowledged only once durable.",
        "tags": ["commands"],
        "parameters": [
            param("name", "path", "The command.", json!({"type": "string", "enum": contingent_domain::Command::NAMES})),
            param("Idempotency-Key", "header", "The same key sent again returns the first answer and records nothing.", json!({"type": "string", "maxLength": 200})),
            param("X-Actor", "header", "The user or account issuing the command.", json!({"type": "string"})),
            param("X-Source", "header", "kind:id of the reporting system (civil_registry, portal, organization, exam_centre, region).", json!({"type": "string"})),
        ],
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "oneOf": commands } } } },
        "responses": {
            "201": ok(reference("Receipt"), "Recorded."),
            "200": ok(reference("Receipt"), "Already recorded: the first answer, repeated."),
            "400": problem(), "401": problem(), "403": problem(), "404": problem(), "409": problem(), "413": problem(), "415": problem(), "422": problem(), "503": problem() } } }));
    paths.insert("/v1/learners".into(), get("Find learners by SNILS, name or organization.", "register", vec![
        param("snils", "query", "SNILS.", json!({"type": "string"})),
        param("surname", "query", "Surname.", json!({"type": "string"})),
        param("name", "query", "Name.", json!({"type": "string"})),
        param("birth_date", "query", "Date of birth.", json!({"type": "string", "format": "date"})),
        param("organization_id", "query", "Learners enrolled in this organization now.", json!({"type": "string", "format": "uuid"})),
        param("limit", "query", "At most (500).", json!({"type": "integer"})), min_position()],
        ok(json!({"type": "object", "properties": {"learners": {"type": "array", "items": reference("LearnerSummary")}}}), "Matching learners.")));
    paths.insert(
        "/v1/learners/{id}".into(),
        get(
            "A learner's register entry: identity, status, enrollments, movements, guardians.",
            "register",
            vec![id("Learner id."), min_position()],
            ok(reference("LearnerCard"), "The entry."),
        ),
    );
    paths.insert("/v1/learners/{id}/diary".into(), get("A learner's diary: marks by subject and period with averages, attendance, exam results.", "diary",
        vec![id("Learner id."), param("academic_year", "query", "Only this academic year, e.g. 2025/2026.", json!({"type": "string"})), min_position()],
        ok(reference("Diary"), "The diary.")));
    paths.insert("/v1/learners/{id}/history".into(), get("Every event about a learner, in log order, with hashes (from the log itself).", "audit",
        vec![id("Learner id.")],
        ok(json!({"type": "object", "properties": {"learner_id": {"type": "string"}, "events": {"type": "array", "items": reference("Envelope")},
            "altered_positions": {"type": "array", "items": {"type": "integer"}, "description": "Events whose stored bytes no longer match their hash."}}}), "The history.")));
    paths.insert("/v1/learners/{id}/access".into(), get("The access journal of a learner: every read of their personal data by an official and every refused request about them (auditors).", "audit",
        vec![id("Learner id.")],
        ok(json!({"type": "object", "properties": {"learner_id": {"type": "string"}, "entries": {"type": "array", "items": {"type": "object", "properties": {
            "at": {"type": "string", "format": "date-time"}, "subject": {"type": "string"}, "role": {"type": "string"},
            "learner_id": {"type": ["string", "null"]}, "method": {"type": "string"}, "endpoint": {"type": "string"},
            "status": {"type": "integer"}, "outcome": {"type": "string", "enum": ["read", "refused", "unauthenticated"]}}}}}}), "The journal entries, oldest first.")));
    paths.insert("/v1/learners/{id}/state".into(), get("What the registry knew of a learner at an instant (known_at, recorded time) about facts up to a date (as_of, business date).", "audit",
        vec![id("Learner id."),
             param("known_at", "query", "RFC 3339 instant or date: only facts recorded by then.", json!({"type": "string"})),
             param("as_of", "query", "Only facts that happened by this date.", json!({"type": "string", "format": "date"}))],
        ok(json!({"type": "object"}), "The learner then.")));
    paths.insert("/v1/organizations".into(), get("Organizations of the region.", "vacancies",
        vec![param("municipality", "query", "Only this municipality.", json!({"type": "string"})), min_position()],
        ok(json!({"type": "object", "properties": {"organizations": {"type": "array", "items": reference("OrganizationRow")}}}), "Organizations.")));
    paths.insert(
        "/v1/organizations/{id}/queue".into(),
        get(
            "An organization's applications in queue order, with pending and overdue counts.",
            "vacancies",
            vec![
                id("Organization id."),
                param(
                    "as_of",
                    "query",
                    "Judge overdue on this date (default today).",
                    json!({"type": "string", "format": "date"}),
                ),
                min_position(),
            ],
            ok(reference("QueueView"), "The queue."),
        ),
    );
    paths.insert(
        "/v1/classes/{id}/register".into(),
        get(
            "A class register: roster on a date, marks grid, attendance grid.",
            "class register",
            vec![
                id("Class id."),
                param(
                    "on",
                    "query",
                    "Roster date (default today within the class's year).",
                    json!({"type": "string", "format": "date"}),
                ),
                param(
                    "from",
                    "query",
                    "First day of the grids.",
                    json!({"type": "string", "format": "date"}),
                ),
                param(
                    "to",
                    "query",
                    "Last day of the grids.",
                    json!({"type": "string", "format": "date"}),
                ),
                min_position(),
            ],
            ok(reference("ClassRegisterView"), "The register."),
        ),
    );
    paths.insert("/v1/vacancies".into(), get("Capacity, enrolled and free places per class or group.", "vacancies",
        vec![param("organization_id", "query", "One organization.", json!({"type": "string", "format": "uuid"})),
             param("municipality", "query", "One municipality.", json!({"type": "string"})),
             param("academic_year", "query", "One academic year.", json!({"type": "string"})),
             param("level", "query", "preschool, general, additional, vocational.", json!({"type": "string"})),
             param("only_free", "query", "Only classes with free places.", json!({"type": "boolean"})), min_position()],
        ok(json!({"type": "object", "properties": {"capacity": {"type": "integer"}, "enrolled": {"type": "integer"}, "free": {"type": "integer"},
            "classes": {"type": "array", "items": reference("VacancyRow")}}}), "Places.")));
    paths.insert("/v1/federal/register".into(), get("The register in the federal segment's shape, paged by learner id.", "federal",
        vec![param("after", "query", "Learner id to continue after.", json!({"type": "string", "format": "uuid"})),
             param("limit", "query", "Page size (1000).", json!({"type": "integer"})), min_position()],
        ok(json!({"type": "object", "properties": {"learners": {"type": "array", "items": reference("FederalLearner")},
            "next_after": {"type": ["string", "null"]}, "projected_position": {"type": "integer"}}}), "A page.")));
    paths.insert("/v1/federal/counts".into(), get("Learners with an active enrollment, grouped by municipality, organization, level and grade.", "federal",
        vec![param("by", "query", "Comma-separated: municipality, organization, level, grade.", json!({"type": "string"})),
             param("academic_year", "query", "One academic year.", json!({"type": "string"})), min_position()],
        ok(json!({"type": "object", "properties": {"counts": {"type": "array", "items": reference("CountRow")}, "projected_position": {"type": "integer"}}}), "Counts.")));
    paths.insert("/v1/feed".into(), get("The event feed: pages through the log by position. A subscriber resumes from the last position it saw (`after`).", "federal",
        vec![param("after", "query", "Return events after this position (0 for the start).", json!({"type": "integer", "minimum": 0})),
             param("limit", "query", "Page size (1000).", json!({"type": "integer"}))],
        ok(json!({"type": "object", "properties": {"events": {"type": "array", "items": reference("Envelope")},
            "next_after": {"type": "integer"}, "head": {"type": "integer"}}}), "A page of events.")));
    paths.insert("/v1/audit/verify".into(), json!({
        "get": { "summary": "The last background audit of the whole log (bytes, positions, links, writer signatures, learner index, checkpoints) with its time and head, and whether one runs; the first request starts one. `wait` waits up to that many seconds (at most 30) for a running audit.", "tags": ["audit"],
            "parameters": [param("wait", "query", "Seconds to wait for a running audit to end (0-30).", json!({"type": "integer", "minimum": 0, "maximum": 30}))],
            "responses": { "200": ok(json!({"type": "object"}), "No damage in the last audit (or none has ended)."), "409": ok(json!({"type": "object"}), "The last audit found damage: `last.report.findings` names every place.") } },
        "post": { "summary": "Start an audit unless one runs (at most one at a time).", "tags": ["audit"],
            "responses": { "202": ok(json!({"type": "object"}), "The audit's state.") } } }));
    paths.insert("/v1/audit/checkpoints".into(), get("The signed checkpoints of the log's head (position, head hash, time, key id, Ed25519 signature), for auditors to keep and check with `contingent verify --against FILE`.", "audit", vec![],
        ok(json!({"type": "object", "properties": {"checkpoints": {"type": "array", "items": {"type": "object"}}}}), "The checkpoints, by position.")));
    paths.insert("/openapi.json".into(), json!({ "get": { "summary": "This document.", "tags": ["meta"], "security": [], "responses": { "200": { "description": "OpenAPI 3.1." } } } }));
    paths.insert("/healthz".into(), json!({ "get": { "summary": "Liveness, log head and projected position.", "tags": ["meta"], "security": [], "responses": { "200": { "description": "Up." } } } }));
    paths.insert("/metrics".into(), json!({ "get": { "summary": "Prometheus metrics.", "tags": ["meta"], "security": [], "responses": { "200": { "description": "Text exposition format." } } } }));
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Contingent: the regional learner registry", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Commands record lifecycle facts as events on an append-only, hash-chained log; queries read the projections. Errors are application/problem+json with a stable code." },
        "paths": paths,
        "security": [{ "bearer": [] }],
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A token of the regional sign-on (ES256 or RS256), with claims sub, role (parent, learner, teacher, organization, municipality, region, auditor, civil_registry, exam_centre, federal) and, by role, snils, org or municipality. Missing or invalid: 401 unauthenticated; outside the role's reach: 403 forbidden." } },
        },
    })
}

pub(crate) async fn document() -> Response {
    Json(build()).into_response()
}
