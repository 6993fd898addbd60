//! The published JSON Schemas (`events-schema/`) and the event catalogue (`docs/events.md`)
//! checked against the code that writes the events.
//!
//! - every event type of [`Event::TYPES`] has a schema file, and no schema file names another type;
//! - a realistic example of every event variant, with its optional fields present and absent, is
//!   sealed by [`Envelope::seal_all`] and its stored bytes validate against the envelope schema
//!   (offline: every per-type schema is registered by its `$id`, nothing is fetched);
//! - the schemas' properties and `required` lists are exactly the keys serde writes;
//! - the schemas' enumerations are exactly the domain's vocabularies;
//! - the schemas reject what they must (unknown fields, bad SNILS, wrong marks, missing fields...);
//! - `docs/events.md` is generated from the schemas: the test fails when it is stale. Regenerate it
//!   with `CONTINGENT_BLESS=1 cargo test -p contingent-log --test schemas`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use contingent_domain::{
    AcademicYear, ApplicationId, ApplicationRejected, ApplicationSubmitted, ApplicationWithdrawn,
    Attendance, AttendanceRecorded, BirthRegistered, Certificate, ChainHash, CivilRecord,
    ClassCapacityChanged, ClassId, ClassOpened, Consent, DeathRegistered, Document, EducationForm,
    Enrolled, EnrollmentId, Event, ExamForm, ExamResultRecorded, ExamScore, FullName,
    GuardianLinked, LearnerId, LearnerRegistered, LeaveReason, Left, Level, LogMigrated, Mark,
    MarkCorrected, MarkId, MarkKind, MarkRecorded, Order, OrganizationId, OrganizationKind,
    OrganizationRegistered, PersonalDataErased, Priority, Programme, Relation, SecondaryReason,
    Sex, Snils, SnilsRecorded, SourceKind, StayMode, TeacherAssigned, TeacherUnassigned, Text,
    TransferKind, Transferred,
};
use contingent_log::{
    seal_personal, verify_chain, DataKey, Envelope, Hash, Metadata, RecordedEvent, Source,
    GENESIS_HASH,
};
use jsonschema::{Draft, Resource, Retrieve, Uri, Validator};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// The base of every schema's `$id`. An identifier, not a location: nothing is fetched from it.
const BASE: &str = "https://contingent.example/events-schema/";
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
const BLESS_VAR: &str = "CONTINGENT_BLESS";

// ---------------------------------------------------------------------------------------------
// Loading the schemas

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Schemas {
    envelope: Value,
    /// Every file under `events-schema/events/`, by (type, version).
    events: BTreeMap<(String, u16), Value>,
    /// The order of the keys of every object of every file, by `$id` and JSON pointer
    /// (`serde_json::Map` sorts keys; the catalogue lists fields in the order the schemas do).
    key_order: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Schemas {
    /// The schema of the version events of `ty` are written with now.
    fn event(&self, ty: &str) -> &Value {
        let version = Event::current_schema_version(ty);
        self.events
            .get(&(ty.to_owned(), version))
            .unwrap_or_else(|| panic!("no schema events-schema/events/{ty}.v{version}.schema.json"))
    }
}

fn read_json(path: &Path) -> (Value, BTreeMap<String, Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let ordered: Ordered = serde_json::from_str(&text).expect("JSON");
    let mut order = BTreeMap::new();
    ordered.collect("", &mut order);
    (value, order)
}

/// A JSON document that keeps the order of object keys, for nothing but that order.
enum Ordered {
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Scalar,
}

impl Ordered {
    fn collect(&self, pointer: &str, out: &mut BTreeMap<String, Vec<String>>) {
        match self {
            Self::Object(entries) => {
                out.insert(
                    pointer.to_owned(),
                    entries.iter().map(|(k, _)| k.clone()).collect(),
                );
                for (key, value) in entries {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    value.collect(&format!("{pointer}/{escaped}"), out);
                }
            }
            Self::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.collect(&format!("{pointer}/{i}"), out);
                }
            }
            Self::Scalar => {}
        }
    }
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered::Object(entries))
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// Splits `<type>.v<N>.schema.json`.
fn parse_schema_file_name(name: &str) -> Option<(String, u16)> {
    let stem = name.strip_suffix(".schema.json")?;
    let (ty, version) = stem.rsplit_once(".v")?;
    let version: u16 = version.parse().ok()?;
    let well_formed = !ty.is_empty() && ty.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    well_formed.then(|| (ty.to_owned(), version))
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let dir = workspace_root().join("events-schema");
        let (envelope, order) = read_json(&dir.join("envelope.v1.schema.json"));
        let mut key_order = BTreeMap::from([(id_of(&envelope).to_owned(), order)]);
        let mut events = BTreeMap::new();
        let listing = std::fs::read_dir(dir.join("events")).expect("events-schema/events/ exists");
        for entry in listing {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let key = parse_schema_file_name(&name).unwrap_or_else(|| {
                panic!("events-schema/events/{name} is not named <type>.v<N>.schema.json")
            });
            let (schema, order) = read_json(&path);
            key_order.insert(id_of(&schema).to_owned(), order);
            events.insert(key, schema);
        }
        Schemas {
            envelope,
            events,
            key_order,
        }
    })
}

fn id_of(schema: &Value) -> &str {
    schema["$id"].as_str().expect("every schema has an $id")
}

/// A retriever that fetches nothing: every reference must resolve to a registered schema.
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

fn options() -> jsonschema::ValidationOptions {
    let mut options = jsonschema::options();
    options
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .with_retriever(Offline);
    options
}

/// The envelope schema with every per-type schema registered by its `$id`.
fn envelope_validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let s = schemas();
        let mut options = options();
        for schema in s.events.values() {
            let resource = Resource::from_contents(schema.clone()).expect("a schema resource");
            options.with_resource(id_of(schema), resource);
        }
        options
            .build(&s.envelope)
            .unwrap_or_else(|e| panic!("the envelope schema does not compile: {e}"))
    })
}

/// Each per-type schema on its own: what a consumer uses to validate `data`.
fn data_validator(ty: &str) -> &'static Validator {
    static VALIDATORS: OnceLock<BTreeMap<String, Validator>> = OnceLock::new();
    let all = VALIDATORS.get_or_init(|| {
        schemas()
            .events
            .iter()
            .filter(|((ty, version), _)| *version == Event::current_schema_version(ty))
            .map(|((ty, version), schema)| {
                let validator = options()
                    .build(schema)
                    .unwrap_or_else(|e| panic!("{ty}.v{version} does not compile: {e}"));
                (ty.clone(), validator)
            })
            .collect()
    });
    &all[ty]
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} (at '{}', schema '{}')", e.instance_path, e.schema_path))
        .collect()
}

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

