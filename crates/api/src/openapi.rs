//! `/openapi.json`: the OpenAPI 3.1 description of every endpoint, generated from the code.
//! Query parameters are the typed structs of `params.rs` (`IntoParams`: their limits, patterns
//! and formats are what parsing them enforces); answers are the `ToSchema` types of
//! `answers.rs`, of the read side and of the registry; command bodies are the JSON Schemas of
//! `events-schema/commands/`, stored events the envelope of `events-schema/`. The value types
//! those files define in their own `$defs` are moved into `components/schemas`, so that every
//! `$ref` of the document resolves within it.

use axum::response::{IntoResponse, Response};
use axum::Json;
use contingent_projections::queries::{ClassRegisterView, Diary, LearnerCard, QueueView};
use contingent_registry::{LearnerSnapshot, Receipt};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::answers::{
    AccessLog, AuditState, Checkpoints, Counts, FederalRegisterPage, FeedPage, Health, History,
    LearnerSearchResult, Organizations, SubjectAccessExport, Vacancies,
};
use crate::error::Problem;
use crate::params::{
    Consistency, CountBy, CountsQuery, DiaryQuery, FederalRegisterQuery, FeedQuery,
    LearnerSearchQuery, OrganizationsQuery, QueueQuery, RegisterQuery, StateQuery, VacanciesQuery,
    VerifyQuery,
};

#[derive(OpenApi)]
#[openapi(components(schemas(
    Problem,
    CountBy,
    Receipt,
    LearnerSearchResult,
    LearnerCard,
    Diary,
    History,
    LearnerSnapshot,
    AccessLog,
    SubjectAccessExport,
    Organizations,
    QueueView,
    ClassRegisterView,
    Vacancies,
    FederalRegisterPage,
    Counts,
    FeedPage,
    AuditState,
    Checkpoints,
    Health,
)))]
struct Schemas;

macro_rules! schema_files {
    ($dir:literal, $suffix:literal, [$($name:literal),+ $(,)?]) => {
        &[$(($name, include_str!(concat!("../../../events-schema/", $dir, "/", $name, $suffix)))),+]
    };
}

/// The request body of each command.
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
        "erase_personal_data",
    ]
);

/// The `data` of the event types written now with a later schema version than 1, which the
/// envelope's file (written for version 1) does not name: (type, version, schema).
const LATER_EVENT_SCHEMAS: &[(&str, u16, &str)] = &[
    (
        "enrolled",
        2,
        include_str!("../../../events-schema/events/enrolled.v2.schema.json"),
    ),
    (
        "exam_result_recorded",
        2,
        include_str!("../../../events-schema/events/exam_result_recorded.v2.schema.json"),
    ),
];

/// The `data` of each event type at schema version 1, referenced by the envelope.
const EVENT_SCHEMAS: &[(&str, &str)] = schema_files!(
    "events",
    ".v1.schema.json",
    [
        "organization_registered",
        "class_opened",
        "class_capacity_changed",
        "teacher_assigned",
        "teacher_unassigned",
        "birth_registered",
        "learner_registered",
        "snils_recorded",
        "death_registered",
        "guardian_linked",
        "application_submitted",
        "application_withdrawn",
        "application_rejected",
        "enrolled",
        "transferred",
        "mark_recorded",
        "mark_corrected",
        "attendance_recorded",
        "exam_result_recorded",
        "left",
        "personal_data_erased",
        "log_migrated",
    ]
);

const ENVELOPE_SCHEMA: &str = include_str!("../../../events-schema/envelope.v1.schema.json");

/// What each problem status means, wherever it is documented.
fn problem_description(status: u16) -> &'static str {
    match status {
        400 => "The request does not parse: a path or query parameter, header or body field (named in `field` where there is one).",
        401 => "No valid bearer token: `unauthenticated`.",
        403 => "Outside the caller's reach: `forbidden`. The same answer whether or not the object exists.",
        404 => "Not in the registry (for a caller who could see it if it were), or a rule names something unknown.",
        409 => "The registry's rules refuse this in the current state (see docs/errors.md), or the chain is broken.",
        413 => "The body is larger than the server accepts: `body_too_large`.",
        415 => "The body is not `application/json`: `unsupported_media_type`.",
        422 => "The facts given are impossible (see docs/errors.md), or the Idempotency-Key was used for another request.",
        429 => "Too many requests from this caller or address; retry later.",
        503 => "The registry or its read models could not answer (`unavailable`), or did not reach `min_position` in time (`read_model_behind`); retry.",
        _ => "A problem.",
    }
}

