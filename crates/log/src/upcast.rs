//! Upcasting: events stored with an earlier schema version of their type are read in the current
//! one.
//!
//! The stored bytes never change (the chain and the signatures cover them). When an event is
//! decoded, the `data` of a type whose stored `schema_version` is older than
//! [`Event::current_schema_version`] goes through this chain one version at a time, then
//! deserializes into today's type; the decoded envelope carries the current version and, in
//! [`crate::Envelope::stored_schema_version`], the one its bytes have. `decide`, the read models,
//! the feed and the federal topic see only current shapes; an event of the current version takes
//! the direct path and costs nothing more.
//!
//! Evolving a type (`docs/events.md`, "How an event type evolves"): write its new schema file
//! beside the old, raise its version in [`Event::current_schema_version`], and add here the step
//! from the old version's `data` to the new one. A step is a pure function of the event's own
//! stored JSON; it may not read the log, the state or a clock, so every reader upcasts an event
//! the same way. A test checks that every version below the current one has its step.

use contingent_domain::Event;
use serde_json::{Map, Value};

use crate::LogError;

/// One step of a type's chain: `data` at version `from` to version `from + 1`.
pub struct Step {
    /// The event type.
    pub type_name: &'static str,
    /// The version the step reads.
    pub from: u16,
    /// Rewrites `data` in place; an error names what the stored data lacked.
    pub apply: fn(&mut Map<String, Value>) -> Result<(), String>,
}

/// Every step, by type and version.
pub const STEPS: &[Step] = &[
    Step {
        type_name: "enrolled",
        from: 1,
        apply: enrolled_v1_to_v2,
    },
    Step {
        type_name: "exam_result_recorded",
        from: 1,
        apply: exam_result_v1_to_v2,
    },
];

/// `enrolled` v2 added the optional `secondary_reason`; a v1 enrollment has none (version 1
/// did not ask why a secondary enrollment was made), which v2 reads as "not recorded".
fn enrolled_v1_to_v2(_data: &mut Map<String, Value>) -> Result<(), String> {
    Ok(())
}

/// `exam_result_recorded` v2 holds the result in one field: `{"test_score": n}` for an ЕГЭ,
/// `{"mark": "5"}` for an ОГЭ or ГВЭ, where v1 had the optional `test_score` and `mark`. Every
/// v1 result the registry accepted had exactly one of them.
fn exam_result_v1_to_v2(data: &mut Map<String, Value>) -> Result<(), String> {
    let test_score = data.remove("test_score");
    let mark = data.remove("mark");
    let result = match (test_score, mark) {
        (Some(score), None) => serde_json::json!({ "test_score": score }),
        (None, Some(mark)) => serde_json::json!({ "mark": mark }),
        (Some(_), Some(_)) => return Err("both a test score and a mark".into()),
        (None, None) => return Err("neither a test score nor a mark".into()),
    };
    data.insert("result".into(), result);
    Ok(())
}

/// The stored version of the event in `object` (a stored envelope) when it is older than the
/// current version of its type.
pub(crate) fn outdated(object: &Map<String, Value>) -> Option<(String, u16)> {
    let type_name = object.get("type")?.as_str()?;
    let version = u16::try_from(object.get("schema_version")?.as_u64()?).ok()?;
    (version < Event::current_schema_version(type_name)).then(|| (type_name.to_owned(), version))
}

/// Brings the envelope in `object` to the current version of its type: its `data` through the
/// chain, its `schema_version` to the current one. Returns the version it was stored with, or
/// none when it was current already.
pub(crate) fn upcast(object: &mut Map<String, Value>) -> Result<Option<u16>, LogError> {
    let Some((type_name, stored)) = outdated(object) else {
        return Ok(None);
    };
    let current = Event::current_schema_version(&type_name);
    let data = object
        .get_mut("data")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| LogError::Codec(format!("{type_name} v{stored}: no data")))?;
    for version in stored..current {
        let step = STEPS
            .iter()
            .find(|s| s.type_name == type_name && s.from == version)
            .ok_or_else(|| LogError::Codec(format!("no upcaster from {type_name} v{version}")))?;
        (step.apply)(data).map_err(|why| {
            LogError::Codec(format!("{type_name} v{version} cannot be upcast: {why}"))
        })?;
    }
    object.insert("schema_version".into(), Value::from(current));
    Ok(Some(stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_version_below_the_current_one_has_its_step() {
        let types = Event::TYPES;
        for &ty in types {
            for version in 1..Event::current_schema_version(ty) {
                assert!(
                    STEPS.iter().any(|s| s.type_name == ty && s.from == version),
                    "{ty} v{version} has no step to v{}",
                    version + 1
                );
            }
        }
        for step in STEPS {
            assert!(types.contains(&step.type_name), "{}", step.type_name);
            assert!(step.from < Event::current_schema_version(step.type_name));
        }
    }

    fn envelope(data: Value) -> Map<String, Value> {
        json!({ "type": "exam_result_recorded", "schema_version": 1, "data": data })
            .as_object()
            .cloned()
            .expect("object")
    }

    #[test]
    fn a_v1_exam_result_becomes_one_result_field() {
        let mut ege = envelope(json!({ "subject": "Математика", "test_score": 78 }));
        assert_eq!(upcast(&mut ege).expect("upcast"), Some(1));
        assert_eq!(ege["schema_version"], json!(2));
        assert_eq!(
            ege["data"],
            json!({ "subject": "Математика", "result": { "test_score": 78 } })
        );
        let mut oge = envelope(json!({ "mark": "4" }));
        upcast(&mut oge).expect("upcast");
        assert_eq!(oge["data"], json!({ "result": { "mark": "4" } }));
        // Already current: untouched.
        let mut current = oge.clone();
        assert_eq!(upcast(&mut current).expect("current"), None);
        assert_eq!(current, oge);
    }

    #[test]
    fn a_v1_exam_result_no_version_could_write_is_a_codec_error() {
        for data in [json!({}), json!({ "test_score": 78, "mark": "4" })] {
            let mut e = envelope(data);
            assert!(matches!(upcast(&mut e), Err(LogError::Codec(_))));
        }
    }
}