fn is_object_schema(node: &Value) -> bool {
    node.get("type").and_then(Value::as_str) == Some("object") && node.get("properties").is_some()
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

fn properties_of(node: &Value) -> &Map<String, Value> {
    node["properties"]
        .as_object()
        .expect("an object schema has properties")
}

fn reported_by(ty: &str) -> Vec<SourceKind> {
    schemas().event(ty)["x-reported-by"]
        .as_array()
        .unwrap_or_else(|| panic!("{ty}: no x-reported-by"))
        .iter()
        .map(|k| {
            let k = k.as_str().expect("a source kind name");
            *SourceKind::ALL
                .iter()
                .find(|s| s.as_str() == k)
                .unwrap_or_else(|| panic!("{ty}: x-reported-by names an unknown source kind {k}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Examples of every event variant

fn t(s: &str) -> Text {
    Text::parse(s).expect("valid text")
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
}

fn snils(s: &str) -> Snils {
    Snils::parse(s).expect("valid SNILS")
}

fn mark(s: &str) -> Mark {
    Mark::parse(s).expect("valid mark")
}

fn year(s: &str) -> AcademicYear {
    AcademicYear::parse(s).expect("valid academic year")
}

fn order(number: &str, date: NaiveDate) -> Order {
    Order {
        number: t(number),
        date,
    }
}

fn name(surname: &str, name: &str, patronymic: Option<&str>) -> FullName {
    FullName {
        surname: t(surname),
        name: t(name),
        patronymic: patronymic.map(t),
    }
}

/// The ids of one small story: a school and a kindergarten, two learners, their classes.
struct Story {
    school: OrganizationId,
    kindergarten: OrganizationId,
    college: OrganizationId,
    class_1a: ClassId,
    class_2a: ClassId,
    class_1b: ClassId,
    group: ClassId,
    class_9a: ClassId,
    class_11a: ClassId,
    college_group: ClassId,
    maria: LearnerId,
    ivan: LearnerId,
    anna: LearnerId,
    application: ApplicationId,
    application_2: ApplicationId,
    enrollment: EnrollmentId,
    enrollment_2: EnrollmentId,
    mark: MarkId,
}

impl Story {
    fn new() -> Self {
        Self {
            school: OrganizationId::generate(),
            kindergarten: OrganizationId::generate(),
            college: OrganizationId::generate(),
            class_1a: ClassId::generate(),
            class_2a: ClassId::generate(),
            class_1b: ClassId::generate(),
            group: ClassId::generate(),
            class_9a: ClassId::generate(),
            class_11a: ClassId::generate(),
            college_group: ClassId::generate(),
            maria: LearnerId::generate(),
            ivan: LearnerId::generate(),
            anna: LearnerId::generate(),
            application: ApplicationId::generate(),
            application_2: ApplicationId::generate(),
            enrollment: EnrollmentId::generate(),
            enrollment_2: EnrollmentId::generate(),
            mark: MarkId::generate(),
        }
    }
}

/// Every variant with every optional field present (several variants twice, where the domain
/// makes optional fields exclusive: an ЕГЭ result has a test score, an ОГЭ result a mark).
fn full_examples(s: &Story) -> Vec<Event> {
    vec![
        Event::OrganizationRegistered(OrganizationRegistered {
            organization_id: s.school,
            name: t("МБОУ «Средняя общеобразовательная школа № 5»"),
            municipality: t("г. Барнаул"),
            kind: OrganizationKind::School,
            levels: vec![Level::General, Level::Additional],
        }),
        Event::ClassOpened(ClassOpened {
            class_id: s.group,
            organization_id: s.kindergarten,
            academic_year: year("2025/2026"),
            level: Level::Preschool,
            grade: 4,
            name: t("Средняя группа «Солнышко»"),
            capacity: 25,
            stay_mode: Some(StayMode::FullDay),
        }),
        Event::ClassCapacityChanged(ClassCapacityChanged {
            class_id: s.class_1a,
            organization_id: s.school,
            capacity: 28,
            reason: Some(t("Решение учредителя от 15.08.2025 № 112")),
        }),
        Event::TeacherAssigned(TeacherAssigned {
            class_id: s.class_1a,
            organization_id: s.school,
            teacher: t("teacher-0042"),
            teacher_name: t("Петрова Ольга Ивановна"),
            subjects: vec![t("Русский язык"), t("Литература"), t("Математика")],
            from: d(2025, 9, 1),
        }),
        Event::TeacherUnassigned(TeacherUnassigned {
            class_id: s.class_1a,
            organization_id: s.school,
            teacher: t("teacher-0042"),
            until: d(2025, 12, 26),
        }),
        Event::BirthRegistered(BirthRegistered {
            learner_id: s.maria,
            record: CivilRecord {
                number: t("110202522000001234"),
                date: d(2018, 11, 9),
                office: t("Отдел ЗАГС Центрального района г. Барнаула"),
            },
            child: name("Иванова", "Мария", Some("Сергеевна")),
            sex: Sex::Female,
            birth_date: d(2018, 11, 3),
            certificate: Some(Document {
                kind: t("birth_certificate"),
                series: Some(t("II-ТО")),
                number: t("654321"),
            }),
            snils: Some(snils("112-233-445 95")),
        }),
        Event::LearnerRegistered(LearnerRegistered {
            learner_id: s.anna,
            person: name("Ким", "Анна", Some("Викторовна")),
            sex: Sex::Female,
            birth_date: d(2010, 2, 14),
            document: Document {
                kind: t("foreign_birth_certificate"),
                series: Some(t("AB")),
                number: t("0012345"),
            },
            snils: Some(Snils::from_number(123_456_789).expect("in range")),
        }),
        Event::SnilsRecorded(SnilsRecorded {
            learner_id: s.ivan,
            snils: Snils::from_number(987_654_321).expect("in range"),
        }),
        Event::DeathRegistered(DeathRegistered {
            learner_id: s.ivan,
            record: CivilRecord {
                number: t("170202522000000077"),
                date: d(2026, 3, 2),
                office: t("Отдел ЗАГС Индустриального района г. Барнаула"),
            },
            death_date: d(2026, 2, 27),
        }),
        Event::GuardianLinked(GuardianLinked {
            learner_id: s.maria,
            guardian_snils: Snils::from_number(45_678_912).expect("in range"),
            guardian: name("Иванова", "Елена", Some("Петровна")),
            relation: Relation::Mother,
            consent: Consent {
                given_on: d(2025, 8, 28),
                document: t("Согласие № 15 от 28.08.2025"),
            },
        }),
        Event::ApplicationSubmitted(ApplicationSubmitted {
            application_id: s.application,
            learner_id: s.maria,
            organization_id: s.school,
            level: Level::General,
            academic_year: year("2025/2026"),
            grade: 1,
            class_id: Some(s.class_1a),
            submitted_on: d(2025, 4, 1),
            desired_start: Some(d(2025, 9, 1)),
            priority: Priority::Preferential,
        }),
        Event::ApplicationWithdrawn(ApplicationWithdrawn {
            application_id: s.application_2,
            learner_id: s.maria,
            organization_id: s.kindergarten,
            withdrawn_on: d(2025, 4, 10),
            reason: Some(t("Семья переехала в другой район")),
        }),
        Event::ApplicationRejected(ApplicationRejected {
            application_id: s.application_2,
            learner_id: s.anna,
            organization_id: s.college,
            rejected_on: d(2025, 8, 20),
            reason: t("Нет свободных мест"),
        }),
        Event::Enrolled(Enrolled {
            enrollment_id: s.enrollment,
            learner_id: s.maria,
            organization_id: s.school,
            class_id: s.class_1a,
            level: Level::General,
            grade: 1,
            academic_year: year("2025/2026"),
            programme: Programme {
                name: t("Основная общеобразовательная программа начального общего образования"),
                adapted: true,
                focus: Some(t("general")),
            },
            primary: false,
            secondary_reason: Some(SecondaryReason::NetworkProgramme),
            form: EducationForm::FullTime,
            enrolled_on: d(2025, 9, 1),
            order: order("123-у", d(2025, 8, 25)),
            application_id: Some(s.application),
            age_exemption: Some(t("Разрешение учредителя № 7 от 20.08.2025")),
            stay_mode: Some(StayMode::ShortStay),
        }),
        Event::Transferred(Transferred {
            learner_id: s.maria,
            kind: TransferKind::NextGrade,
            from_enrollment_id: s.enrollment,
            from_organization_id: s.school,
            from_class_id: s.class_1a,
            to_enrollment_id: s.enrollment,
            to_organization_id: s.school,
            to_class_id: s.class_2a,
            grade: 2,
            academic_year: year("2026/2027"),
            transferred_on: d(2026, 9, 1),
            order: order("201-п", d(2026, 5, 29)),
        }),
        Event::MarkRecorded(MarkRecorded {
            mark_id: s.mark,
            learner_id: s.maria,
            class_id: s.class_1a,
            subject: t("Русский язык"),
            lesson_date: d(2025, 12, 26),
            kind: MarkKind::Period,
            work: t("term mark"),
            period: Some(t("term-2")),
            value: mark("5"),
            weight: 10,
            teacher: t("Петрова Ольга Ивановна"),
        }),
        Event::MarkCorrected(MarkCorrected {
            mark_id: s.mark,
            learner_id: s.maria,
            class_id: s.class_1a,
            previous: mark("5"),
            value: mark("4"),
            reason: t("Ошибка при вводе"),
            teacher: t("Петрова Ольга Ивановна"),
        }),
        Event::AttendanceRecorded(AttendanceRecorded {
            learner_id: s.maria,
            class_id: s.class_1a,
            date: d(2025, 10, 6),
            lesson: Some(3),
            status: Attendance::Ill,
        }),
        Event::ExamResultRecorded(ExamResultRecorded {
            learner_id: s.anna,
            form: ExamForm::Ege,
            subject: t("Математика (профильный уровень)"),
            exam_date: d(2026, 6, 4),
            primary_points: 25,
            result: ExamScore::TestScore(86),
            grade: 11,
        }),
        Event::ExamResultRecorded(ExamResultRecorded {
            learner_id: s.ivan,
            form: ExamForm::Oge,
            subject: t("Русский язык"),
            exam_date: d(2025, 5, 27),
            primary_points: 29,
            result: ExamScore::Mark(mark("5")),
            grade: 9,
        }),
        Event::Left(Left {
            learner_id: s.anna,
            enrollment_id: s.enrollment_2,
            organization_id: s.school,
            class_id: s.class_11a,
            left_on: d(2026, 6, 30),
            reason: LeaveReason::Graduation,
            order: order("310-о", d(2026, 6, 30)),
            certificate: Some(Certificate {
                series: Some(t("22")),
                number: t("0123456789012"),
                issued_on: d(2026, 6, 30),
            }),
        }),
        Event::PersonalDataErased(PersonalDataErased {
            learner_id: s.anna,
            reason: t("152-FZ art. 21 p. 7: the retention period ended"),
            erased_on: d(2036, 7, 1),
        }),
        Event::LogMigrated(LogMigrated {
            from_head_position: 34_000_000,
            from_head_hash: ChainHash::parse(&"ab".repeat(32)).expect("a hash"),
            from_log: t("Kafka topic contingent.region-22.events"),
            reason: t("personal fields sealed under learners' data keys"),
            migrated_on: d(2027, 1, 10),
        }),
    ]
}

/// Every variant with every optional field absent, and optional objects with their own optional
/// fields absent.
fn minimal_examples(s: &Story) -> Vec<Event> {
    vec![
        Event::OrganizationRegistered(OrganizationRegistered {
            organization_id: s.kindergarten,
            name: t("МБДОУ «Детский сад № 12»"),
            municipality: t("Бийский район"),
            kind: OrganizationKind::Kindergarten,
            levels: vec![Level::Preschool],
        }),
        Event::ClassOpened(ClassOpened {
            class_id: s.class_1b,
            organization_id: s.school,
            academic_year: year("2025/2026"),
            level: Level::General,
            grade: 1,
            name: t("1Б"),
            capacity: 25,
            stay_mode: None,
        }),
        Event::ClassCapacityChanged(ClassCapacityChanged {
            class_id: s.college_group,
            organization_id: s.college,
            capacity: 30,
            reason: None,
        }),
        // No optional fields: the fewest subjects the registry accepts.
        Event::TeacherAssigned(TeacherAssigned {
            class_id: s.college_group,
            organization_id: s.college,
            teacher: t("t7"),
            teacher_name: t("Smith J."),
            subjects: vec![t("Физическая культура")],
            from: d(2026, 1, 12),
        }),
        Event::TeacherUnassigned(TeacherUnassigned {
            class_id: s.college_group,
            organization_id: s.college,
            teacher: t("t7"),
            until: d(2026, 5, 29),
        }),
        Event::BirthRegistered(BirthRegistered {
            learner_id: s.ivan,
            record: CivilRecord {
                number: t("110202522000004321"),
                date: d(2010, 5, 20),
                office: t("Отдел ЗАГС г. Бийска"),
            },
            child: name("Smith", "Ivan", None),
            sex: Sex::Male,
            birth_date: d(2010, 5, 17),
            certificate: None,
            snils: None,
        }),
        Event::LearnerRegistered(LearnerRegistered {
            learner_id: s.anna,
            person: name("Ким", "Анна", None),
            sex: Sex::Female,
            birth_date: d(2010, 2, 14),
            document: Document {
                kind: t("passport"),
                series: None,
                number: t("123456"),
            },
            snils: None,
        }),
        Event::SnilsRecorded(SnilsRecorded {
            learner_id: s.anna,
            snils: snils("001-001-998 00"),
        }),
        Event::DeathRegistered(DeathRegistered {
            learner_id: s.anna,
            record: CivilRecord {
                number: t("1"),
                date: d(2026, 1, 10),
                office: t("ЗАГС"),
            },
            death_date: d(2026, 1, 9),
        }),
        Event::GuardianLinked(GuardianLinked {
            learner_id: s.ivan,
            guardian_snils: snils("112-233-445 95"),
            guardian: name("Smith", "John", None),
            relation: Relation::Trustee,
            consent: Consent {
                given_on: d(2024, 9, 2),
                document: t("б/н"),
            },
        }),
        Event::ApplicationSubmitted(ApplicationSubmitted {
            application_id: s.application_2,
            learner_id: s.maria,
            organization_id: s.kindergarten,
            level: Level::Preschool,
            academic_year: year("2021/2022"),
            grade: 3,
            class_id: None,
            submitted_on: d(2019, 1, 15),
            desired_start: None,
            priority: Priority::OutOfTurn,
        }),
        Event::ApplicationWithdrawn(ApplicationWithdrawn {
            application_id: s.application,
            learner_id: s.ivan,
            organization_id: s.school,
            withdrawn_on: d(2025, 5, 1),
            reason: None,
        }),
        Event::ApplicationRejected(ApplicationRejected {
            application_id: s.application,
            learner_id: s.ivan,
            organization_id: s.school,
            rejected_on: d(2025, 5, 2),
            reason: t("Отсутствие свободных мест"),
        }),
        Event::Enrolled(Enrolled {
            enrollment_id: s.enrollment_2,
            learner_id: s.anna,
            organization_id: s.school,
            class_id: s.class_9a,
            level: Level::General,
            grade: 9,
            academic_year: year("2025/2026"),
            programme: Programme {
                name: t("Основная общеобразовательная программа основного общего образования"),
                adapted: false,
                focus: None,
            },
            primary: false,
            secondary_reason: None,
            form: EducationForm::Family,
            enrolled_on: d(2025, 9, 15),
            order: order("15", d(2025, 9, 12)),
            application_id: None,
            age_exemption: None,
            stay_mode: None,
        }),
        Event::Transferred(Transferred {
            learner_id: s.anna,
            kind: TransferKind::ToOtherOrganization,
            from_enrollment_id: s.enrollment_2,
            from_organization_id: s.school,
            from_class_id: s.class_9a,
            to_enrollment_id: s.enrollment,
            to_organization_id: s.college,
            to_class_id: s.college_group,
            grade: 1,
            academic_year: year("2026/2027"),
            transferred_on: d(2026, 9, 1),
            order: order("77-к", d(2026, 8, 28)),
        }),
        Event::MarkRecorded(MarkRecorded {
            mark_id: MarkId::generate(),
            learner_id: s.ivan,
            class_id: s.class_9a,
            subject: t("Физическая культура"),
            lesson_date: d(2025, 10, 7),
            kind: MarkKind::Current,
            work: t("oral answer"),
            period: None,
            value: mark("pass"),
            weight: 1,
            teacher: t("Сидоров П. П."),
        }),
        Event::MarkCorrected(MarkCorrected {
            mark_id: s.mark,
            learner_id: s.ivan,
            class_id: s.class_9a,
            previous: mark("pass"),
            value: mark("fail"),
            reason: t("Норматив не сдан"),
            teacher: t("Сидоров П. П."),
        }),
        Event::AttendanceRecorded(AttendanceRecorded {
            learner_id: s.ivan,
            class_id: s.class_9a,
            date: d(2025, 10, 8),
            lesson: None,
            status: Attendance::Unexcused,
        }),
        Event::ExamResultRecorded(ExamResultRecorded {
            learner_id: s.ivan,
            form: ExamForm::Gve,
            subject: t("Математика"),
            exam_date: d(2026, 5, 26),
            primary_points: 0,
            result: ExamScore::Mark(mark("2")),
            grade: 9,
        }),
        Event::Left(Left {
            learner_id: s.ivan,
            enrollment_id: s.enrollment,
            organization_id: s.school,
            class_id: s.class_9a,
            left_on: d(2025, 12, 30),
            reason: LeaveReason::MovedAway,
            order: order("400", d(2025, 12, 29)),
            certificate: None,
        }),
        // Optional objects present with their own optional fields absent.
        Event::BirthRegistered(BirthRegistered {
            learner_id: s.anna,
            record: CivilRecord {
                number: t("110202522000000555"),
                date: d(2019, 6, 4),
                office: t("Отдел ЗАГС г. Рубцовска"),
            },
            child: name("Ким", "Анна", None),
            sex: Sex::Female,
            birth_date: d(2019, 6, 1),
            certificate: Some(Document {
                kind: t("birth_certificate"),
                series: None,
                number: t("777000"),
            }),
            snils: None,
        }),
        Event::Left(Left {
            learner_id: s.maria,
            enrollment_id: s.enrollment,
            organization_id: s.college,
            class_id: s.college_group,
            left_on: d(2029, 6, 30),
            reason: LeaveReason::Graduation,
            order: order("55-в", d(2029, 6, 28)),
            certificate: Some(Certificate {
                series: None,
                number: t("112224 0001234"),
                issued_on: d(2029, 6, 30),
            }),
        }),
        Event::PersonalDataErased(PersonalDataErased {
            learner_id: s.maria,
            reason: t("court decision 2-123/2039"),
            erased_on: d(2039, 7, 1),
        }),
        Event::LogMigrated(LogMigrated {
            from_head_position: 1,
            from_head_hash: ChainHash::parse(&"0".repeat(64)).expect("a hash"),
            from_log: t("embedded log data/log.db"),
            reason: t("migration"),
            migrated_on: d(2027, 1, 10),
        }),
    ]
}

fn source_id(kind: SourceKind, s: &Story) -> String {
    match kind {
        SourceKind::CivilRegistry => "zags-22-0102".to_owned(),
        SourceKind::Portal => "epgu-region-22".to_owned(),
        SourceKind::Organization => s.school.to_string(),
        SourceKind::ExamCentre => "rcoi-22".to_owned(),
        SourceKind::Region => "minobr-22".to_owned(),
    }
}

/// Seals events one by one, each with its own metadata (the source its schema says reports it,
/// an idempotency key on every other event, a recorded time with and without fractions of a
/// second), chaining each to the one before.
fn seal_one_by_one(events: Vec<Event>, s: &Story) -> Vec<RecordedEvent> {
    let start = Utc
        .with_ymd_and_hms(2025, 9, 1, 6, 0, 0)
        .single()
        .expect("a valid instant");
    let mut prev = GENESIS_HASH;
    let mut out = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let kinds = reported_by(event.type_name());
        let kind = kinds[i % kinds.len()];
        let meta = Metadata {
            source: Source {
                kind,
                id: source_id(kind, s),
            },
            actor: format!("user:{}@{}", i + 1, kind.as_str()),
            idempotency_key: (i % 2 == 0).then(|| format!("req-{:04}", i + 1)),
            request_fingerprint: (i % 2 == 0).then(|| format!("{:064x}", i + 1)),
        };
        let offset = TimeDelta::seconds(i as i64 * 3_600)
            + if i % 3 == 0 {
                TimeDelta::zero()
            } else {
                TimeDelta::nanoseconds(i as i64 * 123_456_789)
            };
        let mut sealed = Envelope::seal_all(vec![event], &meta, i as u64 + 1, prev, start + offset)
            .expect("the event seals");
        let record = sealed.pop().expect("one event sealed");
        prev = record.hash;
        out.push(record);
    }
    out
}

/// Seals events in one batch, as the registry does for one command, at the current time.
fn seal_in_one_batch(events: Vec<Event>) -> Vec<RecordedEvent> {
    let meta = Metadata {
        source: Source {
            kind: SourceKind::Region,
            id: "minobr-22".into(),
        },
        actor: "system:import".into(),
        idempotency_key: None,
        request_fingerprint: None,
    };
    Envelope::seal_all(events, &meta, 1, GENESIS_HASH, Utc::now()).expect("the events seal")
}

/// Seals events one by one with their personal fields under one learner's data key.
fn sealed_personal(events: Vec<Event>) -> Vec<RecordedEvent> {
    let key = std::sync::Arc::new(DataKey::generate(LearnerId::generate()));
    let meta = Metadata {
        source: Source {
            kind: SourceKind::Region,
            id: "minobr-22".into(),
        },
        actor: "system:import".into(),
        idempotency_key: None,
        request_fingerprint: None,
    };
    Envelope::seal_all_with(events, &meta, 1, GENESIS_HASH, Utc::now(), |e| {
        seal_personal(e, |_| Ok(key.clone()))
    })
    .expect("the events seal")
}

fn stored_json(record: &RecordedEvent) -> Value {
    serde_json::from_slice(&record.body).expect("the stored body is JSON")
}

fn all_sealed() -> Vec<RecordedEvent> {
    let story = Story::new();
    let mut all = seal_one_by_one(full_examples(&story), &story);
    all.extend(seal_in_one_batch(minimal_examples(&story)));
    all
}

fn types_of(events: &[Event]) -> BTreeSet<&'static str> {
    events.iter().map(Event::type_name).collect()
}

// ---------------------------------------------------------------------------------------------
// The schema files against the code

#[test]
fn every_event_type_has_exactly_one_schema_file_per_version_and_no_other_type_has_one() {
    let s = schemas();
    let code: BTreeSet<&str> = Event::TYPES.iter().copied().collect();
    assert_eq!(
        code.len(),
        Event::TYPES.len(),
        "Event::TYPES lists a type twice"
    );
    let files: BTreeSet<&str> = s.events.keys().map(|(ty, _)| ty.as_str()).collect();
    assert_eq!(
        files, code,
        "schema files (left) and Event::TYPES (right) differ"
    );
    let v1: BTreeSet<&str> = s
        .events
        .keys()
        .filter(|(_, v)| *v == 1)
        .map(|(ty, _)| ty.as_str())
        .collect();
    assert_eq!(v1, code, "every type has a version 1");
    for (ty, version) in s.events.keys() {
        for earlier in 1..*version {
            assert!(
                s.events.contains_key(&(ty.clone(), earlier)),
                "{ty}.v{version} without v{earlier}"
            );
        }
    }

    let envelope_types: Vec<&str> = s.envelope["properties"]["type"]["enum"]
        .as_array()
        .expect("the envelope's type is an enum")
        .iter()
        .map(|v| v.as_str().expect("a type name"))
        .collect();
    assert_eq!(
        envelope_types,
        Event::TYPES,
        "the envelope's type enum is Event::TYPES, in order"
    );
}

#[test]
fn schema_files_are_well_formed_2020_12_schemas_with_ids_and_descriptions() {
    let s = schemas();
    assert_eq!(s.envelope["$schema"], DRAFT_2020_12);
    assert_eq!(id_of(&s.envelope), format!("{BASE}envelope.v1.schema.json"));
    for ((ty, version), schema) in &s.events {
        let file = format!("{ty}.v{version}.schema.json");
        assert_eq!(schema["$schema"], DRAFT_2020_12, "{file}");
        assert_eq!(id_of(schema), format!("{BASE}events/{file}"), "{file}: $id");
        assert!(
            schema["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{file}: description"
        );
        assert!(
            !reported_by(ty).is_empty(),
            "{file}: x-reported-by is empty"
        );
        options()
            .build(schema)
            .unwrap_or_else(|e| panic!("{file} does not compile: {e}"));
    }
    let mut documents: Vec<(String, &Value)> = vec![("envelope.v1".to_owned(), &s.envelope)];
    documents.extend(
        s.events
            .iter()
            .map(|((ty, v), schema)| (format!("{ty}.v{v}"), schema)),
    );
    for (file, doc) in documents {
        check_objects(&file, doc, doc, "");
        if let Some(defs) = doc["$defs"].as_object() {
            for (name, def) in defs {
                check_objects(&file, doc, def, &format!("$defs/{name}"));
                assert!(
                    def["title"].is_string(),
                    "{file}: $defs/{name} has no title"
                );
                assert!(
                    def["description"].is_string(),
                    "{file}: $defs/{name} has no description"
                );
            }
        }
    }
}

/// Every object is closed (`additionalProperties: false`), lists only its own properties as
/// required, and every property has a description.
fn check_objects(file: &str, doc: &Value, node: &Value, path: &str) {
    if !is_object_schema(node) {
        return;
    }
    assert_eq!(
        node["additionalProperties"],
        json!(false),
        "{file}: {path} is not closed"
    );
    let properties = properties_of(node);
    for required in required_of(node) {
        assert!(
            properties.contains_key(&required),
            "{file}: {path} requires unknown {required}"
        );
    }
    for (name, property) in properties {
        assert!(
            property["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{file}: {path}/{name} has no description"
        );
        let _ = resolve(doc, property);
    }
}

#[test]
fn shared_definitions_are_identical_in_every_file() {
    let s = schemas();
    let mut seen: BTreeMap<String, (String, &Value)> = BTreeMap::new();
    let mut documents: Vec<(String, &Value)> = vec![("envelope.v1".to_owned(), &s.envelope)];
    documents.extend(
        s.events
            .iter()
            .filter(|((_, v), _)| *v == 1)
            .map(|((ty, _), d)| (format!("{ty}.v1"), d)),
    );
    for (file, doc) in documents {
        for (name, def) in doc["$defs"].as_object().into_iter().flatten() {
            match seen.get(name) {
                Some((first, earlier)) => {
                    assert_eq!(
                        *earlier, def,
                        "$defs/{name} differs between {first} and {file}"
                    )
                }
                None => {
                    seen.insert(name.clone(), (file.clone(), def));
                }
            }
        }
    }
}

fn enum_values(def: &Value) -> Vec<String> {
    def["enum"]
        .as_array()
        .expect("an enum definition")
        .iter()
        .map(|v| v.as_str().expect("enum values are strings").to_owned())
        .collect()
}

fn strings<T: Copy>(all: &[T], f: impl Fn(T) -> &'static str) -> Vec<String> {
    all.iter().map(|v| f(*v).to_owned()).collect()
}

#[test]
fn enumerations_are_exactly_the_domain_vocabularies() {
    let expected: BTreeMap<&str, Vec<String>> = BTreeMap::from([
        (
            "organization_kind",
            strings(OrganizationKind::ALL, OrganizationKind::as_str),
        ),
        ("level", strings(Level::ALL, Level::as_str)),
        ("sex", strings(Sex::ALL, Sex::as_str)),
        ("stay_mode", strings(StayMode::ALL, StayMode::as_str)),
        (
            "education_form",
            strings(EducationForm::ALL, EducationForm::as_str),
        ),
        ("relation", strings(Relation::ALL, Relation::as_str)),
        ("priority", strings(Priority::ALL, Priority::as_str)),
        (
            "transfer_kind",
            strings(TransferKind::ALL, TransferKind::as_str),
        ),
        ("mark_kind", strings(MarkKind::ALL, MarkKind::as_str)),
        ("attendance", strings(Attendance::ALL, Attendance::as_str)),
        ("exam_form", strings(ExamForm::ALL, ExamForm::as_str)),
        (
            "leave_reason",
            strings(LeaveReason::ALL, LeaveReason::as_str),
        ),
        ("source_kind", strings(SourceKind::ALL, SourceKind::as_str)),
        (
            "secondary_reason",
            strings(SecondaryReason::ALL, SecondaryReason::as_str),
        ),
    ]);
    let s = schemas();
    let mut found = BTreeSet::new();
    for doc in std::iter::once(&s.envelope).chain(s.events.values()) {
        for (name, def) in doc["$defs"].as_object().into_iter().flatten() {
            if def.get("enum").is_none() {
                continue;
            }
            found.insert(name.as_str());
            if name == "mark" {
                let values = enum_values(def);
                for value in &values {
                    assert_eq!(
                        Mark::parse(value).map(Mark::as_str),
                        Ok(value.as_str()),
                        "mark {value}"
                    );
                }
                assert_eq!(values, ["2", "3", "4", "5", "pass", "fail"]);
                continue;
            }
            let want = expected
                .get(name.as_str())
                .unwrap_or_else(|| panic!("$defs/{name}: which vocabulary?"));
            assert_eq!(&enum_values(def), want, "$defs/{name} against the domain");
        }
    }
    let missing: Vec<_> = expected.keys().filter(|k| !found.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "vocabularies no schema uses: {missing:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Sealed events against the schemas

#[test]
fn every_event_variant_sealed_by_the_log_validates_against_the_envelope_schema() {
    let story = Story::new();
    let full = full_examples(&story);
    let minimal = minimal_examples(&story);
    let all_types: BTreeSet<&str> = Event::TYPES.iter().copied().collect();
    assert_eq!(types_of(&full), all_types, "full examples cover every type");
    assert_eq!(
        types_of(&minimal),
        all_types,
        "minimal examples cover every type"
    );

    let mut records = seal_one_by_one(full, &story);
    records.extend(seal_in_one_batch(minimal));
    let mut failures = Vec::new();
    for record in &records {
        let instance = stored_json(record);
        let ty = record.envelope.event.type_name();
        for e in errors(envelope_validator(), &instance) {
            failures.push(format!("{ty} at {}: envelope: {e}", record.position()));
        }
        for e in errors(data_validator(ty), &instance["data"]) {
            failures.push(format!("{ty} at {}: data alone: {e}", record.position()));
        }
    }
    assert!(
        failures.is_empty(),
        "valid events rejected:\n{}",
        failures.join("\n")
    );
}

/// Collects the keys serde wrote for every object, by type and path (`""` for `data` itself,
/// `"record"`, `"programme"`...), following the schema into nested objects.
fn collect_keys(
    doc: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
    acc: &mut BTreeMap<String, Vec<BTreeSet<String>>>,
) {
    let schema = resolve(doc, schema);
    if !is_object_schema(schema) {
        return;
    }
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{path}: serde wrote a non-object"));
    acc.entry(path.to_owned())
        .or_default()
        .push(object.keys().cloned().collect());
    let properties = properties_of(schema);
    for (key, v) in object {
        if let Some(property) = properties.get(key) {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            collect_keys(doc, property, v, &child, acc);
        }
    }
}

/// Every object path in a schema: `""` and each nested object property.
fn object_paths(doc: &Value, schema: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
    let schema = resolve(doc, schema);
    if !is_object_schema(schema) {
        return;
    }
    out.insert(path.to_owned(), schema.clone());
    for (key, property) in properties_of(schema) {
        let child = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        object_paths(doc, property, &child, out);
    }
}

#[test]
fn schema_properties_and_required_lists_are_exactly_what_serde_writes() {
    let mut by_type: BTreeMap<&str, BTreeMap<String, Vec<BTreeSet<String>>>> = BTreeMap::new();
    for record in all_sealed() {
        let ty = record.envelope.event.type_name();
        let doc = schemas().event(ty);
        let data = stored_json(&record)["data"].clone();
        collect_keys(doc, doc, &data, "", by_type.entry(ty).or_default());
    }
    let mut problems = Vec::new();
    for ty in Event::TYPES {
        let doc = schemas().event(ty);
        let mut paths = BTreeMap::new();
        object_paths(doc, doc, "", &mut paths);
        let seen = &by_type[ty];
        for (path, schema) in &paths {
            let Some(occurrences) = seen.get(path) else {
                problems.push(format!("{ty}: no example writes the object {path:?}"));
                continue;
            };
            let properties: BTreeSet<String> = properties_of(schema).keys().cloned().collect();
            let required = required_of(schema);
            let union: BTreeSet<String> = occurrences.iter().flatten().cloned().collect();
            let intersection: BTreeSet<String> = occurrences
                .iter()
                .skip(1)
                .fold(occurrences[0].clone(), |acc, keys| {
                    acc.intersection(keys).cloned().collect()
                });
            if union != properties {
                problems.push(format!(
                    "{ty} {path:?}: serde writes {union:?}, the schema has properties {properties:?}"
                ));
            }
            if intersection != required {
                problems.push(format!(
                    "{ty} {path:?}: serde always writes {intersection:?}, the schema requires {required:?}"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "schemas and serde disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_envelope_fields_are_exactly_what_serde_writes() {
    let envelope = &schemas().envelope;
    let properties: BTreeSet<String> = properties_of(envelope).keys().cloned().collect();
    let required = required_of(envelope);
    let mut records = all_sealed();
    records.extend(sealed_personal(full_examples(&Story::new())));
    let written: Vec<BTreeSet<String>> = records
        .iter()
        .map(|r| {
            stored_json(r)
                .as_object()
                .expect("an object")
                .keys()
                .cloned()
                .collect()
        })
        .collect();
    let union: BTreeSet<String> = written.iter().flatten().cloned().collect();
    let intersection = written
        .iter()
        .skip(1)
        .fold(written[0].clone(), |acc, keys| {
            acc.intersection(keys).cloned().collect::<BTreeSet<_>>()
        });
    assert_eq!(union, properties);
    assert_eq!(intersection, required);
}

#[test]
fn the_stored_bytes_chain_as_the_readme_says() {
    let records = all_sealed();
    let (one_by_one, batch) = records.split_at(full_examples(&Story::new()).len());
    for chain in [one_by_one, batch] {
        assert_eq!(verify_chain(chain), Ok(chain.len() as u64));
        let mut prev = "0".repeat(64);
        for record in chain {
            let json = stored_json(record);
            assert_eq!(
                json["prev_hash"],
                json!(prev),
                "prev_hash at {}",
                record.position()
            );
            prev = Hash::of(&record.body).to_hex();
            assert_eq!(prev, record.hash.to_hex());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The schemas reject what they must

/// A sealed example of one type, as stored JSON: every optional field present.
fn example(ty: &str) -> Value {
    let story = Story::new();
    let event = full_examples(&story)
        .into_iter()
        .find(|e| e.type_name() == ty)
        .unwrap_or_else(|| panic!("no example of {ty}"));
    let record = seal_one_by_one(vec![event], &story)
        .pop()
        .expect("one record");
    let json = stored_json(&record);
    let errors = errors(envelope_validator(), &json);
    assert!(
        errors.is_empty(),
        "the unmodified {ty} example is rejected: {errors:?}"
    );
    json
}

fn set(instance: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let object = instance
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{parent} is not an object"));
    object.insert(key.to_owned(), value);
}

fn remove(instance: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let object = instance
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{parent} is not an object"));
    assert!(object.remove(key).is_some(), "{pointer} was not there");
}

/// Applies the change, then asserts the envelope schema rejects the result (and, where the
/// serialized form is not stricter than serde's input, that serde refuses it too).
fn assert_rejected(ty: &str, what: &str, change: impl FnOnce(&mut Value), serde_too: bool) {
    let mut instance = example(ty);
    change(&mut instance);
    // The envelope checks the data of version 1; a later version's data is checked against its
    // own file, as a consumer does.
    let mut found = errors(envelope_validator(), &instance);
    if instance["schema_version"] != json!(1) && instance["data"].is_object() {
        let named = (
            instance["type"].as_str().unwrap_or_default().to_owned(),
            instance["schema_version"].as_u64().unwrap_or(0) as u16,
        );
        match schemas().events.get(&named) {
            Some(schema) => {
                let validator = options().build(schema).expect("the schema compiles");
                found.extend(errors(&validator, &instance["data"]));
            }
            None => found.push(format!("no schema for {} v{}", named.0, named.1)),
        }
    }
    assert!(
        !found.is_empty(),
        "{ty}: the schema accepts {what}: {instance:#}"
    );
    if serde_too {
        assert!(
            serde_json::from_value::<Envelope>(instance).is_err(),
            "{ty}: the schema refuses {what} but serde accepts it"
        );
    }
}

#[test]
fn an_unknown_field_is_rejected() {
    assert_rejected(
        "mark_recorded",
        "an unknown field in data",
        |v| set(v, "/data/comment", json!("молодец")),
        true,
    );
    assert_rejected(
        "birth_registered",
        "an unknown field in a nested object",
        |v| set(v, "/data/record/page", json!("12")),
        true,
    );
    assert_rejected(
        "enrolled",
        "an unknown field in the source",
        |v| set(v, "/source/name", json!("школа")),
        true,
    );
    assert_rejected(
        "enrolled",
        "an unknown envelope field",
        |v| set(v, "/signature", json!("x")),
        false,
    );
}

#[test]
fn a_malformed_snils_is_rejected() {
    for bad in [
        "11223344595",
        "112-233-44595",
        "112 233 445 95",
        "112-233-445 9",
        "abc-def-ghi jk",
        "",
    ] {
        assert_rejected(
            "guardian_linked",
            &format!("SNILS {bad:?}"),
            |v| set(v, "/data/guardian_snils", json!(bad)),
            false,
        );
    }
    assert_rejected(
        "snils_recorded",
        "a SNILS as a number",
        |v| set(v, "/data/snils", json!(11223344595_u64)),
        true,
    );
    assert_rejected(
        "birth_registered",
        "a null SNILS",
        |v| set(v, "/data/snils", Value::Null),
        false,
    );
}

#[test]
fn a_mark_off_the_scale_is_rejected() {
    for bad in [
        json!("6"),
        json!("1"),
        json!("Pass"),
        json!("5+"),
        json!(5),
        json!(null),
    ] {
        assert_rejected(
            "mark_recorded",
            &format!("mark {bad}"),
            |v| set(v, "/data/value", bad.clone()),
            true,
        );
    }
    assert_rejected(
        "mark_corrected",
        "a previous mark \"0\"",
        |v| set(v, "/data/previous", json!("0")),
        true,
    );
    assert_rejected(
        "exam_result_recorded",
        "an exam mark \"excellent\"",
        |v| set(v, "/data/mark", json!("excellent")),
        true,
    );
}

#[test]
fn a_missing_required_field_is_rejected() {
    assert_rejected(
        "mark_recorded",
        "data without learner_id",
        |v| remove(v, "/data/learner_id"),
        true,
    );
    assert_rejected(
        "enrolled",
        "a programme without its name",
        |v| remove(v, "/data/programme/name"),
        true,
    );
    assert_rejected(
        "birth_registered",
        "a record without the office",
        |v| remove(v, "/data/record/office"),
        true,
    );
    assert_rejected(
        "left",
        "an envelope without prev_hash",
        |v| remove(v, "/prev_hash"),
        true,
    );
    assert_rejected(
        "left",
        "an envelope without data",
        |v| remove(v, "/data"),
        true,
    );
    assert_rejected(
        "transferred",
        "an envelope without a source",
        |v| remove(v, "/source"),
        true,
    );
    assert_rejected(
        "attendance_recorded",
        "a learner fact without the envelope's learner_id",
        |v| remove(v, "/learner_id"),
        false,
    );
}

#[test]
fn other_malformed_values_are_rejected() {
    assert_rejected(
        "enrolled",
        "an unknown event type",
        |v| set(v, "/type", json!("enrolled_twice")),
        true,
    );
    assert_rejected(
        "attendance_recorded",
        "an unknown absence reason",
        |v| set(v, "/data/status", json!("sick")),
        true,
    );
    assert_rejected(
        "class_opened",
        "an unknown level",
        |v| set(v, "/data/level", json!("Preschool")),
        true,
    );
    assert_rejected(
        "enrolled",
        "an unknown source kind",
        |v| set(v, "/source/kind", json!("school")),
        true,
    );
    assert_rejected(
        "application_rejected",
        "empty text",
        |v| set(v, "/data/reason", json!("")),
        true,
    );
    assert_rejected(
        "application_rejected",
        "text with a leading space",
        |v| set(v, "/data/reason", json!(" мест нет")),
        false,
    );
    assert_rejected(
        "application_rejected",
        "text with a trailing no-break space",
        |v| set(v, "/data/reason", json!("мест нет\u{a0}")),
        false,
    );
    assert_rejected(
        "application_rejected",
        "text with a control character",
        |v| set(v, "/data/reason", json!("мест\u{7}нет")),
        true,
    );
    assert_rejected(
        "application_rejected",
        "text of 201 characters",
        |v| set(v, "/data/reason", json!("я".repeat(201))),
        true,
    );
    assert_rejected(
        "death_registered",
        "a date that does not exist",
        |v| set(v, "/data/death_date", json!("2026-02-30")),
        true,
    );
    assert_rejected(
        "death_registered",
        "a date in another notation",
        |v| set(v, "/data/death_date", json!("27.02.2026")),
        true,
    );
    assert_rejected(
        "enrolled",
        "an academic year with a dash",
        |v| set(v, "/data/academic_year", json!("2025-2026")),
        true,
    );
    assert_rejected(
        "enrolled",
        "an id that is not a UUID",
        |v| set(v, "/data/class_id", json!("1А")),
        true,
    );
    assert_rejected(
        "enrolled",
        "an uppercase UUID",
        |v| {
            let upper = v["data"]["class_id"]
                .as_str()
                .expect("an id")
                .to_uppercase();
            set(v, "/data/class_id", json!(upper));
        },
        false,
    );
    assert_rejected(
        "mark_recorded",
        "a negative weight",
        |v| set(v, "/data/weight", json!(-1)),
        true,
    );
    assert_rejected(
        "mark_recorded",
        "a weight above 255",
        |v| set(v, "/data/weight", json!(256)),
        true,
    );
    assert_rejected(
        "mark_recorded",
        "a fractional weight",
        |v| set(v, "/data/weight", json!(1.5)),
        true,
    );
    assert_rejected(
        "class_opened",
        "a capacity above 65535",
        |v| set(v, "/data/capacity", json!(70_000)),
        true,
    );
    assert_rejected(
        "organization_registered",
        "levels as a string",
        |v| set(v, "/data/levels", json!("general")),
        true,
    );
    assert_rejected(
        "organization_registered",
        "a learner_id on a reference fact",
        |v| {
            set(
                v,
                "/learner_id",
                json!("0198e0c8-7d7c-7c2a-9a63-5d1f0e2b3c4d"),
            )
        },
        false,
    );
    assert_rejected(
        "enrolled",
        "an uppercase prev_hash",
        |v| set(v, "/prev_hash", json!("AB".repeat(32))),
        false,
    );
    assert_rejected(
        "enrolled",
        "a short prev_hash",
        |v| set(v, "/prev_hash", json!("00")),
        true,
    );
    assert_rejected(
        "enrolled",
        "position 0",
        |v| set(v, "/position", json!(0)),
        false,
    );
    assert_rejected(
        "enrolled",
        "a recorded time with an offset",
        |v| set(v, "/recorded_at", json!("2025-09-01T09:00:00+03:00")),
        false,
    );
    assert_rejected(
        "enrolled",
        "the data of another type",
        |v| set(v, "/type", json!("mark_recorded")),
        true,
    );
}

#[test]
fn malformed_teacher_assignments_are_rejected() {
    assert_rejected(
        "teacher_assigned",
        "subjects as one string",
        |v| set(v, "/data/subjects", json!("Математика")),
        true,
    );
    assert_rejected(
        "teacher_assigned",
        "an empty subject",
        |v| set(v, "/data/subjects", json!(["Математика", ""])),
        true,
    );
    assert_rejected(
        "teacher_assigned",
        "no teacher name",
        |v| remove(v, "/data/teacher_name"),
        true,
    );
    assert_rejected(
        "teacher_assigned",
        "a learner_id on a reference fact",
        |v| {
            set(
                v,
                "/learner_id",
                json!("0198e0c8-7d7c-7c2a-9a63-5d1f0e2b3c4d"),
            )
        },
        false,
    );
    assert_rejected(
        "teacher_unassigned",
        "no last day",
        |v| remove(v, "/data/until"),
        true,
    );
    assert_rejected(
        "teacher_unassigned",
        "the subjects of an assignment",
        |v| set(v, "/data/subjects", json!(["Математика"])),
        true,
    );
}

// ---------------------------------------------------------------------------------------------
// Value types: the schema patterns against the domain parsers

fn def_validator(name: &str) -> &'static Validator {
    static VALIDATORS: OnceLock<BTreeMap<String, Validator>> = OnceLock::new();
    let all = VALIDATORS.get_or_init(|| {
        let mut out = BTreeMap::new();
        for doc in schemas().events.values() {
            for (name, def) in doc["$defs"].as_object().into_iter().flatten() {
                if !out.contains_key(name) && !is_object_schema(def) {
                    let validator = options()
                        .build(def)
                        .unwrap_or_else(|e| panic!("$defs/{name}: {e}"));
                    out.insert(name.clone(), validator);
                }
            }
        }
        out
    });
    &all[name]
}

fn text_chars() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        4 => proptest::char::range('а', 'я'),
        2 => proptest::char::range('0', '9'),
        1 => Just('«'),
        1 => Just('№'),
        1 => Just('𝔸'),
        1 => Just('\u{feff}'),
        1 => Just('\u{200b}'),
        2 => prop_oneof![
            Just(' '), Just('\t'), Just('\n'), Just('\u{a0}'), Just('\u{85}'), Just('\u{1680}'),
            Just('\u{2003}'), Just('\u{2028}'), Just('\u{202f}'), Just('\u{3000}'),
        ],
        1 => prop_oneof![Just('\u{0}'), Just('\u{1b}'), Just('\u{7f}'), Just('\u{9f}')],
        1 => any::<char>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The Text pattern accepts a string exactly when `Text::parse` takes it as it is.
    #[test]
    fn the_text_schema_agrees_with_text_parse(chars in proptest::collection::vec(text_chars(), 0..12)) {
        let input: String = chars.into_iter().collect();
        let domain = Text::parse(&input).is_ok_and(|t| t.as_str() == input);
        prop_assert_eq!(def_validator("text").is_valid(&json!(input)), domain, "{:?}", input);
    }

    /// The length bound counts characters, as `Text` does.
    #[test]
    fn the_text_length_bound_counts_characters(c in prop_oneof![Just('a'), Just('я'), Just('𝔸')], n in 195usize..206) {
        let input: String = std::iter::repeat_n(c, n).collect();
        prop_assert_eq!(def_validator("text").is_valid(&json!(input)), n <= Text::MAX);
        prop_assert_eq!(Text::parse(&input).is_ok(), n <= Text::MAX);
    }

    /// Every SNILS the domain writes matches the SNILS pattern.
    #[test]
    fn every_written_snils_matches_the_pattern(n in 0u32..=999_999_999) {
        let written = Snils::from_number(n).expect("in range").to_string();
        prop_assert!(def_validator("snils").is_valid(&json!(written)), "{}", written);
    }

    /// Every academic year the domain writes matches the pattern, and dates are written as the
    /// date format says.
    #[test]
    fn academic_years_and_dates_match(start in 1900u16..2200, day in 0i64..100_000) {
        let written = AcademicYear::starting(start).to_string();
        prop_assert!(def_validator("academic_year").is_valid(&json!(written)), "{}", written);
        let date = d(1900, 1, 1) + TimeDelta::days(day);
        let written = serde_json::to_value(date).expect("a date serializes");
        prop_assert!(def_validator("date").is_valid(&written), "{}", written);
    }
}

// ---------------------------------------------------------------------------------------------
// The catalogue: docs/events.md

fn catalogue_path() -> PathBuf {
    workspace_root().join("docs/events.md")
}

fn anchor(title: &str) -> String {
    title.to_lowercase()
}

/// The type column of the catalogue.
fn type_label(doc: &Value, property: &Value) -> String {
    if let Some(r) = property.get("$ref").and_then(Value::as_str) {
        let def = resolve(doc, property);
        let title = def["title"]
            .as_str()
            .unwrap_or_else(|| panic!("{r} has no title"));
        return format!("[{title}](#{})", anchor(title));
    }
    match property["type"].as_str() {
        Some("integer") => {
            let min = property["minimum"].as_u64().expect("a minimum");
            match property["maximum"].as_u64().expect("a maximum") {
                u64::MAX => format!("integer ≥ {min}"),
                max => format!("integer {min}–{max}"),
            }
        }
        Some("array") => format!("array of {}", type_label(doc, &property["items"])),
        Some("string") if property.get("enum").is_some() => {
            "string, one of the event types".to_owned()
        }
        Some("string") => match property["format"].as_str() {
            Some(format) => format!("string ({format})"),
            None => "string".to_owned(),
        },
        Some(other) => other.to_owned(),
        None => panic!("no type for {property}"),
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Table rows for the properties of the object schema at `pointer` in `doc`, in the schema's
/// order, nested objects as `parent.child`.
fn field_rows(doc: &Value, pointer: &str, prefix: &str, out: &mut String) {
    let schema = doc
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no {pointer}"));
    let required = required_of(schema);
    let order = &schemas().key_order[id_of(doc)][&format!("{pointer}/properties")];
    for name in order {
        let property = &properties_of(schema)[name];
        let full = format!("{prefix}{name}");
        out.push_str(&format!(
            "| `{full}` | {} | {} | {} |\n",
            type_label(doc, property),
            if required.contains(name) { "yes" } else { "no" },
            cell(property["description"].as_str().expect("a description")),
        ));
        let target = resolve(doc, property);
        if is_object_schema(target) {
            let r = property["$ref"].as_str().expect("nested objects are $defs");
            field_rows(doc, r.trim_start_matches('#'), &format!("{full}."), out);
        }
    }
}

/// How a type evolves: the catalogue's fixed section, after the envelope.
const EVOLVING: &str = "## How an event type evolves\n\n\
Stored events never change: the hash chain and the writers' signatures cover their bytes. A type \
changes by a new version beside the old one:\n\n\
1. Write `events-schema/events/<type>.v<N+1>.schema.json` beside version N, which stays (the log \
holds events of it), and give the type in `crates/domain` its new shape.\n\
2. Raise the type's version in `Event::current_schema_version`: new events are written with it.\n\
3. Add the step from version N's `data` to version N+1's in `crates/log/src/upcast.rs`: a pure \
function of the event's stored `data` (no log, state or clock), so every reader upcasts an event \
alike. A test fails while a version below the current one has no step.\n\n\
Events are upcast as they are decoded, a version at a time along the chain, so `decide`, the \
writer's state, the read models, the API's history and feed and the federal topic see only current \
shapes; an event of the current version is decoded directly and costs nothing more. A served event \
stored with an older version says so: `schema_version` is the current version, \
`stored_schema_version` the stored one, and `hash` the SHA-256 of the stored bytes, which `verify` \
checks as they are. Stored data that no step can upcast (data no version of the registry wrote) is \
a codec error, reported like damaged bytes.\n\n\
A log written before a change must keep reading the same: `tests/fixtures/log-2026-11/` is a log \
an earlier version wrote (with `exam_result_recorded` at version 1), and a test checks that it \
verifies, that the writer replays it to the same state and decides on it, and that every read \
model rebuilt from it holds the rows it held.\n\n";

const TABLE_HEAD: &str = "| field | type | required | description |\n|---|---|---|---|\n";

fn render_catalogue() -> String {
    let s = schemas();
    let mut out = String::new();
    out.push_str(
        "# Event catalogue\n\n\
         <!-- Generated from events-schema/ by crates/log/tests/schemas.rs: do not edit by hand.\n     \
         Change the schemas, then run `CONTINGENT_BLESS=1 cargo test -p contingent-log --test schemas`. -->\n\n\
         Every lifecycle fact the registry records is one event in the log. This catalogue lists every \
         event type: the fact it records, who reports it, and the fields of its `data`. The \
         machine-readable form is the JSON Schemas in [`events-schema/`](../events-schema/README.md) \
         (draft 2020-12); this page is generated from them, and a test fails when the two disagree.\n\n\
         Field names are as they appear in the JSON; a nested object's fields are listed as \
         `parent.field`, and \"required\" is relative to the parent object. An optional field is \
         absent when it has no value (it is never `null`). \"Reported by\" names the usual source \
         kinds (`source.kind` in the envelope); it is documentation, not a rule the schemas enforce.\n\n",
    );

    out.push_str("## Envelope\n\n");
    out.push_str(&format!(
        "{} Schema: [`events-schema/envelope.v1.schema.json`](../events-schema/envelope.v1.schema.json).\n\n",
        s.envelope["description"].as_str().expect("a description")
    ));
    out.push_str(TABLE_HEAD);
    field_rows(&s.envelope, "", "", &mut out);
    out.push('\n');

    out.push_str(EVOLVING);
    out.push_str("## Event types\n\n| type | schema | reported by | fact |\n|---|---|---|---|\n");
    for ty in Event::TYPES {
        let doc = s.event(ty);
        let kinds: Vec<String> = reported_by(ty)
            .iter()
            .map(|k| format!("`{}`", k.as_str()))
            .collect();
        let versions: Vec<String> = (1..=Event::current_schema_version(ty))
            .map(|v| format!("[v{v}](../events-schema/events/{ty}.v{v}.schema.json)"))
            .collect();
        out.push_str(&format!(
            "| [`{ty}`](#{ty}) | {} | {} | {} |\n",
            versions.join(", "),
            kinds.join(", "),
            cell(doc["description"].as_str().expect("a description")),
        ));
    }
    out.push('\n');

    for ty in Event::TYPES {
        let doc = s.event(ty);
        let kinds: Vec<String> = reported_by(ty)
            .iter()
            .map(|k| format!("`{}`", k.as_str()))
            .collect();
        out.push_str(&format!(
            "## `{ty}`\n\n{}\n\n",
            doc["description"].as_str().expect("a description")
        ));
        let current = Event::current_schema_version(ty);
        let earlier: Vec<String> = (1..current)
            .map(|v| format!("[v{v}](../events-schema/events/{ty}.v{v}.schema.json)"))
            .collect();
        let earlier = if earlier.is_empty() {
            String::new()
        } else {
            format!(
                " Events stored with version {} are read upcast to it ([how](#how-an-event-type-evolves)); the table lists the fields of the current version.",
                earlier.join(", ")
            )
        };
        out.push_str(&format!(
            "Reported by: {}. Schema: [`events-schema/events/{ty}.v{current}.schema.json`](../events-schema/events/{ty}.v{current}.schema.json).{earlier}\n\n",
            kinds.join(", ")
        ));
        out.push_str(TABLE_HEAD);
        field_rows(doc, "", "", &mut out);
        out.push('\n');
    }

    out.push_str(
        "## Value types\n\nThe types the tables link to, as defined in the schemas' `$defs`.\n\n",
    );
    let mut defs: BTreeMap<String, Value> = BTreeMap::new();
    for doc in std::iter::once(&s.envelope).chain(s.events.values()) {
        for (_, def) in doc["$defs"].as_object().into_iter().flatten() {
            let title = def["title"].as_str().expect("a title").to_owned();
            defs.entry(title).or_insert_with(|| def.clone());
        }
    }
    for (title, def) in &defs {
        out.push_str(&format!(
            "### {title}\n\n{}\n\n",
            def["description"].as_str().expect("a description")
        ));
        let mut facts = Vec::new();
        match def["type"].as_str() {
            Some("object") => {
                facts.push("An object; its fields are listed where it is used.".to_owned())
            }
            Some(kind) => {
                if let Some(values) = def["enum"].as_array() {
                    let values: Vec<String> = values
                        .iter()
                        .map(|v| format!("`{}`", v.as_str().unwrap_or_default()))
                        .collect();
                    facts.push(format!("A {kind}, one of {}.", values.join(", ")));
                } else {
                    facts.push(format!("A {kind}."));
                }
                if let Some(format) = def["format"].as_str() {
                    facts.push(format!("Format `{format}`."));
                }
                if let (Some(min), Some(max)) =
                    (def["minLength"].as_u64(), def["maxLength"].as_u64())
                {
                    facts.push(format!("{min} to {max} characters."));
                }
                if let Some(pattern) = def["pattern"].as_str() {
                    facts.push(format!("Pattern `{pattern}`."));
                }
            }
            None => {}
        }
        out.push_str(&facts.join(" "));
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[test]
fn the_catalogue_is_generated_from_the_current_schemas() {
    let rendered = render_catalogue();
    let path = catalogue_path();
    if std::env::var_os(BLESS_VAR).is_some() {
        std::fs::write(&path, &rendered).expect("docs/events.md is writable");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == rendered,
        "docs/events.md is stale: regenerate it with `{BLESS_VAR}=1 cargo test -p contingent-log --test schemas`"
    );
}

/// The catalogue as a reader sees it: a section per `## `type`` heading, the first cell of each
/// table row and its "required" cell.
fn catalogue_sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            current = heading
                .strip_prefix('`')
                .and_then(|h| h.strip_suffix('`'))
                .map(str::to_owned);
            if let Some(ty) = &current {
                assert!(
                    sections.insert(ty.clone(), BTreeMap::new()).is_none(),
                    "two sections for {ty}"
                );
            }
            continue;
        }
        let (Some(ty), Some(row)) = (&current, line.strip_prefix("| `")) else {
            continue;
        };
        let cells: Vec<&str> = row.split(" | ").collect();
        let field = cells[0].trim_end_matches('`').to_owned();
        let required = cells.get(2).copied().unwrap_or_default().to_owned();
        sections
            .get_mut(ty)
            .expect("a section")
            .insert(field, required);
    }
    sections
}

#[test]
fn the_catalogue_has_a_section_per_type_listing_exactly_the_schema_fields() {
    let text = if std::env::var_os(BLESS_VAR).is_some() {
        render_catalogue() // the file is being rewritten by the test above
    } else {
        std::fs::read_to_string(catalogue_path()).expect("docs/events.md exists")
    };
    let sections = catalogue_sections(&text);
    let documented: BTreeSet<&str> = sections.keys().map(String::as_str).collect();
    let types: BTreeSet<&str> = Event::TYPES.iter().copied().collect();
    assert_eq!(
        documented, types,
        "catalogue sections (left) and Event::TYPES (right)"
    );

    let mut problems = Vec::new();
    for ty in Event::TYPES {
        let doc = schemas().event(ty);
        let mut paths = BTreeMap::new();
        object_paths(doc, doc, "", &mut paths);
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        for (path, schema) in &paths {
            let required = required_of(schema);
            for name in properties_of(schema).keys() {
                let field = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                let flag = if required.contains(name) { "yes" } else { "no" };
                expected.insert(field, flag.to_owned());
            }
        }
        let rows = &sections[*ty];
        for (field, flag) in &expected {
            match rows.get(field) {
                None => problems.push(format!("{ty}: the catalogue does not list {field}")),
                Some(found) if found != flag => problems.push(format!(
                    "{ty}: {field} is required={flag} in the schema, {found} in the catalogue"
                )),
                Some(_) => {}
            }
        }
        for field in rows.keys().filter(|f| !expected.contains_key(*f)) {
            problems.push(format!(
                "{ty}: the catalogue lists {field}, the schema has no such property"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "catalogue and schemas disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_later_schema_version_leaves_data_to_its_own_schema_file() {
    // As the README says: envelope.v1 checks the data of schema version 1; the data of a later
    // version is checked against events/<type>.v<N>.schema.json by the consumer.
    let mut later = example("enrolled");
    set(&mut later, "/schema_version", json!(2));
    set(&mut later, "/data", json!({ "a_field_of_version_2": true }));
    let found = errors(envelope_validator(), &later);
    assert!(found.is_empty(), "{found:?}");
    set(&mut later, "/data", json!("not an object"));
    assert!(!envelope_validator().is_valid(&later));
}

#[test]
fn an_enrolled_event_of_version_1_is_still_valid_and_read() {
    // Written before `secondary_reason` existed: version 1, no reason, even for a secondary
    // enrollment. The log must keep reading it.
    let mut old = example("enrolled");
    assert_eq!(old["schema_version"], json!(2));
    set(&mut old, "/schema_version", json!(1));
    remove(&mut old, "/data/secondary_reason");
    assert_eq!(old["data"]["primary"], json!(false));
    let found = errors(envelope_validator(), &old);
    assert!(found.is_empty(), "{found:?}");
    let envelope: Envelope = serde_json::from_value(old).expect("a version 1 event decodes");
    match envelope.event {
        Event::Enrolled(e) => assert_eq!(e.secondary_reason, None),
        other => panic!("decoded as {}", other.type_name()),
    }
    // A version 1 event carrying the field of version 2 is not what version 1 describes.
    let mut mixed = example("enrolled");
    set(&mut mixed, "/schema_version", json!(1));
    assert!(!envelope_validator().is_valid(&mixed));
}

#[test]
fn an_exam_result_stored_with_version_1_is_read_and_served_upcast_to_version_2() {
    for (result, v1_fields) in [
        (json!({ "test_score": 86 }), json!({ "test_score": 86 })),
        (json!({ "mark": "4" }), json!({ "mark": "4" })),
    ] {
        // Stored by version 1: the result in its two optional fields.
        let mut old = example("exam_result_recorded");
        assert_eq!(old["schema_version"], json!(2));
        set(&mut old, "/schema_version", json!(1));
        remove(&mut old, "/data/result");
        for (k, v) in v1_fields.as_object().expect("object") {
            set(&mut old, &format!("/data/{k}"), v.clone());
        }
        let found = errors(envelope_validator(), &old);
        assert!(found.is_empty(), "the stored v1 event: {found:?}");
        let body = serde_json::to_vec(&old).expect("bytes");
        let hash = Hash::of(&body);
        let read = RecordedEvent::open(body.clone(), hash).expect("a v1 event decodes");
        assert_eq!(read.envelope.schema_version, 2);
        assert_eq!(read.envelope.stored_schema_version, Some(1));
        match &read.envelope.event {
            Event::ExamResultRecorded(e) => {
                assert_eq!(serde_json::to_value(e.result).expect("json"), result)
            }
            other => panic!("decoded as {}", other.type_name()),
        }
        assert_eq!(read.body, body, "the stored bytes are untouched");
        assert_eq!(read.hash, hash);

        let served = read.served_json().expect("served");
        assert_eq!(served["schema_version"], json!(2));
        assert_eq!(served["stored_schema_version"], json!(1));
        assert_eq!(served["data"]["result"], result);
        let found = errors(data_validator("exam_result_recorded"), &served["data"]);
        assert!(found.is_empty(), "served as version 2: {found:?}");
    }
    // A v1 result no version of the registry wrote (both scales) is a codec error, not a guess.
    let mut both = example("exam_result_recorded");
    set(&mut both, "/schema_version", json!(1));
    remove(&mut both, "/data/result");
    set(&mut both, "/data/test_score", json!(86));
    set(&mut both, "/data/mark", json!("4"));
    let body = serde_json::to_vec(&both).expect("bytes");
    assert!(RecordedEvent::open(body.clone(), Hash::of(&body)).is_err());
}

/// An event stored with an older version and sealed personal fields reads upcast, its fields
/// opened with the learner's key (the sealed part is bound to the event id and type, not to the
/// version), and erased without it.
#[test]
fn a_sealed_event_stored_with_an_older_version_is_opened_and_upcast() {
    let story = Story::new();
    let enrolled = full_examples(&story)
        .into_iter()
        .find(|e| matches!(e, Event::Enrolled(_)))
        .expect("an enrollment");
    let key = std::sync::Arc::new(DataKey::generate(story.maria));
    let meta = Metadata {
        source: Source {
            kind: SourceKind::Organization,
            id: "school".into(),
        },
        actor: "user:secretary".into(),
        idempotency_key: None,
        request_fingerprint: None,
    };
    let sealed = Envelope::seal_all_with(vec![enrolled], &meta, 1, GENESIS_HASH, Utc::now(), |e| {
        seal_personal(e, |_| Ok(key.clone()))
    })
    .expect("sealed")
    .pop()
    .expect("one");
    // As version 1 stored it: no secondary reason (version 1 had none).
    let mut old: Value = serde_json::from_slice(&sealed.body).expect("json");
    assert!(old.get("sealed").is_some(), "sealed");
    old["schema_version"] = json!(1);
    old["data"]
        .as_object_mut()
        .expect("data")
        .remove("secondary_reason");
    let body = serde_json::to_vec(&old).expect("bytes");

    let mut read = RecordedEvent::open(body.clone(), Hash::of(&body)).expect("decodes");
    assert_eq!(read.envelope.schema_version, 2);
    assert_eq!(read.envelope.stored_schema_version, Some(1));
    assert_eq!(
        read.envelope.personal.as_ref().map(|p| p.readable),
        Some(false)
    );
    contingent_log::unseal(&mut read, &key).expect("opens");
    assert_eq!(read.envelope.stored_schema_version, Some(1));
    assert_eq!(
        read.envelope.personal.as_ref().map(|p| p.readable),
        Some(true)
    );
    match &read.envelope.event {
        Event::Enrolled(e) => {
            assert_eq!(
                e.age_exemption.as_ref().map(|t| t.as_str()),
                Some("Разрешение учредителя № 7 от 20.08.2025")
            );
            assert_eq!(e.secondary_reason, None);
        }
        other => panic!("decoded as {}", other.type_name()),
    }
    let served = read.served_json().expect("served");
    assert_eq!(served["schema_version"], json!(2));
    assert_eq!(served["stored_schema_version"], json!(1));
    assert_eq!(
        served["data"]["age_exemption"],
        json!("Разрешение учредителя № 7 от 20.08.2025")
    );
    assert_eq!(read.body, body, "the stored bytes are untouched");
}

#[test]
fn an_event_of_the_current_version_is_served_as_stored() {
    let current = example("exam_result_recorded");
    let body = serde_json::to_vec(&current).expect("bytes");
    let read = RecordedEvent::open(body.clone(), Hash::of(&body)).expect("decodes");
    assert_eq!(read.envelope.stored_schema_version, None);
    assert_eq!(read.served_json().expect("served"), current);
}

// ---------------------------------------------------------------------------------------------
// Personal fields

/// The shared definitions that hold personal data, and which of their properties do (all of
/// them for `None`).
const PERSONAL_DEFS: &[(&str, Option<&[&str]>)] = &[
    ("snils", None),
    ("full_name", None),
    ("civil_record", Some(&["number", "office"])),
    ("document", Some(&["series", "number"])),
    ("certificate", Some(&["series", "number"])),
    ("consent", Some(&["document"])),
];

/// Personal fields that are plain texts, listed by hand.
const PERSONAL_TEXTS: &[(&str, &str)] = &[("enrolled", "age_exemption")];

fn def_name(node: &Value) -> Option<&str> {
    node.get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
}

#[test]
fn the_personal_fields_are_exactly_the_schemas_names_snils_documents_and_records() {
    use contingent_domain::personal::{personal_fields, PersonalKind, PERSONAL_FIELDS};
    let mut problems = Vec::new();
    for ty in Event::TYPES {
        let doc = schemas().event(ty);
        // What the schema says is personal: path → (kind, required).
        let mut expected: BTreeMap<String, (PersonalKind, bool)> = BTreeMap::new();
        let required = required_of(doc);
        for (name, node) in properties_of(doc) {
            let def = def_name(node);
            if def == Some("snils") {
                expected.insert(name.clone(), (PersonalKind::Snils, required.contains(name)));
                continue;
            }
            if PERSONAL_TEXTS.contains(&(ty, name.as_str())) {
                expected.insert(name.clone(), (PersonalKind::Text, required.contains(name)));
                continue;
            }
            let Some((_, props)) = PERSONAL_DEFS.iter().find(|(d, _)| Some(*d) == def) else {
                continue;
            };
            let object = resolve(doc, node);
            let inner_required = required_of(object);
            for (inner, inner_node) in properties_of(object) {
                if props.is_none_or(|p| p.contains(&inner.as_str())) {
                    let kind = if def_name(inner_node) == Some("snils") {
                        PersonalKind::Snils
                    } else {
                        PersonalKind::Text
                    };
                    expected.insert(
                        format!("{name}.{inner}"),
                        (kind, inner_required.contains(inner)),
                    );
                }
            }
        }
        let listed: BTreeMap<String, (PersonalKind, bool)> = personal_fields(ty)
            .iter()
            .map(|f| (f.path.to_owned(), (f.kind, f.required)))
            .collect();
        if expected != listed {
            problems.push(format!(
                "{ty}: the schema says {expected:?}, the list says {listed:?}"
            ));
        }
    }
    for (ty, _) in PERSONAL_FIELDS {
        if !Event::TYPES.contains(ty) {
            problems.push(format!("{ty} is not an event type"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn docs_personal_data_lists_the_personal_fields_of_every_type() {
    use contingent_domain::personal::PERSONAL_FIELDS;
    let doc = std::fs::read_to_string(workspace_root().join("docs/personal-data.md"))
        .expect("docs/personal-data.md");
    let mut missing = Vec::new();
    for (ty, fields) in PERSONAL_FIELDS {
        let paths: Vec<&str> = fields.iter().map(|f| f.path).collect();
        let line = format!("| {ty} | {} |", paths.join(", "));
        if !doc.lines().any(|l| l.trim() == line) {
            missing.push(line);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/personal-data.md lacks these rows of its table of personal fields:\n{}",
        missing.join("\n")
    );
}
