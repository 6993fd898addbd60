//! Shared helpers of the federal topic's tests: the broker, unique topics, a small region's
//! story with personal data in it, and a plain Kafka subscriber (a consumer group member, as a
//! federal subscriber is) that uses none of this project's reading code.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use contingent_domain::{
    AcademicYear, ApplicationId, ApplicationSubmitted, Attendance, AttendanceRecorded,
    BirthRegistered, CivilRecord, ClassCapacityChanged, ClassId, ClassOpened, Consent, Document,
    EducationForm, Enrolled, EnrollmentId, Event, FullName, GuardianLinked, LearnerId,
    LearnerRegistered, LeaveReason, Left, Level, Mark, MarkCorrected, MarkId, MarkKind,
    MarkRecorded, Order, OrganizationId, OrganizationKind, OrganizationRegistered, Priority,
    Programme, Relation, Sex, Snils, SnilsRecorded, SourceKind, StayMode, TeacherAssigned, Text,
    TransferKind, Transferred,
};
use contingent_federal_topic::{FederalPublisher, PARTITION};
use contingent_log::{Envelope, EventLog, Metadata, RecordedEvent, Source};
use contingent_log_kafka::{KafkaConfig, KafkaLog};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};

/// The tansu broker's address, from `CONTINGENT_TEST_KAFKA`.
pub fn broker() -> String {
    std::env::var("CONTINGENT_TEST_KAFKA").unwrap_or_else(|_| {
        panic!("start the broker (scripts/services start) and source target/services/env")
    })
}

/// A region name no other test uses.
pub fn unique_region() -> String {
    format!("test-{}", uuid::Uuid::new_v4())
}

/// The region's log of record, on its own events topic.
pub async fn open_log(region: &str) -> KafkaLog {
    let mut config = KafkaConfig::new(broker(), KafkaConfig::region_topic(region));
    config.client_id = "contingent-federal-topic-tests".into();
    KafkaLog::open(config).await.expect("open the Kafka log")
}

/// The configuration of a region's federal topic.
pub fn federal_config(region: &str) -> KafkaConfig {
    let mut config = KafkaConfig::new(broker(), KafkaConfig::federal_topic(region));
    config.client_id = "contingent-federal-topic-tests".into();
    config
}

/// Opens the region's federal publisher.
pub async fn open_publisher(region: &str) -> FederalPublisher {
    FederalPublisher::open(federal_config(region))
        .await
        .expect("open the federal publisher")
}

