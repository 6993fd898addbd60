//! The conditions of a run (the machine, the sizes) and the figures: printed as they are
//! measured, and appended as one JSON object per line to the results file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

/// What the machine is: read once at the start of a run.
#[derive(Debug, Clone)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_bytes: u64,
    pub kernel: String,
    pub disk: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Machine {
    /// Reads `/proc` and `df` for the directory the benchmarks write to.
    pub fn probe(dir: &Path) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory_bytes = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
        Self {
            cores,
            cpu,
            memory_bytes,
            kernel,
            disk: disk_of(dir),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "cores": self.cores,
            "cpu": self.cpu,
            "memory_gib": round(self.memory_bytes as f64 / (1u64 << 30) as f64, 1),
            "kernel": self.kernel,
            "disk": self.disk,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "{} cores ({}), {:.1} GiB memory, Linux {}, disk {}",
            self.cores,
            self.cpu,
            self.memory_bytes as f64 / (1u64 << 30) as f64,
            self.kernel,
            self.disk
        )
    }
}

/// The device, file system and size of the file system holding `dir` (from `df`), and whether
/// the device is rotational.
fn disk_of(dir: &Path) -> String {
    let out = std::process::Command::new("df")
        .args(["-PT", "-B1"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    let Some(line) = out.lines().nth(1) else {
        return "unknown".into();
    };
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 4 {
        return "unknown".into();
    }
    let size = f[2].parse::<u64>().unwrap_or(0) as f64 / 1e9;
    let device = f[0];
    let name = device.rsplit('/').next().unwrap_or(device);
    let rotational = match read(&format!("/sys/block/{name}/queue/rotational")).trim() {
        "0" => ", not rotational",
        "1" => ", rotational",
        _ => "",
    };
    format!("{device} ({}, {size:.0} GB{rotational})", f[1])
}

/// Rounds to `digits` decimals, for readable JSON.
pub fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// Events (or anything) per second.
pub fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Percentiles of latencies in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub count: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Percentiles {
    /// From unsorted samples in microseconds.
    pub fn of(mut samples: Vec<u64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i] as f64
        };
        Self {
            count: samples.len(),
            p50_us: at(0.50),
            p99_us: at(0.99),
            max_us: *samples.last().unwrap_or(&0) as f64,
            mean_us: samples.iter().sum::<u64>() as f64 / samples.len() as f64,
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "samples": self.count,
            "p50_ms": round(self.p50_us / 1e3, 3),
            "p99_ms": round(self.p99_us / 1e3, 3),
            "max_ms": round(self.max_us / 1e3, 3),
            "mean_ms": round(self.mean_us / 1e3, 3),
        })
    }
}

/// Prints figures and appends them to the results file.
pub struct Recorder {
    path: PathBuf,
    run: String,
    machine: Machine,
    commit: String,
}

impl Recorder {
    pub fn new(path: PathBuf, machine: Machine) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Ok(Self {
            path,
            run: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            machine,
            commit,
        })
    }

    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one figure: printed with its conditions, and written as one JSON line.
    pub fn figure(&self, suite: &str, name: &str, value: f64, unit: &str, conditions: Value) {
        let shown = if value.abs() >= 100.0 {
            format!("{value:.0}")
        } else if value.abs() >= 1.0 {
            format!("{value:.2}")
        } else {
            format!("{value:.4}")
        };
        println!("  {name:<44} {shown:>12} {unit}");
        if conditions.as_object().is_some_and(|o| !o.is_empty()) {
            println!("  {:<44} {}", "", conditions);
        }
        let line = json!({
            "run": self.run,
            "load_avg_1m": load_average(),
            "commit": self.commit,
            "suite": suite,
            "figure": name,
            "value": round(value, 4),
            "unit": unit,
            "conditions": conditions,
            "machine": self.machine.json(),
        });
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(error) = written {
            eprintln!("cannot write {}: {error}", self.path.display());
        }
    }

    /// A line of context that is not a figure.
    pub fn note(&self, text: &str) {
        println!("  · {text}");
    }
}

/// The 1-minute load average: other work on the machine while a figure was taken.
pub fn load_average() -> f64 {
    read("/proc/loadavg")
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0.0)
}

/// Resident set size of this process: `VmRSS` of `/proc/self/status`.
pub fn rss_bytes() -> u64 {
    status_kib("VmRSS") * 1024
}

/// Peak resident set size of this process: `VmHWM` of `/proc/self/status`.
pub fn peak_rss_bytes() -> u64 {
    status_kib("VmHWM") * 1024
}

/// A `kB` field of `/proc/self/status` (0 when absent).
fn status_kib(field: &str) -> u64 {
    read("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
