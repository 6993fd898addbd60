//! The analyst's pages, black-box over HTTP on a random port: movements per month, places and
//! queues with the overdue applications, exam results against the region, and the data-quality
//! panel's counts recomputed from the log; each against what the log or the read models hold.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashMap};

use contingent_access::Role;
use contingent_domain::Event;
use contingent_log::RecordedEvent;
use reqwest::StatusCode;
use support::{Browser, Site};

/// Every event of the log, in order.
async fn the_log(site: &Site) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    loop {
        let page = site.registry.feed(all.len() as u64, 10_000).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// A CSV download as rows of fields (the pages' CSV quotes no field these tests read).
async fn csv(b: &mut Browser, path: &str) -> Vec<Vec<String>> {
    let response = b.get_raw(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let text = response.text().await.unwrap();
    text.lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn column(rows: &[Vec<String>], name: &str) -> usize {
    rows[0]
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("a column {name}: {:?}", rows[0]))
}

fn sum(rows: &[Vec<String>], name: &str) -> i64 {
    let i = column(rows, name);
    rows[1..].iter().map(|r| r[i].parse::<i64>().unwrap()).sum()
}

/// The municipality of each organization, as the log registered it.
fn municipalities(log: &[RecordedEvent]) -> HashMap<String, String> {
    log.iter()
        .filter_map(|e| match &e.envelope.event {
            Event::OrganizationRegistered(o) => Some((
                o.organization_id.to_string(),
                o.municipality.as_str().to_owned(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn movements_per_month_count_every_enrollment_and_leaving_of_the_log_in_the_callers_scope() {
    let site = Site::start().await;
    let log = the_log(&site).await;
    let places = municipalities(&log);
    let mut region = site.signed_in(Role::Region).await;
    let (status, page) = region.get("/analytics/movements").await;
    assert_eq!(status, StatusCode::OK);
    let at = page.find("id=\"chart-movements\"").expect("the chart");
    assert!(page[at..].contains("<svg") && page[at..].contains("<polyline"));
    let rows = csv(&mut region, "/analytics/movements.csv").await;
    // Month by month, none missing, oldest first.
    let months: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert!(months.len() > 1, "{months:?}");
    assert!(months.windows(2).all(|w| w[0] < w[1]));
    let count = |pick: &dyn Fn(&Event) -> Option<String>, municipality: Option<&str>| {
        log.iter()
            .filter_map(|e| pick(&e.envelope.event))
            .filter(|org| {
                municipality.is_none_or(|m| places.get(org).map(String::as_str) == Some(m))
            })
            .count() as i64
    };
    let enrolled = |e: &Event| match e {
        Event::Enrolled(e) => Some(e.organization_id.to_string()),
        _ => None,
    };
    let left = |e: &Event| match e {
        Event::Left(e) => Some(e.organization_id.to_string()),
        _ => None,
    };
    let enrolled_region = count(&enrolled, None);
    let left_region = count(&left, None);
    assert!(enrolled_region > 0 && left_region > 0);
    assert_eq!(sum(&rows, "зачислено"), enrolled_region);
    assert_eq!(sum(&rows, "выбыло"), left_region);

    let mut municipality = site.signed_in(Role::Municipality).await;
    let own = site.accounts[site.account(Role::Municipality)]
        .claims
        .municipality
        .clone()
        .unwrap();
    let rows = csv(&mut municipality, "/analytics/movements.csv").await;
    let enrolled_own = count(&enrolled, Some(&own));
    assert!(
        enrolled_own < enrolled_region,
        "the scope is one municipality"
    );
    assert_eq!(sum(&rows, "зачислено"), enrolled_own);
    assert_eq!(sum(&rows, "выбыло"), count(&left, Some(&own)));

    // Other roles are refused these pages and tables, as the counts page; an unknown table is
    // not found only for a caller who may see the tables.
    let mut parent = site.signed_in(Role::Parent).await;
    for path in [
        "/analytics/movements",
        "/analytics/queues",
        "/analytics/exams",
        "/analytics/movements.csv",
        "/analytics/nothing.csv",
    ] {
        let (status, _) = parent.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _) = region.get("/analytics/nothing.csv").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = region.get("/analytics/exams?year=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_regions_queues_agree_with_each_schools_queue_and_list_its_overdue_applications() {
    let site = Site::start().await;
    let today = chrono::Utc::now().date_naive();
    let pool = site.registry.read().pool();
    let mut region = site.signed_in(Role::Region).await;
    let (status, page) = region.get("/analytics/queues").await;
    assert_eq!(status, StatusCode::OK);
    let at = page.find("id=\"chart-queues\"").expect("the chart");
    assert!(page[at..].contains("<rect"));
    let rows = csv(&mut region, "/analytics/queues.csv").await;
    let overdue_rows = csv(&mut region, "/analytics/overdue.csv").await;
    // Each organization's pending and overdue applications, as its own queue page counts them.
    let organizations: Vec<(String, String)> =
        sqlx::query_as("SELECT organization_id, name FROM vacancy_organizations")
            .fetch_all(pool)
            .await
            .unwrap();
    let (org_col, pending_col, overdue_col) = (
        column(&rows, "организация"),
        column(&rows, "в очереди"),
        column(&rows, "просрочено"),
    );
    let mut pending_total = 0;
    let mut overdue_total = 0;
    for (id, name) in &organizations {
        let queue = contingent_projections::queries::queue(pool, id.parse().unwrap(), today)
            .await
            .unwrap()
            .unwrap();
        let of = |i: usize| -> i64 {
            rows[1..]
                .iter()
                .filter(|r| r[org_col] == *name)
                .map(|r| r[i].parse::<i64>().unwrap())
                .sum()
        };
        assert_eq!(of(pending_col), queue.pending, "{name}");
        assert_eq!(of(overdue_col), queue.overdue, "{name}");
        let listed: Vec<&str> = overdue_rows[1..]
            .iter()
            .filter(|r| r[1] == *name)
            .map(|r| r[2].as_str())
            .collect();
        let overdue: Vec<String> = queue
            .applications
            .iter()
            .filter(|a| a.overdue)
            .map(|a| a.application_id.to_string())
            .collect();
        assert_eq!(listed.len(), overdue.len(), "{name}");
        assert!(
            listed.iter().all(|a| overdue.iter().any(|o| o == a)),
            "{name}"
        );
        pending_total += queue.pending;
        overdue_total += queue.overdue;
    }
    // The generated region has a queue; overdue ones (children past their desired start) in
    // most regions, but not on every day the generator is run on.
    assert!(pending_total > 0, "the region has a queue");
    assert!(page.contains(&format!(
        "Ожидают решения: <b>{pending_total}</b>, из них просрочено: <b class=\"bad\">{overdue_total}</b>."
    )));

    // A municipality sees its own organizations only.
    let own = site.accounts[site.account(Role::Municipality)]
        .claims
        .municipality
        .clone()
        .unwrap();
    let mut municipality = site.signed_in(Role::Municipality).await;
    for table in ["queues", "overdue"] {
        let rows = csv(&mut municipality, &format!("/analytics/{table}.csv")).await;
        assert!(rows[1..].iter().all(|r| r[0] == own), "{table}: {rows:?}");
    }
}

#[tokio::test]
async fn exam_results_by_organization_stand_beside_the_regions_mean() {
    let site = Site::start().await;
    let pool = site.registry.read().pool();
    let mut region = site.signed_in(Role::Region).await;
    let (status, page) = region.get("/analytics/exams").await;
    assert_eq!(status, StatusCode::OK);
    let rows = csv(&mut region, "/analytics/exams.csv").await;
    assert!(rows.len() > 1, "the region has exam results: {page}");
    // The year shown is the latest with results; the region's mean of each ЕГЭ subject that
    // year, computed here from the diaries, is the one on every row of the subject.
    let year: String = page
        .split("Результаты экзаменов: регион, ")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let start: i32 = year[..4].parse().unwrap();
    let means: Vec<(String, f64, i64)> = sqlx::query_as(
        "SELECT subject, CAST(avg(test_score) AS DOUBLE PRECISION), count(*) FROM diary_exams \
         WHERE form = 'ege' AND exam_date BETWEEN $1 AND $2 GROUP BY subject",
    )
    .bind(format!("{start}-09-01"))
    .bind(format!("{}-08-31", start + 1))
    .fetch_all(pool)
    .await
    .unwrap();
    let (form, subject, region_mean, results) = (
        column(&rows, "форма"),
        column(&rows, "предмет"),
        column(&rows, "средний по региону"),
        column(&rows, "результатов"),
    );
    let mut checked = 0;
    for (name, mean, count) in &means {
        let of_subject: Vec<&Vec<String>> = rows[1..]
            .iter()
            .filter(|r| r[form] == "ЕГЭ" && r[subject] == *name)
            .collect();
        assert!(!of_subject.is_empty(), "{name}");
        for r in &of_subject {
            assert_eq!(r[region_mean], format!("{mean:.1}"), "{name}");
        }
        // Every result of the subject is counted at some organization.
        let counted: i64 = of_subject
            .iter()
            .map(|r| r[results].parse::<i64>().unwrap())
            .sum();
        assert_eq!(counted, *count, "{name}");
        checked += 1;
    }
    assert!(checked > 0, "ЕГЭ results to check");

    // A municipality sees its own organizations beside the same regional mean.
    let own = site.accounts[site.account(Role::Municipality)]
        .claims
        .municipality
        .clone()
        .unwrap();
    let mut municipality = site.signed_in(Role::Municipality).await;
    let theirs = csv(
        &mut municipality,
        &format!("/analytics/exams.csv?year={year}"),
    )
    .await;
    let municipality_col = column(&theirs, "муниципалитет");
    assert!(theirs[1..].iter().all(|r| r[municipality_col] == own));
    let region_means: BTreeMap<(&str, &str), &str> = rows[1..]
        .iter()
        .map(|r| {
            (
                (r[form].as_str(), r[subject].as_str()),
                r[region_mean].as_str(),
            )
        })
        .collect();
    for r in &theirs[1..] {
        assert_eq!(
            region_means.get(&(r[form].as_str(), r[subject].as_str())),
            Some(&r[region_mean].as_str())
        );
    }
}

fn position_on(page: &str) -> u64 {
    let marker = "id=\"reconciliation-summary\" data-position=\"";
    let at = page.find(marker).expect("the reconciliation") + marker.len();
    page[at..].split('"').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_data_quality_panel_recounts_from_the_log_and_finds_read_models_that_disagree() {
    let site = Site::start().await;
    let mut region = site.signed_in(Role::Region).await;
    let (status, page) = region.get("/analytics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        position_on(&page),
        site.registry.head(),
        "says at which position"
    );
    assert!(
        page.contains("Счёт витрин совпадает со счётом по журналу."),
        "{page}"
    );
    let rows = csv(&mut region, "/analytics/reconciliation.csv").await;
    let verdict = column(&rows, "итог");
    assert!(
        rows[1..].iter().all(|r| r[verdict] == "сходится"),
        "{rows:?}"
    );
    assert!(
        rows.len() >= 7,
        "four measures and the region's two: {rows:?}"
    );
    let overdue = &rows[4];
    assert_eq!(overdue[0], "Из них просрочены");
    assert_eq!(overdue[4], overdue[5]);
    assert!(page.contains(&format!(
        "<a href=\"/analytics/queues#overdue\"><b class=\"bad\">{}</b></a>",
        overdue[4]
    )));

    // The log moves on (a mark through the teacher's form): the panel folds the new events.
    let mut teacher = site.signed_in(Role::Teacher).await;
    let path = format!("/register/{}", site.cast.class);
    let (_, register) = teacher.get(&path).await;
    let today = chrono::Utc::now().date_naive().to_string();
    let (status, _, _) = teacher
        .post(
            &format!("{path}/mark"),
            &[
                ("csrf", &support::hidden(&register, "csrf")),
                ("key", &support::hidden(&register, "key")),
                ("learner_id", &site.cast.learner.to_string()),
                ("subject", &site.cast.subject),
                ("lesson_date", &today),
                ("value", "5"),
                ("work", "работа на уроке"),
                ("weight", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let head = site.registry.head();
    assert!(
        site.registry
            .wait_projected(head, std::time::Duration::from_secs(10))
            .await
    );
    let (_, page) = region.get("/analytics").await;
    assert_eq!(position_on(&page), head);
    assert!(page.contains("Счёт витрин совпадает со счётом по журналу."));

    // Read models altered behind the registry's back: an application no longer pending, an
    // enrollment ended. The writer's state cannot see it; the count from the log does.
    let pool = site.registry.read().pool();
    let (application, organization, due_on): (String, String, String) = sqlx::query_as(
        "SELECT application_id, organization_id, due_on FROM vacancy_applications \
         WHERE status = 'pending' ORDER BY application_id LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE vacancy_applications SET status = 'withdrawn' WHERE application_id = $1")
        .bind(&application)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE register_enrollments SET ended_on = '2020-01-01' WHERE enrollment_id = \
         (SELECT enrollment_id FROM register_enrollments WHERE ended_on IS NULL \
          ORDER BY enrollment_id LIMIT 1)",
    )
    .execute(pool)
    .await
    .unwrap();
    let (_, page) = region.get("/analytics").await;
    // Open enrollments and pending applications; overdue ones too if it was overdue.
    let expected = 2 + usize::from(due_on < today);
    assert!(
        page.contains(&format!("Расхождений: {expected}.")),
        "{page}"
    );
    assert!(
        page.contains("Витрина совпадает с журналом событий, переполненных классов нет."),
        "the check against the writer's state does not see it"
    );
    let rows = csv(&mut region, "/analytics/reconciliation.csv").await;
    let name: (String,) =
        sqlx::query_as("SELECT name FROM vacancy_organizations WHERE organization_id = $1")
            .bind(&organization)
            .fetch_one(pool)
            .await
            .unwrap();
    let differing: Vec<&Vec<String>> = rows[1..]
        .iter()
        .filter(|r| r[verdict] == "расходится")
        .collect();
    assert!(
        differing
            .iter()
            .any(|r| r[0] == "Заявления в очереди (витрина мест)" && r[2] == name.0),
        "{differing:?}"
    );
    assert!(
        differing
            .iter()
            .any(|r| r[0] == "Открытые зачисления (реестр)" && r[2] != "все"),
        "{differing:?}"
    );
    for r in &differing {
        let (read, logged): (i64, i64) = (r[4].parse().unwrap(), r[5].parse().unwrap());
        assert_eq!(read + 1, logged, "{r:?}");
    }

    // Read models that claim a position past the end of the log.
    let past = site.registry.head() + 5;
    sqlx::query("UPDATE projection_positions SET position = $1")
        .bind(past as i64)
        .execute(pool)
        .await
        .unwrap();
    let rows = csv(&mut region, "/analytics/reconciliation.csv").await;
    assert_eq!(
        rows[1],
        [
            "Позиция в журнале событий",
            "все",
            "все",
            "расходится",
            &past.to_string(),
            &site.registry.head().to_string()
        ],
        "{rows:?}"
    );
}
