//! Least data out: what of each event the federal segment receives. The feed for the federal
//! role carries the envelope's position, event id, type, schema version, learner id, business
//! date, recorded time and source kind, and of `data` only the fields listed here: no names,
//! SNILS, documents, civil registry records, guardians, orders, marks or attendance.

use serde_json::{Map, Value};

/// For each event type, the `data` fields the federal segment receives.
pub const FEDERAL_FIELDS: &[(&str, &[&str])] = &[
    (
        "organization_registered",
        &["organization_id", "name", "municipality", "kind", "levels"],
    ),
    (
        "class_opened",
        &[
            "class_id",
            "organization_id",
            "academic_year",
            "level",
            "grade",
            "capacity",
            "stay_mode",
        ],
    ),
    (
        "class_capacity_changed",
        &["class_id", "organization_id", "capacity"],
    ),
    ("teacher_assigned", &["class_id", "organization_id"]),
    ("teacher_unassigned", &["class_id", "organization_id"]),
    ("birth_registered", &["learner_id", "sex", "birth_date"]),
    ("learner_registered", &["learner_id", "sex", "birth_date"]),
    ("snils_recorded", &["learner_id"]),
    ("death_registered", &["learner_id", "death_date"]),
    ("guardian_linked", &["learner_id"]),
    (
        "application_submitted",
        &[
            "application_id",
            "learner_id",
            "organization_id",
            "level",
            "academic_year",
            "grade",
            "submitted_on",
            "priority",
        ],
    ),
    (
        "application_withdrawn",
        &[
            "application_id",
            "learner_id",
            "organization_id",
            "withdrawn_on",
        ],
    ),
    (
        "application_rejected",
        &[
            "application_id",
            "learner_id",
            "organization_id",
            "rejected_on",
        ],
    ),
    (
        "enrolled",
        &[
            "enrollment_id",
            "learner_id",
            "organization_id",
            "class_id",
            "level",
            "grade",
            "academic_year",
            "primary",
            "form",
            "enrolled_on",
            "application_id",
        ],
    ),
    (
        "transferred",
        &[
            "learner_id",
            "kind",
            "from_enrollment_id",
            "from_organization_id",
            "from_class_id",
            "to_enrollment_id",
            "to_organization_id",
            "to_class_id",
            "grade",
            "academic_year",
            "transferred_on",
        ],
    ),
    ("mark_recorded", &["learner_id"]),
    ("mark_corrected", &["learner_id"]),
    ("attendance_recorded", &["learner_id"]),
    (
        "exam_result_recorded",
        &[
            "learner_id",
            "form",
            "subject",
            "exam_date",
            "grade",
            "result",
        ],
    ),
    (
        "left",
        &[
            "learner_id",
            "enrollment_id",
            "organization_id",
            "left_on",
            "reason",
        ],
    ),
    ("personal_data_erased", &["learner_id", "erased_on"]),
    (
        "log_migrated",
        &["from_head_position", "from_head_hash", "migrated_on"],
    ),
];

/// The envelope fields the federal segment receives.
pub const FEDERAL_ENVELOPE_FIELDS: &[&str] = &[
    "position",
    "event_id",
    "type",
    "schema_version",
    "learner_id",
    "business_date",
    "recorded_at",
];

/// The federal view of a stored event (the envelope JSON): the listed fields only, with the
/// source reduced to its kind.
pub fn federal_view(envelope: &Value) -> Value {
    let mut out = Map::new();
    for field in FEDERAL_ENVELOPE_FIELDS {
        if let Some(v) = envelope.get(*field) {
            out.insert((*field).to_owned(), v.clone());
        }
    }
    if let Some(kind) = envelope.pointer("/source/kind") {
        out.insert("source_kind".into(), kind.clone());
    }
    let event_type = envelope.get("type").and_then(Value::as_str).unwrap_or("");
    let allowed: &[&str] = FEDERAL_FIELDS
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, f)| *f)
        .unwrap_or(&[]);
    let mut data = Map::new();
    if let Some(Value::Object(full)) = envelope.get("data") {
        for field in allowed {
            if let Some(v) = full.get(*field) {
                data.insert((*field).to_owned(), v.clone());
            }
        }
    }
    out.insert("data".into(), Value::Object(data));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_a_federal_field_list() {
        let listed: Vec<&str> = FEDERAL_FIELDS.iter().map(|(t, _)| *t).collect();
        assert_eq!(listed, contingent_domain::Event::TYPES);
    }

    #[test]
    fn names_and_snils_do_not_leave() {
        let envelope = serde_json::json!({
            "position": 7, "event_id": "e", "type": "birth_registered", "schema_version": 1, "learner_id": "l",
            "business_date": "2020-01-01", "recorded_at": "2020-01-02T00:00:00Z", "actor": "zags-operator-5",
            "source": { "kind": "civil_registry", "id": "Отдел ЗАГС" }, "prev_hash": "00",
            "data": { "learner_id": "l", "child": { "surname": "Иванов", "name": "Иван" }, "sex": "male",
                      "birth_date": "2020-01-01", "snils": "112-233-445 95", "record": { "number": "1" } }
        });
        let view = federal_view(&envelope);
        let text = view.to_string();
        for secret in [
            "Иванов",
            "112-233-445 95",
            "zags-operator-5",
            "Отдел ЗАГС",
            "prev_hash",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(view["data"]["birth_date"], "2020-01-01");
        assert_eq!(view["source_kind"], "civil_registry");
        assert_eq!(view["position"], 7);
    }
}
