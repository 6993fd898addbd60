//! `POST /v1/commands/{name}`: JSON in, a command out, parsed once at the edge. Ids of new
//! entities are generated here when the caller does not give them, so a retried request with
//! the same `Idempotency-Key` names the same entity.

use axum::http::{HeaderMap, StatusCode};
use contingent_access::{Principal, Role};
use contingent_domain::{Command, SourceKind};
use contingent_log::{Metadata, Source};
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;

/// The id field each command creates, filled with a fresh UUID v7 when absent.
fn generated_ids(name: &str, body: &Value) -> &'static [&'static str] {
    match name {
        "register_organization" => &["organization_id"],
        "open_class" => &["class_id"],
        "register_birth" | "register_learner" => &["learner_id"],
        "submit_application" => &["application_id"],
        "enroll" => &["enrollment_id"],
        "record_mark" => &["mark_id"],
        "transfer" if body.get("kind").and_then(Value::as_str) == Some("to_other_organization") => {
            &["to_enrollment_id"]
        }
        _ => &[],
    }
}

fn parse<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let code = classify(&message);
        let err = ApiError::bad_request(code, format!("{field}: {message}"));
        if field == "." {
            err
        } else {
            err.at(field)
        }
    })
}

/// A stable code for a body that does not parse, from the parser's message.
fn classify(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        "unknown_field"
    } else if message.starts_with("missing field") {
        "missing_field"
    } else if message.contains("SNILS") {
        "invalid_snils"
    } else if message.contains("input is out of range")
        || message.contains("premature end of input")
        || message.contains("input contains invalid characters")
        || message.contains("trailing input")
        || message.contains("input is not enough for unique")
    {
        "invalid_date"
    } else if message.contains("a mark is one of") {
        "invalid_mark"
    } else if message.starts_with("unknown variant") {
        "unknown_value"
    } else {
        "invalid_value"
    }
}

