//! Generates a region into a temporary registry and prints what it made:
//! `cargo run --release -p contingent-simulate --example demo -- [demo|tiny] [seed] [data-dir]`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use contingent_registry::{Registry, Settings};
use contingent_simulate::{generate, Config, Scale, Stage};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let scale = match args.next().as_deref() {
        Some("tiny") => Scale::tiny(),
        _ => Scale::demo(),
    };
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(2026);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = args
        .next()
        .map_or_else(|| dir.path().to_owned(), std::path::PathBuf::from);
    let registry = Registry::open(Settings::new(&path), |_| {})
        .await
        .expect("the registry opens");
    let config = Config {
        seed,
        scale,
        today: chrono::Utc::now().date_naive(),
    };
    let mut started: BTreeMap<Stage, (Instant, bool)> = BTreeMap::new();
    let report = generate(&registry, &config, |stage, done, total| {
        let (at, shown) = started
            .entry(stage)
            .or_insert_with(|| (Instant::now(), false));
        if done == total && total > 0 && !*shown {
            *shown = true;
            println!(
                "{:>14}: {total:>7} commands in {:?}",
                stage.label(),
                at.elapsed()
            );
        }
    })
    .await
    .expect("generation runs");
    println!(
        "commands {} accepted {} replayed {} events {} refused {:?} in {:?}",
        report.commands,
        report.accepted,
        report.replayed,
        report.events,
        report.refused,
        report.elapsed
    );
    for line in &report.unexpected {
        println!("unexpected: {line}");
    }
    println!("featured: {:#?}", report.featured);
    let m = registry.metrics();
    let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "group commits {} (avg {:.0} events), append time {:.1}s, projected so far {}",
        get(&m.group_commits),
        get(&m.events_appended) as f64 / get(&m.group_commits).max(1) as f64,
        get(&m.append_micros) as f64 / 1e6,
        get(&m.events_projected)
    );
    let caught_up = Instant::now();
    registry.wait_caught_up(Duration::from_secs(600)).await;
    println!("read models caught up {:?} later", caught_up.elapsed());
    let mut types: BTreeMap<&str, u64> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = registry.feed(after, 50_000).await.expect("the feed reads");
        let Some(last) = page.last() else { break };
        after = last.position();
        for e in &page {
            *types.entry(e.envelope.event.type_name()).or_default() += 1;
        }
    }
    for (kind, n) in types {
        println!("{kind:>24} {n}");
    }
    registry.shutdown().await;
}
