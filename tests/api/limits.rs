//! Abuse stays bounded: a flood of requests with bad tokens from many addresses neither grows
//! the access journal by an entry a request nor the process's memory, and a good caller keeps
//! being served all along; one caller past its rate is told to wait (429 with `Retry-After`);
//! past the concurrency limit requests are shed at once (503) rather than queued; a request
//! past the timeout is answered 503 `timeout`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use contingent_access::{LocalIssuer, Role};
use reqwest::StatusCode;

use crate::helpers::{claims, TestApp};

/// The resident set of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// A client whose connections come from `address` (any of 127.0.0.0/8 reaches loopback).
fn client_from(address: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_tokens_stays_bounded_and_good_callers_are_served() {
    let app = TestApp::spawn_configured(|s| {
        s.limits.refused_per_address_per_minute = 60;
        s.limits.refused_burst = 10;
        s.limits.anonymous_summary_every = Duration::from_millis(500);
    })
    .await;
    let region = app.region();
    let good = app.client.clone();
    // The good caller's token is verified once, then remembered.
    let (status, _) = app.get_as(&region, "/v1/organizations").await;
    assert_eq!(status, StatusCode::OK);
    let journal_before = app.registry.journal().count().await.expect("count");

    // Tokens a flooder can make: garbage, and well-formed ones signed by a key of its own
    // (each costs a signature check unless its address is already over its rate).
    let forger = LocalIssuer::generate(
        contingent_access::LOCAL_ISSUER,
        contingent_access::DEFAULT_AUDIENCE,
    );
    let forged = forger
        .issue(&claims("intruder", Role::Region), Duration::from_secs(600))
        .expect("token");
    const ADDRESSES: u32 = 48;
    const PER_ADDRESS: u32 = 120;
    let statuses: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let rss_before = rss_kib();
    let started = Instant::now();
    let mut flooders = Vec::new();
    for a in 0..ADDRESSES {
        let address: IpAddr = format!("127.0.{}.{}", 1 + a / 200, 1 + a % 200)
            .parse()
            .expect("address");
        let client = client_from(address);
        let (base, forged, statuses) = (app.base.clone(), forged.clone(), statuses.clone());
        flooders.push(tokio::spawn(async move {
            for i in 0..PER_ADDRESS {
                let token = if i % 4 == 0 {
                    forged.clone()
                } else {
                    format!("garbage.{a}.{i}")
                };
                let learner = uuid::Uuid::new_v4();
                let r = client
                    .get(format!(
                        "{base}/v1/learners/{learner}/diary?attacker=path-{i}"
                    ))
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("answered");
                let slot = match r.status() {
                    StatusCode::UNAUTHORIZED => 0,
                    StatusCode::TOO_MANY_REQUESTS => {
                        assert!(r.headers().contains_key("retry-after"));
                        1
                    }
                    other => panic!("a bad token answered {other}"),
                };
                statuses[slot].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Meanwhile the good caller is served, every time, without waiting long.
    let mut slowest = Duration::ZERO;
    let mut served = 0;
    while flooders.iter().any(|f| !f.is_finished()) || served < 20 {
        let t = Instant::now();
        let r = good
            .get(format!("{}/v1/organizations", app.base))
            .bearer_auth(&region)
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), StatusCode::OK, "the good caller is served");
        slowest = slowest.max(t.elapsed());
        served += 1;
    }
    for f in flooders {
        f.await.expect("flooder");
    }
    let elapsed = started.elapsed();
    let unauthorized = statuses[0].load(Ordering::Relaxed);
    let limited = statuses[1].load(Ordering::Relaxed);
    let total = u64::from(ADDRESSES * PER_ADDRESS);
    assert_eq!(unauthorized + limited, total);
    // Each address gets its burst and then about one refusal a second as 401; the rest is 429.
    let per_address_allowance = 10 + elapsed.as_secs() + 2;
    assert!(
        unauthorized <= u64::from(ADDRESSES) * per_address_allowance,
        "{unauthorized} answered 401 in {elapsed:?}"
    );
    assert!(limited >= total / 2, "{limited} of {total} answered 429");

    // The journal holds a summary per period, not an entry per request.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let journal_after = app.registry.journal().count().await.expect("count");
    let periods = elapsed.as_millis() as u64 / 500 + 3;
    assert!(
        journal_after - journal_before <= periods,
        "{} journal entries for {total} refused requests in {elapsed:?}",
        journal_after - journal_before
    );
    let summaries = app
        .registry
        .journal()
        .anonymous_summaries()
        .await
        .expect("summaries");
    let counted: u64 = summaries
        .iter()
        .map(|e| {
            e.outcome
                .strip_prefix("unauthenticated: ")
                .and_then(|o| o.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .expect("a count")
        })
        .sum();
    assert_eq!(counted, total, "every refused request is counted once");
    assert!(
        summaries
            .iter()
            .all(|e| e.endpoint == "*" && e.learner_id.is_none()),
        "no sender-chosen path or learner is stored"
    );
    let metrics = good
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(&format!(
            "contingent_requests_unauthenticated_total {total}\n"
        )),
        "{metrics}"
    );
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
    eprintln!(
        "{total} bad-token requests from {ADDRESSES} addresses in {elapsed:?}: {unauthorized} answered 401, {limited} 429; good caller served {served} times, slowest {slowest:?}; journal +{} entries; RSS +{grown} KiB",
        journal_after - journal_before
    );
}

#[tokio::test]
async fn a_caller_past_its_rate_is_told_when_to_retry() {
    let app = TestApp::spawn_configured(|s| {
        s.limits.caller_per_second = 5;
        s.limits.caller_burst = 10;
    })
    .await;
    let region = app.region();
    let mut statuses = Vec::new();
    for _ in 0..15 {
        let r = app
            .client
            .get(format!("{}/v1/organizations", app.base))
            .bearer_auth(&region)
            .send()
            .await
            .expect("answered");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(
                r.headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
                Some("application/problem+json")
            );
            assert_eq!(
                r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
                Some("1")
            );
            let body: serde_json::Value = r.json().await.expect("problem");
            assert_eq!(body["code"], "rate_limited");
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses[10..].contains(&429), "{statuses:?}");
    // Another caller has a rate of their own.
    let auditor = app.token(&claims("auditor-1", Role::Auditor));
    let (status, _) = app.get_as(&auditor, "/v1/organizations").await;
    assert_eq!(status, StatusCode::OK);
    // Probes are not limited.
    let r = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_limit_requests_are_shed_and_slow_ones_time_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_configured(|s| {
        s.limits.max_concurrent_requests = 2;
        s.limits.request_timeout = Duration::from_secs(2);
    })
    .await;
    let region = app.region();
    let address = app.base.trim_start_matches("http://").to_owned();
    // Two commands whose bodies never arrive hold the two places.
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = app
        .client
        .get(format!("{}/v1/organizations", app.base))
        .bearer_auth(&region)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "shed at once");
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.expect("problem");
    assert_eq!(body["code"], "overloaded");
    // Probes are answered whatever the load.
    let r = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    // The stalled requests are answered once the timeout passes, and their places free up.
    for mut socket in stalled {
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut answer))
            .await
            .expect("answered within the timeout")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("\"code\":\"timeout\""), "{answer}");
    }
    let (status, _) = app.get_as(&region, "/v1/organizations").await;
    assert_eq!(status, StatusCode::OK);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("contingent_requests_shed_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("contingent_requests_timed_out_total 2\n"),
        "{metrics}"
    );
}