/// Writes every number with a zero fraction (`80.0`) as the integer it is, as JSON Schema
/// counts it: the schemas say `integer`, and `80.0` is one.
fn integral_numbers(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0) {
                if (0.0..=u64::MAX as f64).contains(&f) {
                    *value = Value::from(f as u64);
                } else if f >= i64::MIN as f64 {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(fields) => fields.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Turns a JSON body into the command named by the path.
pub fn parse_command(name: &str, mut body: Value) -> Result<Command, ApiError> {
    integral_numbers(&mut body);
    let Some(object) = body.as_object_mut() else {
        return Err(ApiError::bad_request(
            "malformed_request",
            "the body must be a JSON object",
        ));
    };
    for field in generated_ids(name, &Value::Object(object.clone())) {
        object
            .entry(*field)
            .or_insert_with(|| Value::String(Uuid::now_v7().to_string()));
    }
    Ok(match name {
        "register_organization" => Command::RegisterOrganization(parse(body)?),
        "open_class" => Command::OpenClass(parse(body)?),
        "change_class_capacity" => Command::ChangeClassCapacity(parse(body)?),
        "assign_teacher" => Command::AssignTeacher(parse(body)?),
        "unassign_teacher" => Command::UnassignTeacher(parse(body)?),
        "register_birth" => Command::RegisterBirth(parse(body)?),
        "register_learner" => Command::RegisterLearner(parse(body)?),
        "record_snils" => Command::RecordSnils(parse(body)?),
        "register_death" => Command::RegisterDeath(parse(body)?),
        "link_guardian" => Command::LinkGuardian(parse(body)?),
        "submit_application" => Command::SubmitApplication(parse(body)?),
        "withdraw_application" => Command::WithdrawApplication(parse(body)?),
        "reject_application" => Command::RejectApplication(parse(body)?),
        "enroll" => Command::Enroll(parse(body)?),
        "transfer" => Command::Transfer(parse(body)?),
        "record_mark" => Command::RecordMark(parse(body)?),
        "correct_mark" => Command::CorrectMark(parse(body)?),
        "record_attendance" => Command::RecordAttendance(parse(body)?),
        "record_exam_result" => Command::RecordExamResult(parse(body)?),
        "leave" => Command::Leave(parse(body)?),
        "erase_personal_data" => Command::ErasePersonalData(parse(body)?),
        other => {
            return Err(ApiError::not_found(
                "unknown_command",
                format!(
                    "there is no command {other:?}; the commands are: {}",
                    Command::NAMES.join(", ")
                ),
            ))
        }
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()).filter(|s| !s.is_empty()))
            .map_err(|_| {
                ApiError::bad_request("invalid_header", format!("{name} must be visible ASCII"))
            }),
    }
}

/// Who reports a command: the system behind the caller's account. The civil registry's
/// records name their office; organizations and teachers report as their organization.
fn source_of(principal: &Principal, command: &Command) -> Source {
    let (kind, id) = match principal.role {
        Role::CivilRegistry => {
            let office = match command {
                Command::RegisterBirth(c) => c.record.office.to_string(),
                Command::RegisterDeath(c) => c.record.office.to_string(),
                _ => principal.subject.clone(),
            };
            (SourceKind::CivilRegistry, office)
        }
        Role::Parent | Role::Learner => (SourceKind::Portal, "portal".to_owned()),
        Role::Teacher | Role::Organization => (
            SourceKind::Organization,
            principal
                .organization
                .map(|o| o.to_string())
                .unwrap_or_default(),
        ),
        Role::ExamCentre => (SourceKind::ExamCentre, principal.subject.clone()),
        Role::Municipality => (
            SourceKind::Region,
            format!(
                "municipality:{}",
                principal.municipality.as_deref().unwrap_or("")
            ),
        ),
        Role::Region | Role::Auditor | Role::Federal => {
            (SourceKind::Region, principal.subject.clone())
        }
    };
    Source { kind, id }
}

/// Writes `value` as JSON with every object's keys in order, so two bodies that say the same
/// thing (whatever their key order and spacing) have the same bytes.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(key.clone()).to_string().as_bytes());
                out.push(b':');
                canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(v, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// The fingerprint of a command as its caller sent it (before any id is generated): SHA-256
/// of the command's name and its canonical body, in hex.
pub fn fingerprint(name: &str, body: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut bytes = Vec::with_capacity(256);
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(b'\n');
    canonical(body, &mut bytes);
    hex::encode(Sha256::digest(&bytes))
}

/// The metadata of a command: the caller's account as the actor, their system as the source,
/// and the `Idempotency-Key` header with the fingerprint of the body it was sent with. A key
/// belongs to its actor: another account's identical key is another key.
pub fn metadata(
    headers: &HeaderMap,
    command: &Command,
    principal: &Principal,
    fingerprint: String,
) -> Result<Metadata, ApiError> {
    let idempotency_key = header(headers, "idempotency-key")?.map(str::to_owned);
    if let Some(key) = &idempotency_key {
        if key.len() > 200 {
            return Err(ApiError::bad_request(
                "invalid_header",
                "Idempotency-Key is at most 200 characters",
            ));
        }
    }
    Ok(Metadata {
        source: source_of(principal, command),
        actor: principal.subject.chars().take(200).collect(),
        request_fingerprint: idempotency_key.as_ref().map(|_| fingerprint),
        idempotency_key,
    })
}

/// 201 for a command that recorded something new, 200 for an answer repeated.
pub fn status_of(replayed: bool) -> StatusCode {
    if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

#[cfg(test)]
mod tests {
    use super::fingerprint;
    use serde_json::json;

    #[test]
    fn the_fingerprint_ignores_key_order_and_spacing_but_not_content() {
        let a = json!({"class_id": "c", "capacity": 25, "nested": {"b": 1, "a": [1, 2]}});
        let b: serde_json::Value = serde_json::from_str(
            r#"{ "nested": {"a": [1,2], "b": 1}, "capacity": 25, "class_id": "c" }"#,
        )
        .expect("json");
        assert_eq!(fingerprint("open_class", &a), fingerprint("open_class", &b));
        let c = json!({"class_id": "c", "capacity": 26, "nested": {"b": 1, "a": [1, 2]}});
        assert_ne!(fingerprint("open_class", &a), fingerprint("open_class", &c));
        assert_ne!(
            fingerprint("open_class", &a),
            fingerprint("change_class_capacity", &a)
        );
        let d = json!({"class_id": "c", "capacity": 25, "nested": {"b": 1, "a": [2, 1]}});
        assert_ne!(fingerprint("open_class", &a), fingerprint("open_class", &d));
        assert_eq!(fingerprint("open_class", &a).len(), 64);
    }
}