/// Publishes until the publisher has nothing more to do, in batches of `batch`; returns how
/// many records it produced.
pub async fn publish_all(
    publisher: &mut FederalPublisher,
    log: &dyn EventLog,
    batch: usize,
) -> usize {
    let mut total = 0;
    loop {
        let n = publisher.run_once(log, batch).await.expect("run_once");
        assert!(n <= batch, "a batch of {batch} produced {n} records");
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// Who recorded the story: account and source identifier are personal enough to stay.
pub const ACTOR: &str = "operator-zags-7731";
/// The source identifier of every event.
pub const SOURCE_ID: &str = "Отдел-ЗАГС-источник-0042";

/// Command metadata.
pub fn meta() -> Metadata {
    Metadata {
        source: Source {
            kind: SourceKind::Region,
            id: SOURCE_ID.into(),
        },
        actor: ACTOR.into(),
        idempotency_key: Some("idempotency-key-secret-55".into()),
        request_fingerprint: None,
    }
}

/// Appends `facts` as one append on top of the log's head; returns the sealed events.
pub async fn append(log: &dyn EventLog, facts: Vec<Event>) -> Vec<RecordedEvent> {
    let head = log.head().await.expect("head");
    let sealed =
        Envelope::seal_all(facts, &meta(), head.position + 1, head.hash, Utc::now()).expect("seal");
    log.append(&sealed).await.expect("append");
    sealed
}

fn t(s: &str) -> Text {
    Text::parse(s).expect("text")
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("date")
}

fn year(s: &str) -> AcademicYear {
    AcademicYear::parse(s).expect("academic year")
}

fn name(surname: &str, name: &str, patronymic: &str) -> FullName {
    FullName {
        surname: t(surname),
        name: t(name),
        patronymic: Some(t(patronymic)),
    }
}

fn order(number: &str, date: NaiveDate) -> Order {
    Order {
        number: t(number),
        date,
    }
}

/// A school, two classes, two learners and what happens to them.
pub struct Story {
    pub school: OrganizationId,
    pub class_1a: ClassId,
    pub class_2a: ClassId,
    pub learner: LearnerId,
    pub baby: LearnerId,
    pub application: ApplicationId,
    pub enrollment: EnrollmentId,
    pub enrollment_2: EnrollmentId,
    pub mark: MarkId,
}

/// The learner's SNILS.
pub fn learner_snils() -> Snils {
    Snils::parse("112-233-445 95").expect("snils")
}

/// The guardian's SNILS.
pub fn guardian_snils() -> Snils {
    Snils::from_number(456_789_123).expect("snils")
}

/// The second learner's SNILS, recorded after the publisher's restart.
pub fn baby_snils() -> Snils {
    Snils::from_number(731_246_580).expect("snils")
}

/// Every string of the story that must not leave the region, in any form.
pub fn secrets() -> Vec<String> {
    let mut out: Vec<String> = [
        // the learner: name, document
        "Засекреченная",
        "Анфиса",
        "Игоревна",
        "ДОК-987654",
        "II-СЕКР",
        // the guardian: name, consent
        "Опекунова",
        "Регина",
        "Львовна",
        "Согласие № 915-секрет",
        // the second learner: name, civil record
        "Младенцев",
        "Тихон",
        "Родионович",
        "110202522000009999",
        "Отдел ЗАГС Ленинского района",
        // orders, teachers, marks
        "ПРИКАЗ-123-у",
        "ПРИКАЗ-201-п",
        "ПРИКАЗ-310-о",
        "Преподавателева",
        "Зинаида",
        "Диктант-секрет",
        "Ошибка ввода-секрет",
        "Адаптированная программа-секрет",
        "Обоснование вместимости-секрет",
        // metadata
        ACTOR,
        SOURCE_ID,
        "idempotency-key-secret-55",
        "prev_hash",
    ]
    .map(str::to_owned)
    .to_vec();
    for snils in [learner_snils(), guardian_snils(), baby_snils()] {
        let formatted = snils.to_string();
        let digits: String = formatted.chars().filter(char::is_ascii_digit).collect();
        out.push(formatted);
        out.push(digits);
    }
    out
}

impl Story {
    pub fn new() -> Self {
        Self {
            school: OrganizationId::generate(),
            class_1a: ClassId::generate(),
            class_2a: ClassId::generate(),
            learner: LearnerId::generate(),
            baby: LearnerId::generate(),
            application: ApplicationId::generate(),
            enrollment: EnrollmentId::generate(),
            enrollment_2: EnrollmentId::generate(),
            mark: MarkId::generate(),
        }
    }

    /// The region's first facts, in appends of a few events each (every optional field that
    /// the federal segment receives is present).
    pub fn first_appends(&self) -> Vec<Vec<Event>> {
        let s = self;
        vec![
            vec![
                Event::OrganizationRegistered(OrganizationRegistered {
                    organization_id: s.school,
                    name: t("МБОУ «СОШ № 5»"),
                    municipality: t("г. Барнаул"),
                    kind: OrganizationKind::School,
                    levels: vec![Level::General],
                }),
                Event::ClassOpened(ClassOpened {
                    class_id: s.class_1a,
                    organization_id: s.school,
                    academic_year: year("2025/2026"),
                    level: Level::General,
                    grade: 1,
                    name: t("1А"),
                    capacity: 25,
                    stay_mode: Some(StayMode::FullDay),
                }),
                Event::ClassOpened(ClassOpened {
                    class_id: s.class_2a,
                    organization_id: s.school,
                    academic_year: year("2026/2027"),
                    level: Level::General,
                    grade: 2,
                    name: t("2А"),
                    capacity: 25,
                    stay_mode: Some(StayMode::ShortStay),
                }),
                Event::TeacherAssigned(TeacherAssigned {
                    class_id: s.class_1a,
                    organization_id: s.school,
                    teacher: t("teacher-0042"),
                    teacher_name: t("Преподавателева Зинаида Павловна"),
                    subjects: vec![t("Русский язык")],
                    from: d(2025, 9, 1),
                }),
            ],
            vec![Event::LearnerRegistered(LearnerRegistered {
                learner_id: s.learner,
                person: name("Засекреченная", "Анфиса", "Игоревна"),
                sex: Sex::Female,
                birth_date: d(2018, 11, 3),
                document: Document {
                    kind: t("birth_certificate"),
                    series: Some(t("II-СЕКР")),
                    number: t("ДОК-987654"),
                },
                snils: Some(learner_snils()),
            })],
            vec![
                Event::GuardianLinked(GuardianLinked {
                    learner_id: s.learner,
                    guardian_snils: guardian_snils(),
                    guardian: name("Опекунова", "Регина", "Львовна"),
                    relation: Relation::Guardian,
                    consent: Consent {
                        given_on: d(2025, 8, 28),
                        document: t("Согласие № 915-секрет"),
                    },
                }),
                Event::ApplicationSubmitted(ApplicationSubmitted {
                    application_id: s.application,
                    learner_id: s.learner,
                    organization_id: s.school,
                    level: Level::General,
                    academic_year: year("2025/2026"),
                    grade: 1,
                    class_id: Some(s.class_1a),
                    submitted_on: d(2025, 4, 1),
                    desired_start: Some(d(2025, 9, 1)),
                    priority: Priority::General,
                }),
            ],
            vec![Event::Enrolled(Enrolled {
                enrollment_id: s.enrollment,
                learner_id: s.learner,
                organization_id: s.school,
                class_id: s.class_1a,
                level: Level::General,
                grade: 1,
                academic_year: year("2025/2026"),
                programme: Programme {
                    name: t("Адаптированная программа-секрет"),
                    adapted: true,
                    focus: None,
                },
                primary: true,
                secondary_reason: None,
                form: EducationForm::FullTime,
                enrolled_on: d(2025, 9, 1),
                order: order("ПРИКАЗ-123-у", d(2025, 8, 25)),
                application_id: Some(s.application),
                age_exemption: None,
                stay_mode: None,
            })],
            vec![
                Event::MarkRecorded(MarkRecorded {
                    mark_id: s.mark,
                    learner_id: s.learner,
                    class_id: s.class_1a,
                    subject: t("Русский язык"),
                    lesson_date: d(2025, 10, 6),
                    kind: MarkKind::Current,
                    work: t("Диктант-секрет"),
                    period: None,
                    value: Mark::parse("5").expect("mark"),
                    weight: 1,
                    teacher: t("Преподавателева Зинаида Павловна"),
                }),
                Event::AttendanceRecorded(AttendanceRecorded {
                    learner_id: s.learner,
                    class_id: s.class_1a,
                    date: d(2025, 10, 7),
                    lesson: Some(2),
                    status: Attendance::Ill,
                }),
            ],
        ]
    }

    /// What happens after the publisher's restart.
    pub fn later_appends(&self) -> Vec<Vec<Event>> {
        let s = self;
        vec![
            vec![Event::BirthRegistered(BirthRegistered {
                learner_id: s.baby,
                record: CivilRecord {
                    number: t("110202522000009999"),
                    date: d(2025, 6, 9),
                    office: t("Отдел ЗАГС Ленинского района"),
                },
                child: name("Младенцев", "Тихон", "Родионович"),
                sex: Sex::Male,
                birth_date: d(2025, 6, 2),
                certificate: None,
                snils: None,
            })],
            vec![
                Event::SnilsRecorded(SnilsRecorded {
                    learner_id: s.baby,
                    snils: baby_snils(),
                }),
                Event::MarkCorrected(MarkCorrected {
                    mark_id: s.mark,
                    learner_id: s.learner,
                    class_id: s.class_1a,
                    previous: Mark::parse("5").expect("mark"),
                    value: Mark::parse("4").expect("mark"),
                    reason: t("Ошибка ввода-секрет"),
                    teacher: t("Преподавателева Зинаида Павловна"),
                }),
                Event::ClassCapacityChanged(ClassCapacityChanged {
                    class_id: s.class_2a,
                    organization_id: s.school,
                    capacity: 28,
                    reason: Some(t("Обоснование вместимости-секрет")),
                }),
            ],
            vec![Event::Transferred(Transferred {
                learner_id: s.learner,
                kind: TransferKind::NextGrade,
                from_enrollment_id: s.enrollment,
                from_organization_id: s.school,
                from_class_id: s.class_1a,
                to_enrollment_id: s.enrollment_2,
                to_organization_id: s.school,
                to_class_id: s.class_2a,
                grade: 2,
                academic_year: year("2026/2027"),
                transferred_on: d(2026, 9, 1),
                order: order("ПРИКАЗ-201-п", d(2026, 5, 29)),
            })],
            vec![Event::Left(Left {
                learner_id: s.learner,
                enrollment_id: s.enrollment_2,
                organization_id: s.school,
                class_id: s.class_2a,
                left_on: d(2027, 1, 15),
                reason: LeaveReason::MovedAway,
                order: order("ПРИКАЗ-310-о", d(2027, 1, 14)),
                certificate: None,
            })],
        ]
    }
}

/// One record as a federal subscriber sees it.
#[derive(Debug, Clone)]
pub struct SubscribedRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl SubscribedRecord {
    /// The value of header `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8(v.clone()).expect("UTF-8 header"))
    }

    /// The `position` header.
    pub fn position(&self) -> u64 {
        self.header("position")
            .expect("position header")
            .parse()
            .expect("decimal position")
    }

    /// The value as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value).expect("the value is JSON")
    }

    /// Every byte of the record: key, value, header names and values.
    pub fn all_bytes(&self) -> Vec<u8> {
        let mut out = self.key.clone().unwrap_or_default();
        out.extend_from_slice(&self.value);
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(v);
        }
        out
    }
}

/// A member of consumer group `group` subscribed to `topic`, as a federal subscriber would run
/// it: plain librdkafka settings, offsets committed to the group.
pub fn subscriber(topic: &str, group: &str) -> StreamConsumer {
    subscriber_at(&broker(), topic, group)
}

/// [`subscriber`] on the broker at `brokers`.
pub fn subscriber_at(brokers: &str, topic: &str, group: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        // tansu holds every fetch for fetch.wait.max.ms, even one with data.
        .set("fetch.wait.max.ms", "10")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Reads from the subscriber's position to the end of the partition (end-of-partition, not the
/// watermarks: tansu's ListOffsets lags), then commits what it read to the group.
pub async fn read_to_end(consumer: &StreamConsumer) -> Vec<SubscribedRecord> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out reading the federal topic");
        let message = match tokio::time::timeout(left, consumer.recv()).await {
            Err(_) => continue,
            Ok(Err(KafkaError::PartitionEOF(_))) => break,
            Ok(message) => message.expect("message"),
        };
        let headers = message
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(SubscribedRecord {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    if !out.is_empty() {
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .expect("commit");
    }
    assert!(out.iter().all(|r| r.partition == PARTITION));
    out
}
