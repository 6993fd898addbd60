//! Running the real `contingent` binary from black-box tests: one-shot commands, tokens, and
//! long-running `serve` and `project` processes that are killed (SIGKILL) when dropped.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub mod read_side;

pub const BIN: &str = env!("CARGO_BIN_EXE_contingent");

/// A running process of the binary, killed with SIGKILL when dropped.
pub struct Process {
    child: Child,
}

impl Process {
    /// Starts `contingent ARGS` with its output discarded (stderr shown with the test's).
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> Self {
        let child = Command::new(BIN)
            .args(args)
            .env("CI", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("contingent starts");
        Self { child }
    }

    /// Asks it to stop as an operator or a service manager does (SIGTERM) and waits up to
    /// `within` for it to exit; how it exited.
    pub fn terminate(mut self, within: std::time::Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM was not sent");
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("the process") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still running {within:?} after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Kills it now (SIGKILL) and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `contingent serve --listen 127.0.0.1:0 ARGS`: the process and the base URL it printed.
pub fn serve<S: AsRef<OsStr>>(args: &[S]) -> (Process, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("CI", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("contingent serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (Process { child }, base)
}

/// Runs `contingent ARGS` to completion; its standard output, after asserting success.
pub fn run<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("CI", "1")
        .output()
        .expect("contingent runs");
    assert!(
        out.status.success(),
        "contingent {args:?} ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A token for `role` signed with the key in `data`.
pub fn token(data: &Path, role: &str) -> String {
    let data = data.display().to_string();
    run(&["token", "--role", role, "--data", data.as_str()])
        .trim()
        .to_owned()
}

/// `contingent verify` of a Kafka topic with the writer keys of `data`: asserts that all `head`
/// events verify and nothing is broken (`context` prefixes the failure); what it printed.
pub fn verify_kafka_topic(
    broker: &str,
    topic: &str,
    data: &Path,
    head: u64,
    context: &str,
) -> String {
    let keys = data.join("keys").join("writers.json").display().to_string();
    let said = run(&[
        "verify",
        "--kafka",
        broker,
        "--kafka-topic",
        topic,
        "--writer-keys",
        keys.as_str(),
    ]);
    assert!(
        said.lines()
            .any(|l| l.starts_with(&format!("OK: {head} events"))),
        "{context} {said}"
    );
    assert!(!said.contains("BROKEN"), "{context} {said}");
    said
}

/// Gives the data directory `to` a copy of the keys of `from` (token key, writer key and the
/// region's writer keys, master key): a second process of the same region with a directory of
/// its own.
pub fn copy_keys(from: &Path, to: &Path) {
    let (from, to) = (from.join("keys"), to.join("keys"));
    std::fs::create_dir_all(&to).expect("keys directory");
    for entry in std::fs::read_dir(&from).expect("keys") {
        let entry = entry.expect("a key file");
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("key copied");
        }
    }
}
