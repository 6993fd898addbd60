//! End-to-end lag: from a command's acknowledgement (its events durable) to the moment every
//! read model has applied them, measured by `Registry::wait_projected` on the embedded registry
//! with its projector in process. Once with one caller at a time, once with many at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use contingent_domain::Command;
use contingent_log::Metadata;
use contingent_registry::{Registry, Settings};
use serde_json::json;

use crate::report::{rate, round, Percentiles};
use crate::Ctx;

struct Lags {
    ack: Vec<u64>,
    visible: Vec<u64>,
    failed: u64,
}

async fn measure(
    registry: &Arc<Registry>,
    commands: Vec<(Command, Metadata)>,
    callers: usize,
) -> Lags {
    let mut shares: Vec<Vec<(Command, Metadata)>> = (0..callers).map(|_| Vec::new()).collect();
    for (i, c) in commands.into_iter().enumerate() {
        shares[i % callers].push(c);
    }
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let registry = registry.clone();
            tokio::spawn(async move {
                let mut out = Lags {
                    ack: Vec::new(),
                    visible: Vec::new(),
                    failed: 0,
                };
                for (command, meta) in share {
                    let t = Instant::now();
                    let Ok(receipt) = registry.submit(command, meta).await else {
                        out.failed += 1;
                        continue;
                    };
                    let acked = Instant::now();
                    let Some(position) = receipt.last_position() else {
                        continue;
                    };
                    if !registry
                        .wait_projected(position, Duration::from_secs(120))
                        .await
                    {
                        out.failed += 1;
                        continue;
                    }
                    out.ack.push((acked - t).as_micros() as u64);
                    out.visible.push(acked.elapsed().as_micros() as u64);
                }
                out
            })
        })
        .collect();
    let mut all = Lags {
        ack: Vec::new(),
        visible: Vec::new(),
        failed: 0,
    };
    for task in tasks {
        if let Ok(l) = task.await {
            all.ack.extend(l.ack);
            all.visible.extend(l.visible);
            all.failed += l.failed;
        }
    }
    all
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let fixture = ctx.fixture().await?;
    let dir = ctx.work("lag")?;
    fixture.copy_to(&dir, &["log.db", "read.db"])?;
    let registry = Arc::new(Registry::open(Settings::new(&dir), |_| {}).await?);
    registry.wait_caught_up(Duration::from_secs(600)).await;
    let state = fixture.state().await?;
    let n = ctx.opts.lag_commands;
    // Marks other than the append benchmark's (another seed), so both can run on one region.
    let commands =
        crate::fixture::mark_commands(&state, fixture.today, n * 2, ctx.opts.seed ^ 0x1a9)?;
    drop(state);
    let (one, many) = commands.split_at(n);
    for (label, commands, callers) in [
        ("one_caller", one.to_vec(), 1usize),
        ("many_callers", many.to_vec(), ctx.opts.lag_callers),
    ] {
        let count = commands.len() as u64;
        let started = Instant::now();
        let l = measure(&registry, commands, callers).await;
        let elapsed = started.elapsed();
        let ack = Percentiles::of(l.ack);
        let visible = Percentiles::of(l.visible);
        let conditions = json!({
            "callers": callers, "commands": count, "failed": l.failed,
            "commands_per_s": round(rate(count, elapsed), 0),
            "ack_latency": ack.json(), "ack_to_visible": visible.json(),
            "read_models": "all five, SQLite, projector in the same process",
        });
        ctx.rec.figure(
            "lag",
            &format!("{label}_visible_p50_ms"),
            visible.p50_us / 1e3,
            "ms",
            conditions,
        );
        ctx.rec.figure(
            "lag",
            &format!("{label}_visible_p99_ms"),
            visible.p99_us / 1e3,
            "ms",
            json!({"ack_p50_ms": round(ack.p50_us / 1e3, 3), "ack_p99_ms": round(ack.p99_us / 1e3, 3)}),
        );
    }
    crate::append::shutdown(registry).await;
    Ok(())
}
