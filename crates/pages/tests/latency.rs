//! How long each page takes on the demo region (`Scale::demo()`: 3 municipalities, 25
//! organizations, 2,500 learners): each role's pages requested one after another over loopback
//! HTTP, 300 times each after 20 warm-up requests; the first request's time, p50, p99 and the
//! largest time are printed.
//! Ignored by default; `docs/performance.md` gives the command and the figures.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use contingent_access::Role;
use support::Site;

const WARM_UP: usize = 20;
const ROUNDS: usize = 300;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test --release -p contingent-pages --test latency -- --ignored --nocapture"]
async fn each_page_answers_within_its_budget_on_the_demo_region() {
    let site = Site::start_with(contingent_simulate::Scale::demo()).await;
    let c = &site.cast;
    let pages = [
        (Role::Parent, format!("/diary/{}", c.learner)),
        (Role::Parent, format!("/diary/{}?year=all", c.learner)),
        (Role::Teacher, "/register".to_owned()),
        (Role::Teacher, format!("/register/{}", c.class)),
        (Role::Organization, "/school".to_owned()),
        (Role::Municipality, "/analytics".to_owned()),
        (Role::Region, "/analytics".to_owned()),
        (Role::Region, "/analytics/organization.csv".to_owned()),
        (Role::Municipality, "/analytics/movements".to_owned()),
        (Role::Region, "/analytics/movements".to_owned()),
        (Role::Municipality, "/analytics/queues".to_owned()),
        (Role::Region, "/analytics/queues".to_owned()),
        (Role::Region, "/analytics/overdue.csv".to_owned()),
        (Role::Municipality, "/analytics/exams".to_owned()),
        (Role::Region, "/analytics/exams".to_owned()),
        (Role::Region, "/analytics/reconciliation.csv".to_owned()),
        (Role::Auditor, "/audit".to_owned()),
        (Role::Auditor, format!("/audit/learners/{}", c.learner)),
        (
            Role::Auditor,
            format!("/audit/learners/{}?as_of=2025-12-31", c.learner),
        ),
    ];
    println!(
        "| page | role | first ms | p50 ms | p99 ms | max ms |\n| --- | --- | ---: | ---: | ---: | ---: |"
    );
    let mut worst = Duration::ZERO;
    // The API's answers that the auditor's timeline is made of, for comparison.
    let api = [
        format!("/v1/learners/{}/history", c.learner),
        format!("/v1/learners/{}/access", c.learner),
    ];
    let pages = pages
        .into_iter()
        .map(|(role, path)| (role, path, false))
        .chain(api.into_iter().map(|path| (Role::Auditor, path, true)));
    for (role, path, bearer) in pages {
        let mut b = site.signed_in(role).await;
        if bearer {
            let claims = site.accounts[site.account(role)].claims.clone();
            b.bearer = Some(
                site.issuer
                    .issue(&claims, Duration::from_secs(3600))
                    .unwrap(),
            );
        }
        // The first request apart: the first view of the data-quality panel after a start
        // folds the whole log.
        let started = Instant::now();
        let (status, _) = b.get(&path).await;
        let first = started.elapsed();
        assert!(status.is_success(), "{path}: {status}");
        for _ in 0..WARM_UP {
            let (status, _) = b.get(&path).await;
            assert!(status.is_success(), "{path}: {status}");
        }
        let mut times = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let (status, body) = b.get(&path).await;
            times.push(started.elapsed());
            assert!(status.is_success() && !body.is_empty());
        }
        times.sort();
        let p99 = percentile(&times, 0.99);
        worst = worst.max(p99);
        let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
        let shown = path
            .replace(&c.learner.to_string(), "{learner}")
            .replace(&c.class.to_string(), "{class}");
        println!(
            "| `{shown}` | {} | {} | {} | {} | {} |",
            role.as_str(),
            ms(first),
            ms(percentile(&times, 0.5)),
            ms(p99),
            ms(times[times.len() - 1])
        );
    }
    println!("worst p99: {:.2} ms", worst.as_secs_f64() * 1000.0);
}
