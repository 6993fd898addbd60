//! Latency and throughput of the diary, class register and vacancy queries over HTTP on
//! loopback: the API over a registry holding the region, tokens minted by a local issuer, and a
//! load of concurrent requests, each on its own connection.
//!
//! Every load runs with writes beside it unless its name ends in `_no_writes` (none) or
//! `_region_events_only` (only the capacity changes): a school day of the region (an attendance record for every learner in a general-education class and one and
//! a half marks each, [`crate::fixture::school_day`]) submitted evenly over the load's warm-up
//! and measured seconds, and 16 region-wide `change_class_capacity` commands a second (events
//! about no learner). The diary is measured with the read cache and without it (every diary
//! from the read models), each also with no writes (what the writes beside cost the read), and
//! with the cache and only the region-wide events (which evict no diary).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::Days;
use contingent_access::{Claims, LocalIssuer, Role, DEFAULT_AUDIENCE, LOCAL_ISSUER};
use contingent_domain::{AcademicYear, Level, OrganizationKind};
use contingent_registry::{Registry, Settings};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::report::{rate, round, Percentiles};
use crate::Ctx;

/// Region-wide events about no learner submitted per second beside a query load.
const CAPACITY_CHANGES_PER_S: f64 = 16.0;

/// What the writes beside one load did.
#[derive(Default)]
struct Written {
    submitted: u64,
    accepted: u64,
    not_accepted: u64,
    first_problem: Option<String>,
}

/// Submits `commands` evenly over `span` (in ticks of 20 ms), each in a task of its own so a
/// slow commit does not hold the pace back; waits for every answer.
async fn paced(
    registry: Arc<Registry>,
    commands: Vec<(contingent_domain::Command, contingent_log::Metadata)>,
    span: Duration,
) -> Written {
    let tick = Duration::from_millis(20);
    let ticks = (span.as_secs_f64() / tick.as_secs_f64()).max(1.0) as usize;
    let per_tick = commands.len().div_ceil(ticks).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    let mut interval = tokio::time::interval(tick);
    let mut commands = commands.into_iter().peekable();
    let mut out = Written::default();
    while commands.peek().is_some() {
        interval.tick().await;
        for (command, meta) in commands.by_ref().take(per_tick) {
            let registry = registry.clone();
            out.submitted += 1;
            tasks.spawn(async move { registry.submit(command, meta).await.map(|_| ()) });
        }
    }
    while let Some(answer) = tasks.join_next().await {
        match answer {
            Ok(Ok(())) => out.accepted += 1,
            Ok(Err(e)) => {
                out.not_accepted += 1;
                out.first_problem.get_or_insert(e.to_string());
            }
            Err(e) => {
                out.not_accepted += 1;
                out.first_problem.get_or_insert(e.to_string());
            }
        }
    }
    out
}

/// Which writes run beside a load.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writes {
    /// None.
    None,
    /// Only the region-wide capacity changes.
    RegionOnly,
    /// A school day of the region and the region-wide capacity changes.
    SchoolDay,
}

/// The writes beside one load of `span`: a school day of the region (unless `region_only`) and
/// region-wide capacity changes, both spread over the span.
async fn write_beside(
    registry: Arc<Registry>,
    today: chrono::NaiveDate,
    seed: u64,
    span: Duration,
    region_only: bool,
) -> Result<Written> {
    let day = if region_only {
        Vec::new()
    } else {
        registry.read_state(|state| crate::fixture::school_day(state, today, seed))?
    };
    let changes = (CAPACITY_CHANGES_PER_S * span.as_secs_f64()).round() as usize;
    let capacity =
        registry.read_state(|state| crate::fixture::capacity_changes(state, today, changes & !1));
    let (a, b) = tokio::join!(
        paced(registry.clone(), day, span),
        paced(registry, capacity, span)
    );
    Ok(Written {
        submitted: a.submitted + b.submitted,
        accepted: a.accepted + b.accepted,
        not_accepted: a.not_accepted + b.not_accepted,
        first_problem: a.first_problem.or(b.first_problem),
    })
}

/// One request: a path and the bearer token that may ask it.
#[derive(Clone)]
struct Target {
    path: String,
    token: Arc<str>,
}

fn claims(sub: &str, role: Role) -> Claims {
    Claims {
        sub: sub.into(),
        role,
        snils: None,
        org: None,
        municipality: None,
        name: None,
    }
}

