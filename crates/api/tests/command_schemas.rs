//! The request-body schemas of `POST /v1/commands/{name}` (`events-schema/commands/`) checked
//! against the structs the API deserializes the bodies into.
//!
//! - every name of [`Command::NAMES`] has a schema file, and no schema file names another command;
//! - every schema is a valid draft 2020-12 schema in the house style (`$id`, title, description,
//!   closed objects, a description on every field, local `$ref`s only) and compiles offline;
//! - every schema's `examples[0]` validates against it and deserializes into the command;
//! - a command that reuses an event's struct has that event's `data` schema, except that the id the
//!   API generates is optional; a command with its own struct lists exactly the struct's fields;
//! - the value types (`$defs`) are the events' value types;
//! - the schema and the parser agree on every field of every example removed, and on an unknown
//!   field added, at every level; and both refuse a set of bad bodies (bad SNILS, unknown
//!   fields, missing fields, values outside the vocabularies...).
//!
//! The id filling below mirrors `generated_ids` in `src/commands.rs`, which is private to the
//! crate: the API inserts a fresh UUID for a missing id before deserializing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use contingent_domain::{
    ApplicationSubmitted, AttendanceRecorded, BirthRegistered, ChangeClassCapacity, ClassOpened,
    Command, CorrectMark, Enroll, ErasePersonalData, GuardianLinked, LearnerRegistered, Leave,
    MarkRecorded, OrganizationRegistered, RecordExamResult, RegisterDeath, RejectApplication,
    SnilsRecorded, TeacherAssigned, Transfer, UnassignTeacher, WithdrawApplication,
};
use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

const BASE: &str = "https://contingent.example/events-schema/";
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Commands whose body is an event's `data`: (command, event type, id generated when absent).
const REUSED: &[(&str, &str, Option<&str>)] = &[
    (
        "register_organization",
        "organization_registered",
        Some("organization_id"),
    ),
    ("open_class", "class_opened", Some("class_id")),
    ("assign_teacher", "teacher_assigned", None),
    ("register_birth", "birth_registered", Some("learner_id")),
    ("register_learner", "learner_registered", Some("learner_id")),
    ("record_snils", "snils_recorded", None),
    ("link_guardian", "guardian_linked", None),
    (
        "submit_application",
        "application_submitted",
        Some("application_id"),
    ),
    ("record_mark", "mark_recorded", Some("mark_id")),
    ("record_attendance", "attendance_recorded", None),
];

// ---------------------------------------------------------------------------------------------
// Loading

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events-schema")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// Every file under `events-schema/commands/`, by command name.
fn schemas() -> &'static BTreeMap<String, Value> {
    static SCHEMAS: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let dir = schema_dir().join("commands");
        let listing = std::fs::read_dir(&dir).expect("events-schema/commands/ exists");
        let mut out = BTreeMap::new();
        for entry in listing {
            let path = entry.expect("a directory entry").path();
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let name = file
                .strip_suffix(".v1.schema.json")
                .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                .unwrap_or_else(|| {
                    panic!("events-schema/commands/{file} is not named <command>.v1.schema.json")
                });
            out.insert(name.to_owned(), read_json(&path));
        }
        out
    })
}

fn schema(name: &str) -> &'static Value {
    schemas()
        .get(name)
        .unwrap_or_else(|| panic!("no schema events-schema/commands/{name}.v1.schema.json"))
}

fn event_schema(ty: &str) -> Value {
    read_json(&schema_dir().join(format!("events/{ty}.v1.schema.json")))
}

fn example(name: &str) -> &'static Value {
    &schema(name)["examples"][0]
}

/// A retriever that fetches nothing: every schema stands alone.
struct Offline;

impl Retrieve for Offline {
    fn retrieve(&self, uri: &Uri<&str>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "{} is not registered; schemas are never fetched",
            uri.as_str()
        )
        .into())
    }
}

fn validator(name: &str) -> &'static Validator {
    static VALIDATORS: OnceLock<BTreeMap<String, Validator>> = OnceLock::new();
    let all = VALIDATORS.get_or_init(|| {
        schemas()
            .iter()
            .map(|(name, schema)| {
                let validator = jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .should_validate_formats(true)
                    .with_retriever(Offline)
                    .build(schema)
                    .unwrap_or_else(|e| panic!("{name}: the schema does not compile: {e}"));
                (name.clone(), validator)
            })
            .collect()
    });
    all.get(name)
        .unwrap_or_else(|| panic!("no schema for {name}"))
}