fn problem(status: u16) -> Value {
    json!({ "description": problem_description(status),
            "content": { "application/problem+json": { "schema": reference("Problem") } } })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn ok(schema: Value, description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn answer<T: ToSchema>(description: &str) -> Value {
    ok(reference(&T::name()), description)
}

fn query<T: IntoParams>() -> Vec<Value> {
    T::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query))
        .into_iter()
        .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
        .collect()
}

fn id(description: &str) -> Value {
    json!({ "name": "id", "in": "path", "required": true, "description": description,
            "schema": {"type": "string", "format": "uuid"} })
}

/// Every `/v1` route answers 401 without a valid token, 429 past the rate limit and 503 when
/// the registry cannot answer; `more` are the statuses of this route.
fn responses(success: &[(u16, Value)], more: &[u16]) -> Value {
    let mut out = Map::new();
    for (status, body) in success {
        out.insert(status.to_string(), body.clone());
    }
    let mut statuses = vec![401, 429, 503];
    statuses.extend_from_slice(more);
    statuses.sort_unstable();
    for status in statuses {
        out.entry(status.to_string())
            .or_insert_with(|| problem(status));
    }
    Value::Object(out)
}

/// A query. One that takes `min_position` answers 409 `position_ahead` past the end of the log.
fn get(summary: &str, tag: &str, parameters: Vec<Value>, mut responses: Value) -> Value {
    if parameters.iter().any(|p| p["name"] == "min_position") {
        responses["409"] = json!({ "description": "`min_position` is past the end of the log: `position_ahead`.",
            "content": { "application/problem+json": { "schema": reference("Problem") } } });
    }
    json!({ "get": { "summary": summary, "tags": [tag], "parameters": parameters, "responses": responses } })
}

fn with(mut first: Vec<Value>, rest: Vec<Value>) -> Vec<Value> {
    first.extend(rest);
    first
}

/// Parses one of the embedded schema files.
fn schema_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The schemas of `events-schema/`, made parts of one document: each file's `$defs` become
/// components (a definition that differs from one of the same name already there is kept as
/// `<owner>.<name>`), `#/$defs/…` and `events/….schema.json` references point at them, and
/// `$schema`/`$id` go (the document is the resource).
struct Embedder<'a> {
    schemas: &'a mut Map<String, Value>,
}

impl Embedder<'_> {
    fn embed(&mut self, owner: &str, text: &str) -> Value {
        let mut schema = schema_value(text);
        let mut renamed = Map::new();
        if let Some(obj) = schema.as_object_mut() {
            obj.remove("$schema");
            obj.remove("$id");
            if let Some(Value::Object(defs)) = obj.remove("$defs") {
                for (name, mut def) in defs {
                    annotate(&name, &mut def);
                    let key = match self.schemas.get(&name) {
                        None => name.clone(),
                        Some(existing) if same_def(existing, &def) => name.clone(),
                        Some(_) => format!("{owner}.{name}"),
                    };
                    renamed.insert(name, Value::String(key.clone()));
                    self.schemas.entry(key).or_insert(def);
                }
            }
        }
        rewrite(&mut schema, &renamed);
        // Definitions refer to one another: rewrite those just added too.
        for key in renamed.values().filter_map(Value::as_str) {
            if let Some(mut def) = self.schemas.remove(key) {
                rewrite(&mut def, &renamed);
                self.schemas.insert(key.to_owned(), def);
            }
        }
        schema
    }
}

/// Two definitions are the same once their references are rewritten alike.
fn same_def(a: &Value, b: &Value) -> bool {
    let mut b = b.clone();
    let names: Map<String, Value> = Map::new();
    rewrite(&mut b, &names);
    *a == b
}

