//! The `contingent` binary as an operator runs it: tokens from the data directory's key, and
//! `serve` accepting them, or accepting a sign-on's key set given as a file or a URL.

mod support;

use std::process::Command;
use std::time::Duration;

use support::read_side::{projected, tables};
use support::{run, token, Process, BIN};

/// `contingent serve` on a free port with `--data` and `extra`.
struct Server {
    _process: Process,
    base: String,
}

fn serve(data: &std::path::Path, extra: &[&str]) -> Server {
    let mut args = vec!["--data".to_owned(), data.display().to_string()];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let (process, base) = support::serve(&args);
    Server {
        _process: process,
        base,
    }
}

async fn status(base: &str, path: &str, token: Option<&str>) -> u16 {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut request = client.get(format!("{base}{path}"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request.send().await.expect("request").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_accepts_its_own_tokens_and_a_sign_ons_key_set_by_file_or_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let region = token(dir.path(), "region");
    let refused = Command::new(BIN)
        .args(["token", "--role", "parent", "--data"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!refused.status.success(), "a parent token needs a SNILS");

    {
        let server = serve(dir.path(), &[]);
        assert_eq!(status(&server.base, "/healthz", None).await, 200);
        assert_eq!(status(&server.base, "/v1/organizations", None).await, 401);
        assert_eq!(
            status(&server.base, "/v1/organizations", Some(&region)).await,
            200
        );
        assert_eq!(
            status(&server.base, "/v1/organizations", Some("not-a-token")).await,
            401
        );
    }

    // The same key set as a sign-on would publish it: a file...
    let jwks = dir.path().join("keys").join("jwks.json");
    let jwks_text = std::fs::read_to_string(&jwks).expect("jwks written beside the key");
    {
        let server = serve(
            dir.path(),
            &[
                "--jwks",
                jwks.to_str().expect("path"),
                "--issuer",
                "contingent-local",
            ],
        );
        assert_eq!(
            status(&server.base, "/v1/organizations", Some(&region)).await,
            200
        );
    }
    {
        let server = serve(
            dir.path(),
            &[
                "--jwks",
                jwks.to_str().expect("path"),
                "--issuer",
                "another-idp",
            ],
        );
        assert_eq!(
            status(&server.base, "/v1/organizations", Some(&region)).await,
            401,
            "wrong issuer"
        );
    }

    // ...or a URL.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                jwks_text.len(),
                jwks_text
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    // A key set over plain http could be substituted by anyone on the path: refused unless
    // the operator says it is a test sign-on.
    let plain = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .args(["--jwks", &url, "--issuer", "contingent-local"])
        .env("CI", "1")
        .output()
        .expect("runs");
    assert!(!plain.status.success(), "an http:// key set is refused");
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("https://"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    // The pages' OpenID Connect sign-on must be the issuer whose key set is --jwks.
    let elsewhere = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .args([
            "--jwks",
            &url,
            "--issuer",
            "contingent-local",
            "--insecure-jwks-http",
        ])
        .args([
            "--oidc-issuer",
            "https://sso.example",
            "--oidc-client-id",
            "pages",
        ])
        .env("CI", "1")
        .output()
        .expect("runs");
    assert!(
        !elsewhere.status.success(),
        "another OpenID Connect issuer is refused"
    );
    assert!(
        String::from_utf8_lossy(&elsewhere.stderr)
            .contains("must be the --issuer whose key set is --jwks"),
        "{}",
        String::from_utf8_lossy(&elsewhere.stderr)
    );
    let server = serve(
        dir.path(),
        &[
            "--jwks",
            &url,
            "--issuer",
            "contingent-local",
            "--insecure-jwks-http",
        ],
    );
    assert_eq!(
        status(&server.base, "/v1/organizations", Some(&region)).await,
        200
    );
}

#[test]
fn simulate_generates_a_region_once_and_refuses_a_log_that_is_not_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let simulate = || {
        Command::new(BIN)
            .args(["simulate", "--scale", "tiny", "--seed", "3", "--data"])
            .arg(dir.path())
            .env("CI", "1")
            .output()
            .expect("simulate runs")
    };
    let first = simulate();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains("events appended"), "{said}");
    assert!(
        said.contains("refused by code: {\""),
        "deliberate bad commands: {said}"
    );
    let again = simulate();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn retention_lists_who_is_due_erases_them_on_request_and_the_log_still_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .arg("--data")
            .arg(dir.path())
            .env("CI", "1")
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["simulate", "--scale", "tiny", "--seed", "3"]);
    let policy = [
        "retention",
        "--after-leaving-years",
        "3",
        "--after-death-years",
        "1",
        "--today",
        "2100-01-01",
    ];
    let dry = run(&policy);
    let due = dry.lines().filter(|l| l.contains(" due since ")).count();
    assert!(due > 0, "{dry}");
    assert!(dry.contains("nothing changed"), "{dry}");
    assert_eq!(run(&policy), dry, "a dry run changes nothing");

    let mut erase = policy.to_vec();
    erase.push("--erase");
    let erased = run(&erase);
    assert!(
        erased.contains(&format!("{due} learners erased.")),
        "{erased}"
    );
    let again = run(&policy);
    assert!(again.contains("0 learners due"), "{again}");

    let verified = run(&["verify"]);
    assert!(verified.contains("OK:"), "{verified}");
}

/// `contingent project` asked to stop (SIGTERM) while it catches up: it ends the batch under way
/// and exits successfully, and started again it goes on from the stored positions to the rows a
/// projection in one run gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_stopped_while_it_catches_up_exits_cleanly_and_resumes_to_the_same_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().display().to_string();
    run(&[
        "simulate", "--scale", "tiny", "--seed", "5", "--data", &data,
    ]);
    // The read models the simulation projected in its own process, kept aside; the projector
    // starts from none.
    let read = dir.path().join("read.db");
    let whole = dir.path().join("whole.db");
    std::fs::rename(&read, &whole).expect("read models moved aside");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("read.db{suffix}")));
    }
    let log = sqlx::SqlitePool::connect(&read_only(&dir.path().join("log.db")))
        .await
        .expect("the log");
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&log)
        .await
        .expect("the head");
    let head = head as u64;
    log.close().await;
    let project = || Process::start(&["project", "--data", &data, "--batch", "10"]);

    // Each stop lands once this process has committed batches of its own (it is then in its
    // catch-up, which polls the shutdown signal): past where the last one left the positions.
    let mut stopped_at: Vec<u64> = Vec::new();
    for _ in 0..3 {
        let from = stored(&read).await;
        let projector = project();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let at = loop {
            assert!(
                std::time::Instant::now() < deadline,
                "the projector did not start"
            );
            let at = stored(&read).await;
            if at >= from + 50 {
                break at;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let status = projector.terminate(Duration::from_secs(60));
        assert!(status.success(), "stopped at {at} of {head}: {status}");
        stopped_at.push(at);
        if at >= head {
            break;
        }
    }
    assert!(
        stopped_at.iter().any(|&at| at < head),
        "no stop landed before the head: {stopped_at:?} of {head}"
    );

    // Started again, it finishes from the stored positions.
    let projector = project();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let at = stored(&read).await;
        if at >= head {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "projected {at} of {head}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(projector.terminate(Duration::from_secs(60)).success());
    let dump = |path: std::path::PathBuf| async move {
        let pool = support::read_side::pool(&read_only(&path)).await;
        let rows = contingent_projections::dump_tables(&pool, &tables())
            .await
            .expect("rows");
        pool.close().await;
        rows
    };
    let (resumed, whole_rows) = (dump(read).await, dump(whole).await);
    for table in tables() {
        assert!(
            resumed[table] == whole_rows[table],
            "{table} differs after stops at {stopped_at:?}"
        );
    }
    assert!(!resumed["diary_marks"].is_empty());
}

/// A read-only SQLite URL of `file`.
fn read_only(file: &std::path::Path) -> String {
    format!("sqlite://{}?mode=ro", file.display())
}

/// The lowest stored position of the read models in `file`, 0 while there is none.
async fn stored(file: &std::path::Path) -> u64 {
    if !file.exists() {
        return 0;
    }
    sqlx::any::install_default_drivers();
    let Ok(pool) = sqlx::AnyPool::connect(&read_only(file)).await else {
        return 0;
    };
    let at = projected(&pool).await;
    pool.close().await;
    at
}