/// Requests of each kind over the region: parents' diaries of the current year, teachers'
/// class registers of the last 30 days, schools' free places.
fn targets(
    registry: &Registry,
    issuer: &LocalIssuer,
    limit: usize,
) -> Result<Vec<(&'static str, Vec<Target>)>> {
    let today = chrono::Utc::now().date_naive();
    let year = AcademicYear::containing(today);
    let month_ago = today.checked_sub_days(Days::new(30)).unwrap_or(today);
    let ttl = Duration::from_secs(6 * 3600);
    let (diaries, registers, vacancies) = registry.read_state(|state| {
        let mut learners: Vec<_> = state
            .learners()
            .filter(|(_, l)| {
                !l.guardians.is_empty()
                    && l.memberships.iter().any(|m| {
                        m.until.is_none()
                            && state.class(m.class_id).is_some_and(|c| {
                                c.academic_year == year && c.level == Level::General
                            })
                    })
            })
            .map(|(id, l)| (*id, l.guardians[0]))
            .collect();
        learners.sort_by_key(|(id, _)| *id);
        learners.truncate(limit);
        let mut classes: Vec<_> = state
            .classes()
            .filter(|(_, c)| {
                c.academic_year == year && c.level == Level::General && !c.teachers.is_empty()
            })
            .map(|(id, c)| (*id, c.organization_id, c.teachers[0].as_str().to_owned()))
            .collect();
        classes.sort();
        classes.truncate(limit);
        let mut schools: Vec<_> = classes.iter().map(|(_, org, _)| *org).collect();
        schools.sort();
        schools.dedup();
        schools.retain(|o| {
            state
                .organization(*o)
                .is_some_and(|org| org.kind == OrganizationKind::School)
        });
        (learners, classes, schools)
    });
    let mut diary = Vec::new();
    for (i, (learner, snils)) in diaries.iter().enumerate() {
        let token = issuer.issue(
            &Claims {
                snils: Some(snils.to_string()),
                ..claims(&format!("parent-{i}"), Role::Parent)
            },
            ttl,
        )?;
        diary.push(Target {
            path: format!("/v1/learners/{learner}/diary?academic_year={year}"),
            token: token.into(),
        });
    }
    let mut register = Vec::new();
    for (class, org, teacher) in &registers {
        let token = issuer.issue(
            &Claims {
                org: Some(*org),
                ..claims(teacher, Role::Teacher)
            },
            ttl,
        )?;
        register.push(Target {
            path: format!("/v1/classes/{class}/register?on={today}&from={month_ago}&to={today}"),
            token: token.into(),
        });
    }
    let mut vacancy = Vec::new();
    for org in &vacancies {
        let token = issuer.issue(
            &Claims {
                org: Some(*org),
                ..claims("school-admin", Role::Organization)
            },
            ttl,
        )?;
        vacancy.push(Target {
            path: format!("/v1/vacancies?organization_id={org}&only_free=true"),
            token: token.into(),
        });
    }
    Ok(vec![
        ("diary", diary),
        ("class_register", register),
        ("vacancies", vacancy),
    ])
}

/// What one load gave.
struct Load {
    ok: u64,
    failed: u64,
    first_failure: Option<String>,
    bytes: u64,
    measured: Duration,
    latency: Percentiles,
}

/// `concurrency` connections, each sending one request at a time for `warmup + measure`;
/// requests started during the warm-up are not counted.
async fn load(
    addr: std::net::SocketAddr,
    targets: Arc<Vec<Target>>,
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<Load> {
    let started = Instant::now();
    let from = started + warmup;
    let until = from + measure;
    let mut tasks = Vec::with_capacity(concurrency);
    for c in 0..concurrency {
        let targets = targets.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples: Vec<u64> = Vec::new();
            let (mut ok, mut failed, mut bytes) = (0u64, 0u64, 0u64);
            let mut first_failure: Option<String> = None;
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut i = c;
            loop {
                let t = Instant::now();
                if t >= until {
                    break;
                }
                let target = &targets[i % targets.len()];
                i += concurrency;
                let request = hyper::Request::get(target.path.as_str())
                    .header("host", "bench")
                    .header("authorization", format!("Bearer {}", target.token))
                    .body(Empty::<Bytes>::new())?;
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                let elapsed = t.elapsed();
                if t < from {
                    continue;
                }
                if status.is_success() {
                    ok += 1;
                    bytes += body.len() as u64;
                    samples.push(elapsed.as_micros() as u64);
                } else {
                    failed += 1;
                    first_failure.get_or_insert_with(|| {
                        format!(
                            "{status}: {}",
                            String::from_utf8_lossy(&body[..body.len().min(300)])
                        )
                    });
                }
            }
            anyhow::Ok((samples, ok, failed, bytes, first_failure))
        }));
    }
    let mut all = Vec::new();
    let mut out = Load {
        ok: 0,
        failed: 0,
        first_failure: None,
        bytes: 0,
        measured: measure,
        latency: Percentiles::default(),
    };
    for task in tasks {
        let (samples, ok, failed, bytes, failure) = task.await??;
        all.extend(samples);
        out.ok += ok;
        out.failed += failed;
        out.bytes += bytes;
        if out.first_failure.is_none() {
            out.first_failure = failure;
        }
    }
    out.measured = Instant::now()
        .saturating_duration_since(from)
        .min(measure + Duration::from_secs(60));
    out.latency = Percentiles::of(all);
    Ok(out)
}