/// What the server checks beyond the shape the files' patterns give: a SNILS's check number (a
/// `snils` format) and an academic year's consecutive years (an `academic-year` format, and the
/// pattern listing every year the parser accepts).
fn annotate(name: &str, def: &mut Value) {
    let Some(obj) = def.as_object_mut() else {
        return;
    };
    match name {
        "snils" => {
            obj.insert("format".into(), json!("snils"));
        }
        "academic_year" => {
            obj.insert("format".into(), json!("academic-year"));
            obj.insert(
                "pattern".into(),
                json!(crate::params::academic_year_pattern()),
            );
        }
        _ => {}
    }
}

fn rewrite(value: &mut Value, renamed: &Map<String, Value>) {
    match value {
        Value::Object(obj) => {
            if let Some(Value::String(target)) = obj.get_mut("$ref") {
                if let Some(name) = target.strip_prefix("#/$defs/") {
                    let name = renamed.get(name).and_then(Value::as_str).unwrap_or(name);
                    *target = format!("#/components/schemas/{name}");
                } else if let Some(event) = target
                    .strip_prefix("events/")
                    .and_then(|t| t.strip_suffix(".v1.schema.json"))
                {
                    *target = format!("#/components/schemas/Event_{event}");
                }
            }
            obj.values_mut().for_each(|v| rewrite(v, renamed));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, renamed)),
        _ => {}
    }
}

/// A stored event as served (history, the full feed): the envelope with its `hash`.
fn stored_event(envelope: &Value) -> Value {
    let mut stored = envelope.clone();
    stored["title"] = json!("Stored event");
    stored["description"] = json!("An event of the log as stored (the envelope), with `hash`: the SHA-256 of its stored bytes. `data` is whole (sealed personal fields opened, or read as erased) and in the current version of its type: an event stored with an older version is served upcast, with `stored_schema_version`.");
    stored["properties"]["hash"] = json!({ "$ref": "#/components/schemas/hash",
        "description": "SHA-256 of this event's stored bytes; the next event's prev_hash." });
    stored["properties"]["stored_schema_version"] = json!({ "type": "integer", "minimum": 1, "maximum": 65535,
        "description": "The schema version the stored bytes were written with, when older than `schema_version`: the event is served upcast to its type's current version (docs/events.md)." });
    if let Some(required) = stored["required"].as_array_mut() {
        required.push(json!("hash"));
    }
    stored
}

/// An event in the federal segment's shape (`contingent_access::federal_view`).
fn federal_event(envelope: &Value) -> Value {
    let mut properties = Map::new();
    for field in contingent_access::FEDERAL_ENVELOPE_FIELDS {
        properties.insert((*field).to_owned(), envelope["properties"][*field].clone());
    }
    properties.insert(
        "source_kind".into(),
        json!({ "$ref": "#/components/schemas/source_kind", "description": "Who reported the fact: the kind of source only." }),
    );
    properties.insert(
        "data".into(),
        json!({ "type": "object", "description": "Of the event's data, only the fields listed for its type in docs/personal-data.md (`FEDERAL_FIELDS`)." }),
    );
    json!({
        "title": "Federal event",
        "description": "An event of the log in the federal segment's shape: the envelope fields that leave the region and, of `data`, only the fields listed for its type.",
        "type": "object",
        "additionalProperties": false,
        "required": ["position", "event_id", "type", "schema_version", "business_date", "recorded_at", "source_kind", "data"],
        "properties": properties,
    })
}

/// The operation of one command (`/v1/commands/<name>`), or of any (`/v1/commands/{name}`).
fn command_operation(summary: &str, parameters: Vec<Value>, body: Value) -> Value {
    json!({ "post": {
        "summary": summary,
        "tags": ["commands"],
        "parameters": parameters,
        "requestBody": { "required": true, "content": { "application/json": { "schema": body } } },
        "responses": responses(&[
            (201, ok(reference("Receipt"), "Recorded: durable in the log before this answer.")),
            (200, ok(reference("Receipt"), "Already recorded: the first answer, repeated (header Idempotent-Replayed: true)."))],
            &[400, 403, 404, 409, 413, 415, 422]) } })
}

fn command_headers() -> Vec<Value> {
    vec![
        json!({ "name": "Idempotency-Key", "in": "header", "required": false, "description": "The same key sent again returns the first answer and records nothing.", "schema": {"type": "string", "maxLength": 200, "pattern": "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$"} }),
    ]
}

