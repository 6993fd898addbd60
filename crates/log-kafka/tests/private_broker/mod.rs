//! A tansu broker of a test's own, which the test may pause (SIGSTOP) and resume (SIGCONT):
//! a broker that stops answering mid-request. Never pause the shared broker.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tansu broker on a free loopback port, with in-memory storage, stopped when dropped.
pub struct PrivateBroker {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
}

/// The tansu binary: on `PATH`, else `~/.cargo/bin/tansu`.
fn tansu() -> String {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("tansu"))
            .find(|p| p.is_file())
    });
    match on_path {
        Some(p) => p.display().to_string(),
        None => format!(
            "{}/.cargo/bin/tansu",
            std::env::var("HOME").unwrap_or_default()
        ),
    }
}

impl PrivateBroker {
    /// Starts the broker and waits until it accepts connections.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let child = Command::new(tansu())
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu (scripts/services installs it)");
        let broker = Self { child, address };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&broker.address).is_err() {
            assert!(Instant::now() < deadline, "the private tansu did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Stops the broker's process: connections stay open and nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets the paused process run again: it reads what was sent to it meanwhile.
    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
