//! Starting the registry and speaking to it.

use std::sync::Arc;
use std::time::Duration;

use contingent_access::{Claims, LocalIssuer, Role};
use contingent_domain::{ClassId, OrganizationId};
use contingent_log_kafka::KafkaConfig;
use contingent_registry::{LogBackend, Registry, Settings};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub registry: Arc<Registry>,
    pub dir: tempfile::TempDir,
    pub issuer: Arc<LocalIssuer>,
    server: tokio::task::JoinHandle<()>,
    /// The PostgreSQL database of the read models, when not embedded (dropped with the app).
    _database: Option<contingent_testkit::PgDatabase>,
}

pub fn claims(sub: &str, role: Role) -> Claims {
    Claims {
        sub: sub.into(),
        role,
        snils: None,
        org: None,
        municipality: None,
        name: None,
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::spawn_in(dir).await
    }

    /// An embedded registry with settings changed by `change`.
    pub async fn spawn_configured(change: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut settings = Settings::new(dir.path());
        change(&mut settings);
        Self::spawn_with(dir, settings, None).await
    }

    pub async fn spawn_in(dir: tempfile::TempDir) -> Self {
        let settings = Settings::new(dir.path());
        Self::spawn_with(dir, settings, None).await
    }

    /// A registry whose log is a fresh topic on the test broker and whose read models and
    /// access journal are in a fresh PostgreSQL database.
    pub async fn spawn_on_kafka_and_postgres() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let database = contingent_testkit::PgDatabase::create().await;
        let mut settings = Settings::new(dir.path());
        settings.log = LogBackend::Kafka(KafkaConfig::new(
            contingent_testkit::kafka_broker(),
            KafkaConfig::region_topic(&contingent_testkit::unique_region()),
        ));
        settings.database = Some(database.url().to_owned());
        Self::spawn_with(dir, settings, Some(database)).await
    }

    async fn spawn_with(
        dir: tempfile::TempDir,
        settings: Settings,
        database: Option<contingent_testkit::PgDatabase>,
    ) -> Self {
        // The server's own log, shown with a failing test's output (RUST_LOG to change).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let registry = Arc::new(
            Registry::open(settings, |_| {})
                .await
                .expect("registry opens"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let issuer = Arc::new(LocalIssuer::generate(
            contingent_access::LOCAL_ISSUER,
            contingent_access::DEFAULT_AUDIENCE,
        ));
        let verifier = Arc::new(issuer.verifier().expect("verifier"));
        let app = contingent_api::router(registry.clone(), verifier);
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .expect("server runs");
        });
        Self {
            base,
            client: Client::new(),
            registry,
            dir,
            issuer,
            server,
            _database: database,
        }
    }

    /// A token for these claims.
    pub fn token(&self, claims: &Claims) -> String {
        self.issuer
            .issue(claims, Duration::from_secs(3600))
            .expect("token")
    }

    /// A token of the regional ministry: it may read everything and issue most commands.
    pub fn region(&self) -> String {
        self.token(&claims("minobr", Role::Region))
    }

    /// A token of an organization account.
    pub fn organization(&self, org: OrganizationId) -> String {
        self.token(&Claims {
            org: Some(org),
            ..claims("school-admin", Role::Organization)
        })
    }

    fn class_org(&self, class: &Value) -> Option<OrganizationId> {
        let class: ClassId = class.as_str()?.parse().ok()?;
        self.registry
            .read_state(|s| s.class(class).map(|c| c.organization_id))
    }

    /// The account that would send a command in real life: the civil registry for births and
    /// deaths, the exam centre for exams, the class's school for marks and attendance, the
    /// region otherwise.
    fn token_for_command(&self, name: &str, body: &Value) -> String {
        match name {
            "register_birth" | "register_death" => self.token(&claims("zags", Role::CivilRegistry)),
            "record_exam_result" => self.token(&claims("rcoi", Role::ExamCentre)),
            "record_mark" | "record_attendance" => match self.class_org(&body["class_id"]) {
                Some(org) => self.organization(org),
                None => self.region(),
            },
            "correct_mark" => {
                let mark = body["mark_id"].as_str().and_then(|m| m.parse().ok());
                let org = mark.and_then(|m| {
                    self.registry.read_state(|s| {
                        s.mark(m)
                            .and_then(|m| s.class(m.class_id))
                            .map(|c| c.organization_id)
                    })
                });
                org.map(|o| self.organization(o))
                    .unwrap_or_else(|| self.region())
            }
            _ => self.region(),
        }
    }

    /// Waits for the read models to catch up, then stops the server and the registry, keeping
    /// the directory.
    pub async fn stop(self) -> tempfile::TempDir {
        assert!(
            self.registry.wait_caught_up(Duration::from_secs(30)).await,
            "projector caught up"
        );
        self.server.abort();
        let _ = self.server.await;
        let registry = Arc::try_unwrap(self.registry)
            .ok()
            .expect("no other owner of the registry");
        registry.shutdown().await;
        self.dir
    }

    pub async fn command(&self, name: &str, body: Value) -> Response {
        let token = self.token_for_command(name, &body);
        self.client
            .post(format!("{}/v1/commands/{name}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn command_with_key(&self, name: &str, key: &str, body: Value) -> Response {
        let token = self.token_for_command(name, &body);
        self.client
            .post(format!("{}/v1/commands/{name}", self.base))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// Sends a command that must be recorded; returns the receipt.
    pub async fn ok(&self, name: &str, body: Value) -> Value {
        let response = self.command(name, body).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{name} answered {status}: {text}"
        );
        serde_json::from_str(&text).expect("receipt is JSON")
    }

    /// Sends a command that must be refused with `status` and `code`; returns the problem.
    pub async fn refused(&self, name: &str, body: Value, status: StatusCode, code: &str) -> Value {
        let response = self.command(name, body).await;
        assert_problem(response, status, code).await
    }

    /// GET after the read models have caught up with everything appended.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let token = self.region();
        self.get_as(&token, path).await
    }

    /// GET with a token, after the read models have caught up with everything appended.
    pub async fn get_as(&self, token: &str, path: &str) -> (StatusCode, Value) {
        assert!(
            self.registry.wait_caught_up(Duration::from_secs(30)).await,
            "projector caught up"
        );
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }
}

pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    let got = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.expect("body");
    assert_eq!(got, status, "expected {status} {code}, got {got}: {text}");
    assert_eq!(content_type, "application/problem+json", "{text}");
    let problem: Value = serde_json::from_str(&text).expect("problem is JSON");
    assert_eq!(problem["code"], code, "{problem}");
    assert_eq!(problem["status"], status.as_u16());
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    problem
}

pub fn order(number: &str, date: &str) -> Value {
    json!({ "number": number, "date": date })
}

/// A small region: a school with class 11А of 2025/2026 (2 places), a college with a first-year
/// group of 2026/2027, and a kindergarten.
pub struct World {
    pub school: String,
    pub college: String,
    pub kindergarten: String,
    pub class_11a: String,
    pub class_11b: String,
    pub college_group: String,
}

pub async fn world(app: &TestApp) -> World {
    let org = |name: &str, kind: &str, levels: Value| json!({ "name": name, "municipality": "Барнаул", "kind": kind, "levels": levels });
    let school = app
        .ok(
            "register_organization",
            org("МБОУ СОШ № 12", "school", json!(["general"])),
        )
        .await;
    let school = school["events"][0]["data"]["organization_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let college = app
        .ok(
            "register_organization",
            org(
                "Барнаульский политехнический колледж",
                "college",
                json!(["vocational"]),
            ),
        )
        .await;
    let college = college["events"][0]["data"]["organization_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let kindergarten = app
        .ok(
            "register_organization",
            org(
                "МБДОУ Детский сад № 5 «Солнышко»",
                "kindergarten",
                json!(["preschool"]),
            ),
        )
        .await;
    let kindergarten = kindergarten["events"][0]["data"]["organization_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let class = |org: &str, year: &str, level: &str, grade: u8, name: &str, capacity: u16| json!({ "organization_id": org, "academic_year": year, "level": level, "grade": grade, "name": name, "capacity": capacity });
    let id = |receipt: Value| {
        receipt["events"][0]["data"]["class_id"]
            .as_str()
            .expect("class id")
            .to_owned()
    };
    let class_11a = id(app
        .ok(
            "open_class",
            class(&school, "2025/2026", "general", 11, "11А", 2),
        )
        .await);
    let class_11b = id(app
        .ok(
            "open_class",
            class(&school, "2025/2026", "general", 11, "11Б", 25),
        )
        .await);
    let college_group = id(app
        .ok(
            "open_class",
            class(&college, "2026/2027", "vocational", 1, "ПР-26", 25),
        )
        .await);
    let mut group = class(
        &kindergarten,
        "2026/2027",
        "preschool",
        3,
        "Младшая группа «Пчёлка»",
        20,
    );
    group["stay_mode"] = json!("full_day");
    app.ok("open_class", group).await;
    World {
        school,
        college,
        kindergarten,
        class_11a,
        class_11b,
        college_group,
    }
}

pub fn birth(
    number: &str,
    surname: &str,
    name: &str,
    birth_date: &str,
    snils: Option<&str>,
) -> Value {
    let mut body = json!({
        "record": { "number": number, "date": birth_date, "office": "Отдел ЗАГС г. Барнаула" },
        "child": { "surname": surname, "name": name, "patronymic": "Петрович" },
        "sex": "male",
        "birth_date": birth_date,
        "certificate": { "kind": "birth_certificate", "series": "II-ТО", "number": format!("5{number}") },
    });
    if let Some(s) = snils {
        body["snils"] = json!(s);
    }
    body
}

pub async fn born(app: &TestApp, number: &str, surname: &str, birth_date: &str) -> String {
    let receipt = app
        .ok(
            "register_birth",
            birth(number, surname, "Иван", birth_date, None),
        )
        .await;
    receipt["learner_id"]
        .as_str()
        .expect("learner id")
        .to_owned()
}

pub async fn enrolled(app: &TestApp, learner: &str, class: &str, on: &str) -> String {
    let receipt = app
        .ok("enroll", json!({
            "learner_id": learner, "class_id": class, "enrolled_on": on,
            "programme": { "name": "Основная образовательная программа среднего общего образования" },
            "order": order("Приказ № 101-у", on),
        }))
        .await;
    receipt["events"][0]["data"]["enrollment_id"]
        .as_str()
        .expect("enrollment id")
        .to_owned()
}