fn errors(name: &str, body: &Value) -> Vec<String> {
    validator(name)
        .iter_errors(body)
        .map(|e| format!("{e} (at '{}', schema '{}')", e.instance_path, e.schema_path))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What the API does with a body

/// Mirrors `generated_ids` in `src/commands.rs`.
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

fn round_trip<T: DeserializeOwned + Serialize>(body: Value) -> Result<Value, String> {
    let command: T = serde_json::from_value(body).map_err(|e| e.to_string())?;
    Ok(serde_json::to_value(command).expect("a command serializes"))
}

/// Deserializes a body as `POST /v1/commands/{name}` does (after filling in the generated ids),
/// and serializes the command back.
fn parse(name: &str, body: &Value) -> Result<Value, String> {
    let mut body = body.clone();
    let Some(object) = body.as_object_mut() else {
        return Err("the body must be a JSON object".into());
    };
    for field in generated_ids(name, &Value::Object(object.clone())) {
        object
            .entry(*field)
            .or_insert_with(|| json!("0199a1ff-0000-7000-8000-000000000001"));
    }
    match name {
        "register_organization" => round_trip::<OrganizationRegistered>(body),
        "open_class" => round_trip::<ClassOpened>(body),
        "change_class_capacity" => round_trip::<ChangeClassCapacity>(body),
        "assign_teacher" => round_trip::<TeacherAssigned>(body),
        "unassign_teacher" => round_trip::<UnassignTeacher>(body),
        "register_birth" => round_trip::<BirthRegistered>(body),
        "register_learner" => round_trip::<LearnerRegistered>(body),
        "record_snils" => round_trip::<SnilsRecorded>(body),
        "register_death" => round_trip::<RegisterDeath>(body),
        "link_guardian" => round_trip::<GuardianLinked>(body),
        "submit_application" => round_trip::<ApplicationSubmitted>(body),
        "withdraw_application" => round_trip::<WithdrawApplication>(body),
        "reject_application" => round_trip::<RejectApplication>(body),
        "enroll" => round_trip::<Enroll>(body),
        "transfer" => round_trip::<Transfer>(body),
        "record_mark" => round_trip::<MarkRecorded>(body),
        "correct_mark" => round_trip::<CorrectMark>(body),
        "record_attendance" => round_trip::<AttendanceRecorded>(body),
        "record_exam_result" => round_trip::<RecordExamResult>(body),
        "leave" => round_trip::<Leave>(body),
        "erase_personal_data" => round_trip::<ErasePersonalData>(body),
        other => panic!("the test does not know the command {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Walking a schema

/// Resolves a local `$ref` (`#/$defs/...`) inside one schema document.
fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local $ref {r}"));
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {r}"))
        }
        None => node,
    }
}

fn properties_of(node: &Value) -> &Map<String, Value> {
    node["properties"]
        .as_object()
        .expect("an object schema has properties")
}

fn required_of(node: &Value) -> BTreeSet<String> {
    node.get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Every subschema of a document, with its JSON pointer.
fn subschemas<'a>(node: &'a Value, pointer: String, out: &mut Vec<(String, &'a Value)>) {
    match node {
        Value::Object(map) => {
            out.push((pointer.clone(), node));
            for (key, value) in map {
                if key == "examples" || key == "enum" || key == "default" {
                    continue;
                }
                subschemas(value, format!("{pointer}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                subschemas(item, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The files

#[test]
fn every_command_has_a_schema_and_every_schema_names_a_command() {
    let files: BTreeSet<&str> = schemas().keys().map(String::as_str).collect();
    let names: BTreeSet<&str> = Command::NAMES.iter().copied().collect();
    assert_eq!(
        files, names,
        "schema files (left) and Command::NAMES (right)"
    );
}

#[test]
fn every_schema_is_in_the_house_style() {
    let mut problems = Vec::new();
    for (name, doc) in schemas() {
        let mut problem = |p: String| problems.push(format!("{name}: {p}"));
        if doc["$schema"] != DRAFT_2020_12 {
            problem("$schema is not draft 2020-12".into());
        }
        let id = format!("{BASE}commands/{name}.v1.schema.json");
        if doc["$id"] != json!(id) {
            problem(format!("$id is {}, expected {id}", doc["$id"]));
        }
        if !doc["title"]
            .as_str()
            .is_some_and(|t| t.starts_with(name.as_str()))
        {
            problem("no title naming the command".into());
        }
        if !doc["description"]
            .as_str()
            .is_some_and(|d| d.contains("event"))
        {
            problem("no description saying which event records the command".into());
        }
        if doc["type"] != "object" || doc["additionalProperties"] != false {
            problem("the body is not a closed object".into());
        }
        if doc["examples"].as_array().map(Vec::len) != Some(1) {
            problem("not exactly one example".into());
        }
        for (key, def) in doc["$defs"].as_object().into_iter().flatten() {
            if def["title"].as_str().is_none() || def["description"].as_str().is_none() {
                problem(format!("$defs/{key} has no title or description"));
            }
        }
        let mut all = Vec::new();
        subschemas(doc, String::new(), &mut all);
        for (pointer, node) in all {
            resolve(doc, node); // every $ref is local and resolves
            if node.get("properties").is_none() {
                continue;
            }
            if node["additionalProperties"] != false {
                problem(format!("{pointer} does not refuse unknown fields"));
            }
            for (field, property) in properties_of(node) {
                if property["description"].as_str().is_none_or(str::is_empty) {
                    problem(format!("{pointer}/properties/{field} has no description"));
                }
            }
            for field in required_of(node) {
                if !properties_of(node).contains_key(&field) {
                    problem(format!(
                        "{pointer} requires {field}, which it does not describe"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_example_validates_and_parses() {
    for name in Command::NAMES {
        let example = example(name);
        let errors = errors(name, example);
        assert!(
            errors.is_empty(),
            "{name}: the example does not validate:\n{}",
            errors.join("\n")
        );
        if let Err(e) = parse(name, example) {
            panic!("{name}: the example validates but the API refuses it: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The schemas against the code

#[test]
fn commands_reusing_an_event_have_its_schema_with_the_generated_id_optional() {
    for (name, ty, generated) in REUSED {
        let mut command = schema(name).clone();
        let mut event = event_schema(ty);
        for key in ["$id", "title", "description", "examples"] {
            command.as_object_mut().expect("an object").remove(key);
        }
        for key in ["$id", "title", "description", "x-reported-by"] {
            event.as_object_mut().expect("an object").remove(key);
        }
        if let Some(id) = generated {
            let required = event["required"].as_array_mut().expect("a required list");
            assert!(required.contains(&json!(id)), "{ty} does not require {id}");
            required.retain(|r| r != id);
            // The description may say that the id is generated; nothing else may differ.
            for doc in [&mut command, &mut event] {
                doc["properties"][id]
                    .as_object_mut()
                    .unwrap_or_else(|| panic!("{name}: no property {id}"))
                    .remove("description");
            }
            let mut body = example(name).clone();
            body.as_object_mut().expect("an object").remove(*id);
            assert!(
                validator(name).is_valid(&body),
                "{name}: {id} is not optional"
            );
            parse(name, &body).unwrap_or_else(|e| panic!("{name} without {id}: {e}"));
        }
        assert_eq!(
            command, event,
            "{name}: the schema differs from that of {ty}"
        );
    }
}

#[test]
fn commands_with_their_own_struct_list_exactly_its_fields() {
    let reused: BTreeSet<&str> = REUSED.iter().map(|(name, _, _)| *name).collect();
    for name in Command::NAMES.iter().filter(|n| !reused.contains(*n)) {
        // These structs write every field, `null` for an absent one.
        let written = parse(name, example(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let fields: BTreeSet<&String> = written.as_object().expect("an object").keys().collect();
        let properties: BTreeSet<&String> = properties_of(schema(name)).keys().collect();
        assert_eq!(
            properties, fields,
            "{name}: schema properties (left) and struct fields (right)"
        );
    }
}

#[test]
fn the_value_types_are_the_event_value_types() {
    let mut event_defs: BTreeMap<String, Value> = BTreeMap::new();
    let listing = std::fs::read_dir(schema_dir().join("events")).expect("events-schema/events/");
    for entry in listing {
        let doc = read_json(&entry.expect("a directory entry").path());
        for (key, def) in doc["$defs"].as_object().into_iter().flatten() {
            event_defs.insert(key.clone(), def.clone());
        }
    }
    for (name, doc) in schemas() {
        for (key, def) in doc["$defs"].as_object().into_iter().flatten() {
            let Some(event_def) = event_defs.get(key) else {
                continue; // a type of commands only (PersonRef)
            };
            if (name.as_str(), key.as_str()) == ("enroll", "programme") {
                // `adapted` is written on every event and defaults to false in a command.
                let adapted = &def["properties"]["adapted"];
                assert_eq!(adapted["type"], "boolean");
                assert_eq!(adapted["default"], false);
                let strip = |def: &Value| {
                    let mut def = def.clone();
                    def["properties"]
                        .as_object_mut()
                        .expect("properties")
                        .remove("adapted");
                    def["required"]
                        .as_array_mut()
                        .expect("required")
                        .retain(|r| r != "adapted");
                    def
                };
                assert_eq!(strip(def), strip(event_def), "enroll: $defs/programme");
                continue;
            }
            assert_eq!(
                def, event_def,
                "{name}: $defs/{key} differs from the events' {key}"
            );
        }
    }
}

/// Every variation of `value` with one field of one object removed, or one unknown field added.
fn variations(value: &Value, path: &str, out: &mut Vec<(String, Value, bool)>) {
    let Value::Object(map) = value else {
        if let Value::Array(items) = value {
            for (i, item) in items.iter().enumerate() {
                let mut inner = Vec::new();
                variations(item, &format!("{path}/{i}"), &mut inner);
                for (label, changed, unknown) in inner {
                    let mut items = items.clone();
                    items[i] = changed;
                    out.push((label, Value::Array(items), unknown));
                }
            }
        }
        return;
    };
    for key in map.keys() {
        let mut removed = map.clone();
        removed.remove(key);
        out.push((
            format!("{path}/{key} removed"),
            Value::Object(removed),
            false,
        ));
    }
    let mut added = map.clone();
    added.insert("nickname".into(), json!("Лиса"));
    out.push((format!("{path}/nickname added"), Value::Object(added), true));
    for (key, child) in map {
        let mut inner = Vec::new();
        variations(child, &format!("{path}/{key}"), &mut inner);
        for (label, changed, unknown) in inner {
            let mut map = map.clone();
            map.insert(key.clone(), changed);
            out.push((label, Value::Object(map), unknown));
        }
    }
}

#[test]
fn the_schema_and_the_api_agree_on_every_field_removed_and_on_unknown_fields() {
    let mut problems = Vec::new();
    for name in Command::NAMES {
        let mut cases = Vec::new();
        variations(example(name), "", &mut cases);
        for (label, body, unknown) in cases {
            let valid = validator(name).is_valid(&body);
            let parsed = parse(name, &body);
            if valid != parsed.is_ok() {
                problems.push(format!(
                    "{name}, {label}: the schema says {}, the API says {parsed:?}",
                    if valid { "valid" } else { "invalid" }
                ));
            }
            if unknown && valid {
                problems.push(format!("{name}, {label}: an unknown field is accepted"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Bad bodies

/// The example of `name` with `change` applied at a JSON pointer: `Some(value)` sets, `None`
/// removes.
fn changed(name: &str, pointer: &str, change: Option<Value>) -> Value {
    let mut body = example(name).clone();
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let parent = body
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{name}: no object at {pointer}"));
    match change {
        Some(value) => {
            parent.insert(key.to_owned(), value);
        }
        None => {
            parent
                .remove(key)
                .unwrap_or_else(|| panic!("{name}: the example has no {pointer}"));
        }
    }
    body
}

#[test]
fn bad_bodies_fail_validation_and_parsing() {
    let too_long = "я".repeat(201);
    let cases: Vec<(&str, &str, &str, Option<Value>)> = vec![
        // SNILS
        (
            "record_snils",
            "missing check number",
            "/snils",
            Some(json!("112-233-445")),
        ),
        (
            "record_snils",
            "not digits",
            "/snils",
            Some(json!("abc-def-ghi jk")),
        ),
        (
            "record_snils",
            "three check digits",
            "/snils",
            Some(json!("112-233-445 955")),
        ),
        (
            "link_guardian",
            "a number, not a string",
            "/guardian_snils",
            Some(json!(11223344595_u64)),
        ),
        (
            "register_death",
            "bad SNILS of the person",
            "/person/snils",
            Some(json!("112-233-445")),
        ),
        // unknown fields: event fields the registry fills in itself, misspellings
        (
            "enroll",
            "organization_id is taken from the class",
            "/organization_id",
            Some(json!("0199a1f0-3c2e-7b41-9d20-5e6f7a8b9c01")),
        ),
        (
            "enroll",
            "stay_mode is taken from the class",
            "/stay_mode",
            Some(json!("full_day")),
        ),
        (
            "enroll",
            "unknown field of the programme",
            "/programme/profile",
            Some(json!("физико-математический")),
        ),
        (
            "record_exam_result",
            "grade is taken from the enrollment",
            "/grade",
            Some(json!(11)),
        ),
        (
            "change_class_capacity",
            "organization_id is taken from the class",
            "/organization_id",
            Some(json!("0199a1f0-3c2e-7b41-9d20-5e6f7a8b9c02")),
        ),
        (
            "unassign_teacher",
            "organization_id is taken from the class",
            "/organization_id",
            Some(json!("0199a1f0-3c2e-7b41-9d20-5e6f7a8b9c01")),
        ),
        (
            "register_death",
            "the death event's learner_id",
            "/learner_id",
            Some(json!("0199a1f2-4b10-7a55-9e02-1c2d3e4f5a6b")),
        ),
        (
            "register_death",
            "a person named two ways",
            "/person/learner_id",
            Some(json!("0199a1f2-4b10-7a55-9e02-1c2d3e4f5a6b")),
        ),
        (
            "register_birth",
            "misspelt field",
            "/birthdate",
            Some(json!("2025-03-10")),
        ),
        // missing required fields
        ("reject_application", "no reason", "/reason", None),
        ("open_class", "no capacity", "/capacity", None),
        ("register_death", "no person", "/person", None),
        ("enroll", "no order", "/order", None),
        ("enroll", "no programme name", "/programme/name", None),
        ("leave", "no order date", "/order/date", None),
        ("register_birth", "no record office", "/record/office", None),
        ("link_guardian", "no consent", "/consent", None),
        ("assign_teacher", "no subjects", "/subjects", None),
        (
            "assign_teacher",
            "no organization",
            "/organization_id",
            None,
        ),
        ("unassign_teacher", "no last day", "/until", None),
        // values outside the vocabularies and types
        ("record_mark", "mark 6", "/value", Some(json!("6"))),
        (
            "record_mark",
            "a number for a mark",
            "/value",
            Some(json!(5)),
        ),
        ("correct_mark", "mark 1", "/value", Some(json!("1"))),
        (
            "transfer",
            "unknown transfer kind",
            "/kind",
            Some(json!("to_another_school")),
        ),
        (
            "enroll",
            "education form with a hyphen",
            "/form",
            Some(json!("full-time")),
        ),
        (
            "enroll",
            "primary as a string",
            "/primary",
            Some(json!("yes")),
        ),
        (
            "register_organization",
            "unknown level",
            "/levels",
            Some(json!(["general", "university"])),
        ),
        (
            "register_organization",
            "levels not a list",
            "/levels",
            Some(json!("general")),
        ),
        (
            "assign_teacher",
            "subjects as one string",
            "/subjects",
            Some(json!("Русский язык")),
        ),
        (
            "assign_teacher",
            "an empty subject",
            "/subjects",
            Some(json!(["Русский язык", ""])),
        ),
        (
            "assign_teacher",
            "a blank account",
            "/teacher",
            Some(json!("  ")),
        ),
        (
            "unassign_teacher",
            "not a date",
            "/until",
            Some(json!("26.12.2025")),
        ),
        (
            "change_class_capacity",
            "capacity as a string",
            "/capacity",
            Some(json!("28")),
        ),
        (
            "change_class_capacity",
            "capacity beyond u16",
            "/capacity",
            Some(json!(70000)),
        ),
        (
            "record_attendance",
            "negative lesson",
            "/lesson",
            Some(json!(-1)),
        ),
        (
            "record_exam_result",
            "test score beyond u8",
            "/test_score",
            Some(json!(256)),
        ),
        // text, dates, ids, academic years
        (
            "reject_application",
            "blank reason",
            "/reason",
            Some(json!("   ")),
        ),
        (
            "reject_application",
            "reason of 201 characters",
            "/reason",
            Some(json!(too_long)),
        ),
        (
            "reject_application",
            "control character",
            "/reason",
            Some(json!("Нет\u{0}мест")),
        ),
        (
            "withdraw_application",
            "not a date",
            "/withdrawn_on",
            Some(json!("20.10.2025")),
        ),
        (
            "withdraw_application",
            "30 February",
            "/withdrawn_on",
            Some(json!("2025-02-30")),
        ),
        (
            "withdraw_application",
            "not a UUID",
            "/application_id",
            Some(json!("application-1")),
        ),
        (
            "open_class",
            "academic year with a hyphen",
            "/academic_year",
            Some(json!("2025-2026")),
        ),
        (
            "open_class",
            "academic year of one year",
            "/academic_year",
            Some(json!("2025")),
        ),
    ];
    let mut problems = Vec::new();
    for (name, what, pointer, change) in cases {
        let body = changed(name, pointer, change);
        if validator(name).is_valid(&body) {
            problems.push(format!("{name}, {what}: the schema accepts {body}"));
        }
        if let Ok(parsed) = parse(name, &body) {
            problems.push(format!("{name}, {what}: the API accepts it as {parsed}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The schemas check the shape of a SNILS; its check number (and that an academic year's two
/// years are consecutive) is checked by the API, as the `$defs` descriptions say.
#[test]
fn the_snils_check_number_is_left_to_the_api() {
    let body = changed("record_snils", "/snils", Some(json!("112-233-445 96")));
    assert!(validator("record_snils").is_valid(&body));
    let refused = parse("record_snils", &body).expect_err("a wrong check number is refused");
    assert!(refused.contains("check number"), "{refused}");

    let body = changed("open_class", "/academic_year", Some(json!("2025/2027")));
    assert!(validator("open_class").is_valid(&body));
    assert!(parse("open_class", &body).is_err());
}

#[test]
fn defaults_and_generated_ids_may_be_left_out() {
    let cases: &[(&str, &[&str])] = &[
        (
            "enroll",
            &[
                "/enrollment_id",
                "/primary",
                "/form",
                "/programme/adapted",
                "/application_id",
                "/age_exemption",
            ],
        ),
        ("transfer", &["/to_enrollment_id"]),
        ("leave", &["/certificate", "/certificate/series"]),
        (
            "register_birth",
            &["/learner_id", "/certificate", "/snils", "/child/patronymic"],
        ),
        ("record_exam_result", &["/test_score"]),
        ("change_class_capacity", &["/reason"]),
        ("withdraw_application", &["/reason"]),
    ];
    for (name, pointers) in cases {
        for pointer in *pointers {
            let body = changed(name, pointer, None);
            let errors = errors(name, &body);
            assert!(
                errors.is_empty(),
                "{name} without {pointer}:\n{}",
                errors.join("\n")
            );
            parse(name, &body).unwrap_or_else(|e| panic!("{name} without {pointer}: {e}"));
        }
    }
    let enrolled = parse("enroll", &changed("enroll", "/primary", None)).expect("parses");
    assert_eq!(enrolled["primary"], true);
    let enrolled = parse("enroll", &changed("enroll", "/form", None)).expect("parses");
    assert_eq!(enrolled["form"], "full_time");
    let enrolled = parse("enroll", &changed("enroll", "/programme/adapted", None)).expect("parses");
    assert_eq!(enrolled["programme"]["adapted"], false);
    // The id of the receiving enrollment is generated only for a move to another organization.
    let moved = parse("transfer", &changed("transfer", "/to_enrollment_id", None)).expect("parses");
    assert!(moved["to_enrollment_id"].is_string());
}
