//! The pages, black-box over HTTP on a random port: sessions, CSRF, reach, journaling, and the
//! story of a mark from the teacher's form to the parent's diary and the auditor's timeline.
#![allow(clippy::unwrap_used)]

mod support;

use contingent_access::Role;
use reqwest::StatusCode;
use support::{hidden, Browser, Site};

/// The value of the field `name` (hidden or not).
fn hidden_or_value(page: &str, name: &str) -> String {
    let at = page.find(&format!("name=\"{name}\"")).expect("the field");
    let rest = &page[at..];
    let start = rest.find("value=\"").expect("a value") + 7;
    rest[start..].split('"').next().unwrap().to_owned()
}

const PAGES: &[&str] = &[
    "/diary",
    "/register",
    "/school",
    "/audit",
    "/analytics",
    "/analytics/municipality.csv",
];

#[tokio::test]
async fn pages_refuse_without_a_session_and_forms_without_one_change_nothing() {
    let site = Site::start().await;
    let mut anonymous = Browser::new(&site.base);
    let learner = site.cast.learner;
    for path in PAGES.iter().map(|p| (*p).to_owned()).chain([
        format!("/diary/{learner}"),
        format!("/audit/learners/{learner}"),
    ]) {
        let response = anonymous.get_raw(&path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(support::location(&response).as_deref(), Some("/signin"));
        let body = response.text().await.unwrap();
        assert!(
            !body.contains(&learner.to_string()),
            "{path} reveals nothing"
        );
    }
    // A made-up session is no session.
    let mut forged = Browser::new(&site.base);
    let _ = forged.get("/signin").await;
    let head = site.registry.head();
    let (status, _, _) = forged
        .post(
            &format!("/register/{}/mark", site.cast.class),
            &[("csrf", "x"), ("learner_id", &learner.to_string())],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(site.registry.head(), head, "nothing appended");
}

#[tokio::test]
async fn each_role_signs_in_and_opens_its_main_page() {
    let site = Site::start().await;
    for (role, heading) in [
        (Role::Parent, "Дневник: "),
        (Role::Teacher, "Классный журнал"),
        (Role::Organization, "Организация: "),
        (Role::Municipality, "Контингент: "),
        (Role::Region, "Контингент: регион"),
        (Role::Auditor, "Аудит журнала событий"),
    ] {
        let mut b = site.signed_in(role).await;
        assert!(b.has_cookie("contingent_session"));
        let (status, page) = b.get("/").await;
        assert_eq!(status, StatusCode::OK, "{role:?}");
        assert!(page.contains(heading), "{role:?}: {page}");
    }
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site_strict() {
    let site = Site::start().await;
    let mut b = Browser::new(&site.base);
    let (_, page) = b.get("/signin").await;
    let nonce = hidden(&page, "csrf");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/signin", site.base))
        .header("cookie", format!("contingent_signin={nonce}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={nonce}&account=0"))
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("contingent_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // Without the sign-in form's own cookie the form is refused (login CSRF).
    let refused = client
        .post(format!("{}/signin", site.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={nonce}&account=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_parent_opens_only_their_childs_diary_and_refusals_reveal_nothing() {
    let site = Site::start().await;
    let mut parent = site.signed_in(Role::Parent).await;
    let (status, own) = parent.get(&format!("/diary/{}", site.cast.learner)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(own.contains("Отметки"));
    let (other_status, other) = parent
        .get(&format!("/diary/{}", site.cast.other_learner))
        .await;
    let (missing_status, missing) = parent
        .get(&format!("/diary/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(other_status, StatusCode::FORBIDDEN);
    assert_eq!(missing_status, StatusCode::FORBIDDEN);
    assert_eq!(
        other, missing,
        "another child's diary and none at all look the same"
    );
    assert!(!other.contains(&site.cast.other_learner.to_string()));
    // The parent may not open the auditor's or the analyst's pages either.
    for path in ["/audit", "/analytics", "/school"] {
        let (status, _) = parent.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_is_refused() {
    let site = Site::start().await;
    let mut teacher = site.signed_in(Role::Teacher).await;
    let path = format!("/register/{}", site.cast.class);
    let (status, page) = teacher.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden(&page, "csrf");
    let learner = site.cast.learner.to_string();
    let today = chrono::Utc::now().date_naive().to_string();
    let head = site.registry.head();
    for sent in ["", "0123456789abcdef", &csrf[1..]] {
        let (status, page, _) = teacher
            .post(
                &format!("{path}/mark"),
                &[
                    ("csrf", sent),
                    ("learner_id", &learner),
                    ("subject", &site.cast.subject),
                    ("lesson_date", &today),
                    ("value", "5"),
                    ("work", "работа на уроке"),
                    ("weight", "1"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "csrf {sent:?}");
        assert!(page.contains("CSRF"));
    }
    assert_eq!(site.registry.head(), head, "nothing appended");
}

#[tokio::test]
async fn the_registrys_refusal_is_shown_in_russian() {
    let site = Site::start().await;
    let mut teacher = site.signed_in(Role::Teacher).await;
    let path = format!("/register/{}", site.cast.class);
    let (_, page) = teacher.get(&path).await;
    let today = chrono::Utc::now().date_naive().to_string();
    let (status, page, _) = teacher
        .post(
            &format!("{path}/mark"),
            &[
                ("csrf", &hidden(&page, "csrf")),
                ("key", &hidden(&page, "key")),
                ("learner_id", &site.cast.other_learner.to_string()),
                ("subject", &site.cast.subject),
                ("lesson_date", &today),
                ("value", "5"),
                ("work", "работа на уроке"),
                ("weight", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(
        page.contains("В этот день обучающийся не числился в классе."),
        "{page}"
    );
    assert!(page.contains("learner_not_in_class"));
}

#[tokio::test]
async fn every_read_is_journaled_as_the_apis() {
    let site = Site::start().await;
    let learner = site.cast.learner.to_string();
    let mut auditor = site.signed_in(Role::Auditor).await;
    let timeline = format!("/audit/learners/{learner}");
    let (status, page) = auditor.get(&timeline).await;
    assert_eq!(status, StatusCode::OK);
    // The view itself is journaled before the journal is read for it.
    assert!(page.contains("Показаны последние 1 из 1 записей"), "{page}");
    let mut teacher = site.signed_in(Role::Teacher).await;
    let register = format!("/register/{}", site.cast.class);
    let (status, _) = teacher.get(&register).await;
    assert_eq!(status, StatusCode::OK);
    let mut parent = site.signed_in(Role::Parent).await;
    let refused = format!("/diary/{}", site.cast.other_learner);
    let (status, _) = parent.get(&refused).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let journal = site.registry.journal();
    let entries = journal.for_learner(&learner).await.unwrap();
    let read = |subject: &str, endpoint: &str| {
        entries
            .iter()
            .any(|e| e.subject == subject && e.endpoint == endpoint && e.outcome == "read")
    };
    assert!(read("auditor-1", &timeline), "{entries:?}");
    assert!(read(&site.cast.teacher, &register), "{entries:?}");
    let other = journal
        .for_learner(&site.cast.other_learner.to_string())
        .await
        .unwrap();
    assert!(
        other
            .iter()
            .any(|e| e.subject == "parent-1" && e.endpoint == refused && e.outcome == "refused"),
        "{other:?}"
    );
}

#[tokio::test]
async fn a_mark_recorded_by_the_teacher_shows_in_the_diary_and_the_timeline() {
    let site = Site::start().await;
    let mut teacher = site.signed_in(Role::Teacher).await;
    let path = format!("/register/{}", site.cast.class);
    let (_, page) = teacher.get(&path).await;
    let today = chrono::Utc::now().date_naive().to_string();
    let work = "проверочная работа по странице";
    let form = [
        ("csrf", hidden(&page, "csrf")),
        ("key", hidden(&page, "key")),
        ("learner_id", site.cast.learner.to_string()),
        ("subject", site.cast.subject.clone()),
        ("lesson_date", today.clone()),
        ("value", "4".to_owned()),
        ("work", work.to_owned()),
        ("weight", "2".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, location) = teacher.post(&format!("{path}/mark"), &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = location.unwrap();
    assert!(location.contains("done=mark"), "{location}");
    let head = site.registry.head();
    // The same form sent again records nothing new.
    let (again, _, _) = teacher.post(&format!("{path}/mark"), &form).await;
    assert_eq!(again, StatusCode::SEE_OTHER);
    assert_eq!(site.registry.head(), head, "a form sent twice records once");
    let (_, register) = teacher.get(&location).await;
    assert!(register.contains("Отметка записана"));
    // The notice names the mark, and the correction form is filled in with it.
    let mark = hidden_or_value(&register, "mark_id");
    assert!(location.ends_with(&mark), "{location}");
    let (status, _, corrected) = teacher
        .post(
            &format!("{path}/correct"),
            &[
                ("csrf", &hidden(&register, "csrf")),
                ("key", &hidden(&register, "key")),
                ("mark_id", &mark),
                ("value", "5"),
                ("reason", "перепроверка работы"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(corrected.unwrap().contains("done=correct"));

    let mut parent = site.signed_in(Role::Parent).await;
    let (status, diary) = parent.get(&format!("/diary/{}", site.cast.learner)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(diary.contains(work), "the parent sees the mark");
    assert!(diary.contains("испр."), "and that it was corrected");

    let mut auditor = site.signed_in(Role::Auditor).await;
    let (status, timeline) = auditor
        .get(&format!(
            "/audit/learners/{}?type=mark_recorded",
            site.cast.learner
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        timeline.contains(&format!("<td class=\"num\">{head}</td>")),
        "the auditor sees position {head}"
    );
    assert!(timeline.contains(&site.cast.teacher));
}

#[tokio::test]
async fn the_school_sees_its_classes_and_queue_and_the_analyst_charts_and_csv() {
    let site = Site::start().await;
    let mut school = site.signed_in(Role::Organization).await;
    let (status, page) = school.get("/school").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Классы и свободные места") && page.contains("Очередь заявлений"));
    let mut region = site.signed_in(Role::Region).await;
    let (status, page) = region.get("/analytics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Витрина совпадает с журналом событий, переполненных классов нет."),
        "the read model agrees with the log"
    );
    for chart in ["chart-municipality", "chart-grade"] {
        let at = page
            .find(&format!("id=\"{chart}\""))
            .expect("the chart's figure");
        assert!(
            page[at..].contains("<svg") && page[at..].contains("<rect"),
            "{chart} is drawn"
        );
    }
    let response = region.get_raw("/analytics/organization.csv").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/csv")));
    let csv = response.text().await.unwrap();
    assert!(csv.starts_with("муниципалитет,организация,классов,мест,обучающихся,свободно\r\n"));
    assert!(csv.lines().count() > 1);
}

#[tokio::test]
async fn the_data_quality_panel_finds_a_read_model_that_disagrees_with_the_log() {
    let site = Site::start().await;
    // The read model altered behind the registry's back: one class shows one learner too many.
    sqlx::query("UPDATE vacancy_classes SET enrolled = enrolled + 1 WHERE class_id = $1")
        .bind(site.cast.class.to_string())
        .execute(site.registry.read().pool())
        .await
        .unwrap();
    let mut region = site.signed_in(Role::Region).await;
    let (status, page) = region.get("/analytics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Нарушений: 1."), "{page}");
    assert!(page.contains("витрина расходится с журналом"));
    let csv = region
        .get_raw("/analytics/quality.csv")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
}

#[tokio::test]
async fn a_kindergarten_enrolls_an_applicant_from_its_queue() {
    let site = Site::start().await;
    let index = site
        .accounts
        .iter()
        .position(|a| a.label == "Детский сад")
        .unwrap();
    let mut kindergarten = site.signed_in_as(index).await;
    let (status, page) = kindergarten.get("/school").await;
    assert_eq!(status, StatusCode::OK);
    let forms: Vec<&str> = page
        .split("<form class=\"inline\" method=\"post\" action=\"/school/enroll\">")
        .skip(1)
        .map(|f| f.split("</form>").next().unwrap())
        .collect();
    assert!(!forms.is_empty(), "the queue offers enrolling: {page}");
    let field = |form: &str, name: &str| {
        let at = form.find(&format!("name=\"{name}\"")).unwrap();
        let rest = &form[at..];
        let start = rest.find("value=\"").unwrap() + 7;
        rest[start..].split('"').next().unwrap().to_owned()
    };
    let csrf = hidden(&page, "csrf");
    // The first applicant the rules accept is enrolled; refusals come back as pages in Russian.
    let mut enrolled = None;
    for form in &forms {
        let application = field(form, "application_id");
        let (status, refusal, location) = kindergarten
            .post(
                "/school/enroll",
                &[
                    ("csrf", &csrf),
                    ("key", &field(form, "key")),
                    ("application_id", &application),
                    ("learner_id", &field(form, "learner_id")),
                    ("class_id", &field(form, "class_id")),
                    ("enrolled_on", &field(form, "enrolled_on")),
                    ("order", "Приказ № 5-д"),
                ],
            )
            .await;
        if status == StatusCode::SEE_OTHER {
            assert_eq!(location.as_deref(), Some("/school?done=enroll"));
            enrolled = Some(application);
            break;
        }
        assert!(refusal.contains("class=\"refusal\""), "{refusal}");
    }
    let application = enrolled.expect("an applicant enrolled");
    let (_, page) = kindergarten.get("/school?done=enroll").await;
    assert!(page.contains("Зачисление записано."));
    assert!(
        !page.contains(&format!("value=\"{application}\"")),
        "the application left the queue"
    );
}

/// The pages are served under the API's bounds: the same concurrency limit (requests past it
/// are shed at once, pages as API calls) and the same request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_share_the_apis_concurrency_limit_and_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let site = Site::start_configured(contingent_simulate::Scale::tiny(), |s| {
        s.limits.max_concurrent_requests = 2;
        s.limits.request_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let region = site
        .issuer
        .issue(
            &support::claims("region-1", Role::Region),
            std::time::Duration::from_secs(600),
        )
        .expect("a token");
    let address = site.base.trim_start_matches("http://").to_owned();
    // Two API commands whose bodies never arrive hold both places.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut socket = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        let head = format!(
            "POST /v1/commands/register_organization HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {region}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
        );
        socket.write_all(head.as_bytes()).await.expect("written");
        stalled.push(socket);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut anonymous = Browser::new(&site.base);
    let response = anonymous.get_raw("/signin").await;
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a page is shed at once like an API call"
    );
    assert!(response.headers().contains_key("retry-after"));
    for mut socket in stalled {
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read(&mut answer))
            .await
            .expect("answered within the timeout")
            .expect("read");
        assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 503"));
    }
    let (status, _) = anonymous.get("/signin").await;
    assert_eq!(status, StatusCode::OK, "served again once places are free");
}

/// A signed-in person's page views count against the API's per-caller rate: past it a page is
/// answered 429 with `Retry-After`, while another person is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_over_the_callers_rate_is_answered_too_many_requests() {
    let site = Site::start_configured(contingent_simulate::Scale::tiny(), |s| {
        s.limits.caller_per_second = 1;
        s.limits.caller_burst = 5;
    })
    .await;
    let mut parent = site.signed_in(Role::Parent).await;
    let mut over = None;
    for _ in 0..20 {
        let response = parent.get_raw("/diary").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            over = Some(response);
            break;
        }
    }
    let over = over.expect("past a burst of 5, a page is refused");
    assert!(over.headers().contains_key("retry-after"));
    assert!(over
        .text()
        .await
        .unwrap()
        .contains("Слишком много запросов"));
    let mut teacher = site.signed_in(Role::Teacher).await;
    let (status, _) = teacher.get("/register").await;
    assert_eq!(status, StatusCode::OK, "another person is served");
}