/// The OpenAPI document.
pub fn build() -> Value {
    let mut schemas: Map<String, Value> = serde_json::to_value(Schemas::openapi())
        .ok()
        .and_then(|v| v.pointer("/components/schemas").cloned())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let mut embedder = Embedder {
        schemas: &mut schemas,
    };
    let mut envelope = embedder.embed("Envelope", ENVELOPE_SCHEMA);
    // The data of a type written with a later version is described by that version's schema.
    let mut later = Vec::new();
    for (name, version, text) in LATER_EVENT_SCHEMAS {
        let key = format!("Event_{name}_v{version}");
        later.push((key.clone(), embedder.embed(&key, text)));
        if let Some(branches) = envelope["allOf"].as_array_mut() {
            branches.push(json!({
                "if": { "properties": { "type": { "const": name }, "schema_version": { "const": version } },
                        "required": ["type", "schema_version"] },
                "then": { "properties": { "data": reference(&key) } },
            }));
        }
    }
    let mut commands = Vec::new();
    for (name, text) in COMMAND_SCHEMAS {
        let key = format!("Command_{name}");
        let schema = embedder.embed(&key, text);
        commands.push((*name, key.clone(), schema));
    }
    let mut events = Vec::new();
    for (name, text) in EVENT_SCHEMAS {
        let key = format!("Event_{name}");
        events.push((key.clone(), embedder.embed(&key, text)));
    }
    for (key, schema) in events.into_iter().chain(later) {
        schemas.insert(key, schema);
    }
    schemas.insert("StoredEvent".into(), stored_event(&envelope));
    schemas.insert("FederalEvent".into(), federal_event(&envelope));
    schemas.insert("Envelope".into(), envelope);
    let mut paths = Map::new();
    let name_param = json!({ "name": "name", "in": "path", "required": true, "description": "The command.",
        "schema": {"type": "string", "enum": contingent_domain::Command::NAMES} });
    paths.insert("/v1/commands/{name}".into(), command_operation(
        "Record a lifecycle fact. The body is the command named by the path (see the path of each command for its body alone); it is validated against every rule before anything is appended, and acknowledged only once durable. A body that is not the named command's is answered 400.",
        with(vec![name_param], command_headers()),
        json!({ "oneOf": commands.iter().map(|(_, key, _)| reference(key)).collect::<Vec<_>>() })));
    for (name, key, schema) in &commands {
        let summary = schema["description"]
            .as_str()
            .unwrap_or("A command.")
            .to_owned();
        paths.insert(
            format!("/v1/commands/{name}"),
            command_operation(&summary, command_headers(), reference(key)),
        );
    }
    for (_, key, schema) in commands {
        schemas.insert(key, schema);
    }
    paths.insert("/v1/learners".into(), get(
        "Find learners by SNILS, surname (with name and date of birth) or organization. At least one of snils, surname and organization_id is needed (400 otherwise).",
        "register", query::<LearnerSearchQuery>(),
        responses(&[(200, answer::<LearnerSearchResult>("Matching learners."))], &[400, 403])));
    paths.insert(
        "/v1/learners/{id}".into(),
        get(
            "A learner's register entry: identity, status, enrollments, movements, guardians.",
            "register",
            with(vec![id("Learner id.")], query::<Consistency>()),
            responses(
                &[(200, answer::<LearnerCard>("The entry."))],
                &[400, 403, 404],
            ),
        ),
    );
    paths.insert("/v1/learners/{id}/diary".into(), get(
        "A learner's diary: marks by subject and period with averages, attendance, exam results.",
        "diary", with(vec![id("Learner id.")], query::<DiaryQuery>()),
        responses(&[(200, answer::<Diary>("The diary."))], &[400, 403, 404])));
    paths.insert(
        "/v1/learners/{id}/history".into(),
        get(
            "Every event about a learner, in log order, with hashes (from the log itself).",
            "audit",
            vec![id("Learner id.")],
            responses(
                &[(200, answer::<History>("The history."))],
                &[400, 403, 404],
            ),
        ),
    );
    paths.insert("/v1/learners/{id}/state".into(), get(
        "What the registry knew of a learner at an instant (known_at, recorded time) about facts up to a date (as_of, business date).",
        "audit", with(vec![id("Learner id.")], query::<StateQuery>()),
        responses(&[(200, answer::<LearnerSnapshot>("The learner then."))], &[400, 403, 404])));
    paths.insert("/v1/learners/{id}/access".into(), get(
        "The access journal of a learner: every read of their personal data by an official and every refused request about them by a caller with a valid token (auditors).",
        "audit", vec![id("Learner id.")],
        responses(&[(200, answer::<AccessLog>("The journal entries, oldest first."))], &[400, 403])));
    paths.insert("/v1/learners/{id}/export".into(), get(
        "Everything the registry holds about a learner, as one JSON document: the history with personal fields opened, the register entry, the diary and the access journal's entries (the learner, a parent by their guardian link, the region). Journaled.",
        "audit", vec![id("Learner id.")],
        responses(&[(200, answer::<SubjectAccessExport>("Everything held."))], &[400, 403, 404])));
    paths.insert(
        "/v1/learners/{id}/export.txt".into(),
        get(
            "The same as `/v1/learners/{id}/export`, as text for a person to read. Journaled.",
            "audit",
            vec![id("Learner id.")],
            responses(
                &[(
                    200,
                    json!({ "description": "Everything held, as text.",
            "content": { "text/plain": { "schema": { "type": "string" } } } }),
                )],
                &[400, 403, 404],
            ),
        ),
    );
    paths.insert(
        "/v1/organizations".into(),
        get(
            "Organizations of the region.",
            "vacancies",
            query::<OrganizationsQuery>(),
            responses(&[(200, answer::<Organizations>("Organizations."))], &[400]),
        ),
    );
    paths.insert(
        "/v1/organizations/{id}/queue".into(),
        get(
            "An organization's applications in queue order, with pending and overdue counts.",
            "vacancies",
            with(vec![id("Organization id.")], query::<QueueQuery>()),
            responses(
                &[(200, answer::<QueueView>("The queue."))],
                &[400, 403, 404],
            ),
        ),
    );
    paths.insert(
        "/v1/classes/{id}/register".into(),
        get(
            "A class register: roster on a date, marks grid, attendance grid.",
            "class register",
            with(vec![id("Class id.")], query::<RegisterQuery>()),
            responses(
                &[(200, answer::<ClassRegisterView>("The register."))],
                &[400, 403, 404],
            ),
        ),
    );
    paths.insert(
        "/v1/vacancies".into(),
        get(
            "Capacity, enrolled and free places per class or group.",
            "vacancies",
            query::<VacanciesQuery>(),
            responses(&[(200, answer::<Vacancies>("Places."))], &[400, 403]),
        ),
    );
    paths.insert(
        "/v1/federal/register".into(),
        get(
            "The register in the federal segment's shape, paged by learner id.",
            "federal",
            query::<FederalRegisterQuery>(),
            responses(
                &[(200, answer::<FederalRegisterPage>("A page."))],
                &[400, 403],
            ),
        ),
    );
    paths.insert("/v1/federal/counts".into(), get(
        "Learners with an active enrollment, grouped by municipality, organization, level and grade.",
        "federal", query::<CountsQuery>(),
        responses(&[(200, answer::<Counts>("Counts."))], &[400, 403])));
    paths.insert("/v1/feed".into(), get(
        "The event feed: pages through the log by position. A subscriber resumes from the last position it saw (`after`). The region and auditors receive stored events, and each page they read is journaled (one entry per learner it names); the federal segment receives their federal view, the data that leaves the region.",
        "federal", query::<FeedQuery>(),
        responses(&[(200, answer::<FeedPage>("A page of events."))], &[400, 403])));
    let mut verify = get(
        "The last background audit of the whole log (bytes, positions, links, writer signatures, learner index, checkpoints) with its time and head, and whether one runs; the first request starts one. `wait` waits up to that many seconds for a running audit.",
        "audit",
        query::<VerifyQuery>(),
        responses(
            &[
                (200, answer::<AuditState>("No damage in the last audit (or none has ended yet).")),
                (409, answer::<AuditState>("The last audit found damage: `last.report.findings` names every place.")),
            ],
            &[400, 403],
        ),
    );
    verify["post"] = json!({
        "summary": "Start an audit unless one runs (at most one at a time).",
        "tags": ["audit"],
        "parameters": [],
        "responses": responses(&[(202, answer::<AuditState>("The audit's state."))], &[403]),
    });
    paths.insert("/v1/audit/verify".into(), verify);
    paths.insert(
        "/v1/audit/checkpoints".into(),
        get(
            "The signed checkpoints of the log's head, for auditors to keep and check with `contingent verify --against FILE`.",
            "audit",
            vec![],
            responses(&[(200, answer::<Checkpoints>("The checkpoints, by position."))], &[403]),
        ),
    );
    paths.insert(
        "/openapi.json".into(),
        json!({ "get": { "summary": "This document.", "tags": ["meta"], "security": [],
        "responses": { "200": ok(json!({"type": "object"}), "OpenAPI 3.1.") } } }),
    );
    paths.insert("/healthz".into(), json!({ "get": { "summary": "Liveness, log head and projected position.", "tags": ["meta"], "security": [],
        "responses": { "200": answer::<Health>("Up."),
            "503": answer::<Health>("Up, but refusing commands until the writer has read the log after a failed append (`refusing_commands`); reads still work.") } } }));
    paths.insert("/metrics".into(), json!({ "get": { "summary": "Prometheus metrics.", "tags": ["meta"], "security": [],
        "responses": { "200": { "description": "Text exposition format.", "content": { "text/plain": { "schema": {"type": "string"} } } } } } }));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(obj) => {
                if let Some(Value::String(r)) = obj.get("$ref") {
                    out.push(r);
                }
                obj.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_within_the_document() {
        let doc = build();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 100);
        let broken: Vec<&&str> = all
            .iter()
            .filter(|r| {
                r.strip_prefix('#')
                    .and_then(|pointer| doc.pointer(&pointer.replace('~', "~0")))
                    .is_none()
            })
            .collect();
        assert!(broken.is_empty(), "{broken:?}");
        assert!(
            !doc.to_string().contains("$defs"),
            "every definition is a component"
        );
    }

    /// Every event type's data is described at the version events of it are written with now.
    #[test]
    fn every_event_type_is_described_at_its_current_version() {
        let doc = build();
        let schemas = &doc["components"]["schemas"];
        let listed: Vec<&str> = EVENT_SCHEMAS.iter().map(|(name, _)| *name).collect();
        assert_eq!(listed, contingent_domain::Event::TYPES);
        for ty in contingent_domain::Event::TYPES {
            let version = contingent_domain::Event::current_schema_version(ty);
            let key = if version == 1 {
                format!("Event_{ty}")
            } else {
                format!("Event_{ty}_v{version}")
            };
            assert!(schemas.get(&key).is_some(), "{key} is not in the document");
            if version > 1 {
                let branch = doc["components"]["schemas"]["StoredEvent"]["allOf"]
                    .as_array()
                    .and_then(|b| {
                        b.iter().find(|b| {
                            b["if"]["properties"]["type"]["const"] == *ty
                                && b["if"]["properties"]["schema_version"]["const"] == version
                        })
                    });
                assert_eq!(
                    branch.map(|b| b["then"]["properties"]["data"]["$ref"].clone()),
                    Some(json!(format!("#/components/schemas/{key}"))),
                    "{ty} v{version}"
                );
            }
        }
    }

    #[test]
    fn the_documented_limits_are_the_enforced_ones() {
        let doc = build();
        let limit = |path: &str| {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .find(|p| p["name"] == "limit")
                .map(|p| p["schema"]["maximum"].as_u64())
        };
        assert_eq!(limit("/v1/learners"), Some(Some(crate::params::MAX_SEARCH)));
        assert_eq!(limit("/v1/feed"), Some(Some(crate::params::MAX_PAGE)));
        assert_eq!(
            limit("/v1/federal/register"),
            Some(Some(crate::params::MAX_PAGE))
        );
    }

    #[test]
    fn each_command_has_a_path_of_its_own_in_the_list_of_paths() {
        for name in contingent_domain::Command::NAMES {
            let path = format!("/v1/commands/{name}");
            assert!(crate::PATHS.contains(&path.as_str()), "{path}");
        }
    }
}
