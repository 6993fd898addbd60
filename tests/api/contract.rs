//! `/openapi.json` describes what the server answers, on real data: a generated region, read
//! through every query with a token that reaches it, each answer validated against the schema
//! the document gives its status. (schemathesis, in `scripts/schemathesis`, checks the same
//! against requests it generates, which name ids that exist only by chance.)

use contingent_access::{Claims, Role};
use jsonschema::Draft;
use reqwest::StatusCode;

use crate::helpers::{claims, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_schema_the_document_gives_it() {
    let app = TestApp::spawn().await;
    let config = contingent_simulate::Config {
        seed: 7,
        scale: contingent_simulate::Scale::tiny(),
        today: chrono::Utc::now().date_naive(),
    };
    let report = contingent_simulate::generate(&app.registry, &config, |_, _, _| {})
        .await
        .expect("a region is generated");
    let f = &report.featured;
    let doc = app.get_ok("/openapi.json").await;

    let region = app.region();
    let auditor = app.token(&claims("auditor-1", Role::Auditor));
    let federal = app.token(&claims("federal-segment", Role::Federal));
    let parent = app.token(&Claims {
        snils: Some(f.guardian_snils.to_string()),
        ..claims("parent-1", Role::Parent)
    });
    let teacher = app.token(&Claims {
        org: Some(f.school_id),
        ..claims(&f.teacher, Role::Teacher)
    });
    let (l, s, c, k) = (f.learner_id, f.school_id, f.class_id, f.kindergarten_id);
    let year = contingent_domain::AcademicYear::containing(config.today).start_year() - 1;
    let cases: Vec<(&str, &str, String)> = vec![
        (
            &region,
            "/v1/learners",
            format!("/v1/learners?organization_id={s}"),
        ),
        (&region, "/v1/learners/{id}", format!("/v1/learners/{l}")),
        (
            &parent,
            "/v1/learners/{id}/diary",
            format!("/v1/learners/{l}/diary"),
        ),
        (
            &parent,
            "/v1/learners/{id}/diary",
            format!("/v1/learners/{l}/diary?academic_year={year}/{}", year + 1),
        ),
        (
            &auditor,
            "/v1/learners/{id}/history",
            format!("/v1/learners/{l}/history"),
        ),
        (
            &auditor,
            "/v1/learners/{id}/state",
            format!("/v1/learners/{l}/state"),
        ),
        (
            &auditor,
            "/v1/learners/{id}/state",
            format!("/v1/learners/{l}/state?as_of={year}-12-31&known_at=2100-01-01T00:00:00Z"),
        ),
        (
            &auditor,
            "/v1/learners/{id}/access",
            format!("/v1/learners/{l}/access"),
        ),
        (&region, "/v1/organizations", "/v1/organizations".to_owned()),
        (
            &region,
            "/v1/organizations/{id}/queue",
            format!("/v1/organizations/{k}/queue"),
        ),
        (
            &teacher,
            "/v1/classes/{id}/register",
            format!(
                "/v1/classes/{c}/register?from={year}-09-01&to={}-06-30",
                year + 1
            ),
        ),
        (&region, "/v1/vacancies", "/v1/vacancies".to_owned()),
        (
            &region,
            "/v1/federal/register",
            "/v1/federal/register?limit=1000".to_owned(),
        ),
        (
            &region,
            "/v1/federal/counts",
            "/v1/federal/counts?by=municipality,organization,level,grade".to_owned(),
        ),
        (&region, "/v1/feed", "/v1/feed?limit=1000".to_owned()),
        (
            &auditor,
            "/v1/feed",
            "/v1/feed?after=20000&limit=1000".to_owned(),
        ),
        (&federal, "/v1/feed", "/v1/feed?limit=1000".to_owned()),
        (&auditor, "/v1/audit/verify", "/v1/audit/verify".to_owned()),
        (&region, "/healthz", "/healthz".to_owned()),
    ];
    let mut failures = Vec::new();
    for (token, template, path) in &cases {
        let (status, body) = app.get_as(token, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let mut schema = doc["paths"][*template]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"]
            .clone();
        assert!(schema.is_object(), "{template}: no schema for 200");
        schema["components"] = doc["components"].clone();
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{template}: the schema does not compile: {e}"));
        assert!(
            !validator.is_valid(&serde_json::json!([])),
            "{template}: the schema accepts anything"
        );
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .take(5)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        if !errors.is_empty() {
            failures.push(format!("{path}:\n  {}", errors.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