/// Where a query's time goes, without HTTP: checking its token, and the read-model query alone.
async fn breakdown(
    ctx: &mut Ctx,
    registry: &Registry,
    verifier: &contingent_access::TokenVerifier,
    kinds: &[(&'static str, Vec<Target>)],
) -> Result<()> {
    let Some((_, diaries)) = kinds.iter().find(|(k, _)| *k == "diary") else {
        return Ok(());
    };
    let sample: Vec<&Target> = diaries.iter().take(500).collect();
    if sample.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    for t in &sample {
        verifier.verify(&t.token)?;
    }
    let verify = started.elapsed();
    ctx.rec.figure(
        "query",
        "token_verify_us",
        verify.as_secs_f64() * 1e6 / sample.len() as f64,
        "µs/token",
        json!({"tokens": sample.len(), "algorithm": "ES256 (P-256), jsonwebtoken with the rust_crypto backend"}),
    );
    let started = Instant::now();
    for t in &sample {
        verifier.verify(&t.token)?;
    }
    let again = started.elapsed();
    ctx.rec.figure(
        "query",
        "token_verify_remembered_us",
        again.as_secs_f64() * 1e6 / sample.len() as f64,
        "µs/token",
        json!({"tokens": sample.len(), "what": "the same tokens again, as the API sees a caller's next request"}),
    );
    let year = AcademicYear::containing(chrono::Utc::now().date_naive());
    let mut samples = Vec::with_capacity(sample.len());
    let started = Instant::now();
    for t in &sample {
        let learner: contingent_domain::LearnerId = t
            .path
            .trim_start_matches("/v1/learners/")
            .split('/')
            .next()
            .unwrap_or_default()
            .parse()
            .with_context(|| format!("a learner's id in {}", t.path))?;
        let q = Instant::now();
        contingent_projections::queries::diary(registry.read(), learner, Some(year)).await?;
        samples.push(q.elapsed().as_micros() as u64);
    }
    let elapsed = started.elapsed();
    let p = Percentiles::of(samples);
    ctx.rec.figure(
        "query",
        "diary_read_model_only_p50_ms",
        p.p50_us / 1e3,
        "ms",
        json!({"queries": sample.len(), "queries_per_s": round(rate(sample.len() as u64, elapsed), 0),
               "latency": p.json(),
               "what": "contingent_projections::queries::diary on the read store (on SQLite, its own connections on the SQLite driver), one at a time, no HTTP, no token"}),
    );
    Ok(())
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let fixture = ctx.fixture().await?;
    let dir = ctx.work("query")?;
    fixture.copy_to(&dir, &["log.db", "read.db", "journal.db"])?;
    // The load comes from a handful of tokens on one address: the per-caller rate and the
    // concurrency limit, which would answer most of it 429/503, are off here.
    let mut settings = Settings::new(&dir);
    settings.limits.caller_per_second = 0;
    settings.limits.max_concurrent_requests = tokio::sync::Semaphore::MAX_PERMITS;
    let registry = Arc::new(
        Registry::open(settings, |_| {})
            .await
            .context("opening the registry over the region")?,
    );
    registry.wait_caught_up(Duration::from_secs(600)).await;
    let issuer = LocalIssuer::generate(LOCAL_ISSUER, DEFAULT_AUDIENCE);
    let verifier = Arc::new(issuer.verifier()?);
    let kinds = targets(&registry, &issuer, 2000)?;
    breakdown(ctx, &registry, &verifier, &kinds).await?;
    let serve = |app: axum::Router| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            contingent_api::serve(listener, app, async {
                let _ = stop_rx.await;
            })
            .await
        });
        anyhow::Ok((addr, stop_tx, server))
    };
    let cache_bytes = registry.settings().read_cache_bytes;
    let (addr, stop_tx, server) =
        serve(contingent_api::router(registry.clone(), verifier.clone())).await?;
    // The same API keeping no diaries: every diary from the read models.
    let (uncached_addr, stop_uncached, uncached_server) = serve(contingent_api::router_with_cache(
        registry.clone(),
        verifier,
        0,
    ))
    .await?;
    let measure = Duration::from_secs_f64(ctx.opts.query_seconds);
    let warmup = Duration::from_secs(1);
    let mut runs = Vec::new();
    for (kind, targets) in kinds {
        if kind == "diary" {
            runs.push((
                "diary_uncached",
                uncached_addr,
                targets.clone(),
                0,
                Writes::SchoolDay,
            ));
            runs.push((
                "diary_uncached_no_writes",
                uncached_addr,
                targets.clone(),
                0,
                Writes::None,
            ));
            runs.push((
                "diary_no_writes",
                addr,
                targets.clone(),
                cache_bytes,
                Writes::None,
            ));
            runs.push((
                "diary_region_events_only",
                addr,
                targets.clone(),
                cache_bytes,
                Writes::RegionOnly,
            ));
        }
        runs.push((kind, addr, targets, cache_bytes, Writes::SchoolDay));
    }
    let mut seed = ctx.opts.seed;
    for (kind, addr, targets, cache_bytes, writes) in runs {
        if targets.is_empty() {
            ctx.rec
                .note(&format!("{kind}: the region has nothing to ask; skipped"));
            continue;
        }
        let targets = Arc::new(targets);
        for &concurrency in &ctx.opts.concurrency.clone() {
            let metrics = registry.metrics();
            let (hits, misses) = (
                metrics.read_cache_hits.load(Ordering::Relaxed),
                metrics.read_cache_misses.load(Ordering::Relaxed),
            );
            let head = registry.head();
            seed += 1;
            let writer = (writes != Writes::None).then(|| {
                tokio::spawn(write_beside(
                    registry.clone(),
                    fixture.today,
                    seed,
                    warmup + measure,
                    writes == Writes::RegionOnly,
                ))
            });
            let l = load(addr, targets.clone(), concurrency, warmup, measure).await?;
            let hits = metrics.read_cache_hits.load(Ordering::Relaxed) - hits;
            let misses = metrics.read_cache_misses.load(Ordering::Relaxed) - misses;
            let written = match writer {
                Some(w) => Some(w.await??),
                None => None,
            };
            let appended = registry.head() - head;
            if let Some(f) = &l.first_failure {
                ctx.rec.note(&format!(
                    "{kind} at {concurrency}: {} failed, first: {f}",
                    l.failed
                ));
            }
            if let Some(Written {
                not_accepted,
                first_problem: Some(p),
                ..
            }) = &written
            {
                ctx.rec.note(&format!(
                    "{kind} at {concurrency}: {not_accepted} of the writes beside it not accepted, first: {p}"
                ));
            }
            let writes_json = match &written {
                Some(w) if writes == Writes::RegionOnly => json!({
                    "what": "16 change_class_capacity commands a second (events about no learner), nothing else",
                    "commands": w.submitted, "accepted": w.accepted, "not_accepted": w.not_accepted,
                    "events_appended": appended,
                    "events_per_s": round(rate(appended, warmup + measure), 0),
                }),
                Some(w) => json!({
                    "what": "a school day of the region (attendance for every learner in a general-education class, 1.5 marks each) spread over the load's seconds, and 16 change_class_capacity commands a second",
                    "commands": w.submitted, "accepted": w.accepted, "not_accepted": w.not_accepted,
                    "events_appended": appended,
                    "events_per_s": round(rate(appended, warmup + measure), 0),
                }),
                None => json!("none: the figure holds only with no writes"),
            };
            let conditions = json!({
                "concurrency": concurrency, "connections": concurrency,
                "distinct_requests": targets.len(), "ok": l.ok, "failed": l.failed,
                "queries_per_s": round(rate(l.ok, l.measured), 0),
                "mean_response_bytes": round(l.bytes as f64 / l.ok.max(1) as f64, 0),
                "seconds": round(l.measured.as_secs_f64(), 2),
                "latency": l.latency.json(),
                "read_cache_bytes": cache_bytes,
                "read_cache_hit_pct": (hits + misses > 0).then(|| round(100.0 * hits as f64 / (hits + misses) as f64, 1)),
                "writes": writes_json,
                "client": "hyper HTTP/1.1 in the same process, one request at a time per connection",
            });
            ctx.rec.figure(
                "query",
                &format!("{kind}_c{concurrency}_p99_ms"),
                l.latency.p99_us / 1e3,
                "ms",
                conditions,
            );
            ctx.rec.figure(
                "query",
                &format!("{kind}_c{concurrency}_queries_per_s"),
                rate(l.ok, l.measured),
                "queries/s",
                json!({"p50_ms": round(l.latency.p50_us / 1e3, 3),
                       "read_cache_hit_pct": (hits + misses > 0).then(|| round(100.0 * hits as f64 / (hits + misses) as f64, 1)),
                       "writes_beside": match writes { Writes::None => "none", Writes::RegionOnly => "region-wide capacity changes only", Writes::SchoolDay => "a school day and region-wide capacity changes" }}),
            );
        }
    }
    let _ = stop_uncached.send(());
    let _ = uncached_server.await;
    let _ = stop_tx.send(());
    let _ = server.await;
    crate::append::shutdown(registry).await;
    Ok(())
}
