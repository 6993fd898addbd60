//! `contingent`: the regional learner registry's command-line entry point. Parses flags, opens
//! the registry through `contingent_registry`, and maps failures to exit codes: 0 success,
//! 1 failure, 2 damage found in the log (`verify`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use contingent_domain::LearnerId;
use contingent_log::EventLog;
use contingent_projections::queries::{self, CountDimension};
use contingent_registry::{LogBackend, Registry, Settings};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "contingent",
    version,
    about = "The regional segment of the learner registry: every learner's lifecycle as an immutable, hash-chained event log with read models for diaries, class registers, vacancies and the federal segment."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args, Clone)]
struct DataArg {
    /// Directory of the embedded log (log.db), read models (read.db), access journal
    /// (journal.db) and the local token key (keys/).
    #[arg(long, env = "CONTINGENT_DATA", default_value = "data")]
    data: PathBuf,
}

/// Where the log of record and the read models live (the embedded files in --data by default).
#[derive(clap::Args, Clone, Default)]
struct BackendArgs {
    /// Kafka bootstrap servers (host:port,...): the log of record is then the region's topic.
    #[arg(long, env = "CONTINGENT_KAFKA")]
    kafka: Option<String>,
    /// The region: its events topic is contingent.<region>.events.
    #[arg(long, env = "CONTINGENT_REGION", default_value = "demo")]
    region: String,
    /// The events topic, instead of the one named after the region.
    #[arg(long, env = "CONTINGENT_KAFKA_TOPIC")]
    kafka_topic: Option<String>,
    /// A librdkafka property for every Kafka client (repeatable), e.g.
    /// security.protocol=SASL_SSL.
    #[arg(
        long = "kafka-option",
        env = "CONTINGENT_KAFKA_OPTIONS",
        value_delimiter = ','
    )]
    kafka_options: Vec<String>,
    /// postgres:// URL of the read models and the access journal (default: SQLite files in
    /// --data).
    #[arg(long, env = "CONTINGENT_DATABASE")]
    database: Option<String>,
    /// postgres:// URL of the key store of learners' data keys, when it is not --database
    /// (a rebuild into another database names the region's): default --database, or
    /// DATA/keys.db without one.
    #[arg(long, env = "CONTINGENT_KEY_STORE")]
    key_store: Option<String>,
    /// The region's trusted writer keys (JSON, see docs/architecture.md); default
    /// DATA/keys/writers.json, where the embedded default registers its own key.
    #[arg(long, env = "CONTINGENT_WRITER_KEYS")]
    writer_keys: Option<PathBuf>,
}

impl BackendArgs {
    fn kafka_config(&self, topic: String) -> Result<Option<contingent_log_kafka::KafkaConfig>> {
        let Some(brokers) = &self.kafka else {
            return Ok(None);
        };
        let mut config = contingent_log_kafka::KafkaConfig::new(brokers.clone(), topic);
        for option in &self.kafka_options {
            let (key, value) = option
                .split_once('=')
                .with_context(|| format!("--kafka-option {option:?} is not KEY=VALUE"))?;
            config.extra.push((key.trim().into(), value.trim().into()));
        }
        Ok(Some(config))
    }

    fn events_topic(&self) -> String {
        self.kafka_topic
            .clone()
            .unwrap_or_else(|| contingent_log_kafka::KafkaConfig::region_topic(&self.region))
    }

    fn settings(&self, data: &DataArg) -> Result<Settings> {
        let mut settings = Settings::new(&data.data);
        if let Some(config) = self.kafka_config(self.events_topic())? {
            settings.log = LogBackend::Kafka(config);
        }
        if let Some(url) = &self.database {
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                bail!("--database must be a postgres:// URL");
            }
            settings.database = Some(url.clone());
        }
        if let Some(url) = &self.key_store {
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                bail!("--key-store must be a postgres:// URL");
            }
            settings.key_store = Some(url.clone());
        }
        settings.writer_keys = self.writer_keys.clone();
        Ok(settings)
    }
}

/// Which tokens the API accepts.
#[derive(clap::Args, Clone)]
struct AuthArgs {
    /// JSON Web Key Set of the sign-on that issues tokens: a file, or an http(s) URL fetched at
    /// start and every 10 minutes. Without it, the registry
    /// signs and accepts its own tokens with the key in DATA/keys (see `contingent token`).
    #[arg(long, env = "CONTINGENT_JWKS")]
    jwks: Option<String>,
    /// The `iss` the sign-on's tokens carry (with --jwks).
    #[arg(long, env = "CONTINGENT_ISSUER")]
    issuer: Option<String>,
    /// The `aud` tokens for this registry carry.
    #[arg(long, env = "CONTINGENT_AUDIENCE", default_value = contingent_access::DEFAULT_AUDIENCE)]
    audience: String,
    /// Accept a key set URL over plain http:// (anyone on the path could substitute their own
    /// keys and sign any token): for tests against a local sign-on only.
    #[arg(long, env = "CONTINGENT_INSECURE_JWKS_HTTP")]
    insecure_jwks_http: bool,
}

/// Signing people in to the pages with the regional sign-on by OpenID Connect (authorization
/// code with PKCE): the same issuer whose key set is --jwks.
#[derive(clap::Args, Clone)]
struct OidcArgs {
    /// The sign-on's issuer URL (its discovery document is read at start); needs --jwks and
    /// --issuer with the same issuer.
    #[arg(long, env = "CONTINGENT_OIDC_ISSUER", requires_all = ["oidc_client_id", "jwks"])]
    oidc_issuer: Option<String>,
    /// This registry's client id at the sign-on.
    #[arg(long, env = "CONTINGENT_OIDC_CLIENT_ID", requires = "oidc_issuer")]
    oidc_client_id: Option<String>,
    /// A file holding the client secret (a confidential client); without it, a public client.
    #[arg(
        long,
        env = "CONTINGENT_OIDC_CLIENT_SECRET_FILE",
        requires = "oidc_issuer"
    )]
    oidc_client_secret_file: Option<PathBuf>,
    /// Where the sign-on sends people back, registered with it; by default
    /// http://LISTEN/signin/oidc/callback.
    #[arg(long, env = "CONTINGENT_OIDC_REDIRECT_URL", requires = "oidc_issuer")]
    oidc_redirect_url: Option<String>,
}

/// The sign-on with OpenID Connect added, when `--oidc-issuer` is given.
async fn with_oidc(
    mut sign_on: contingent_pages::SignOn,
    auth: &AuthArgs,
    oidc: &OidcArgs,
    listen: SocketAddr,
) -> Result<contingent_pages::SignOn> {
    let (Some(issuer), Some(client_id)) = (&oidc.oidc_issuer, &oidc.oidc_client_id) else {
        return Ok(sign_on);
    };
    if auth.issuer.as_deref() != Some(issuer.as_str()) {
        bail!("--oidc-issuer {issuer} must be the --issuer whose key set is --jwks");
    }
    let client_secret = match &oidc.oidc_client_secret_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let settings = contingent_pages::OidcSettings {
        issuer: issuer.clone(),
        client_id: client_id.clone(),
        client_secret,
        redirect_url: oidc
            .oidc_redirect_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}/signin/oidc/callback")),
    };
    sign_on.oidc = Some(Arc::new(contingent_pages::Oidc::discover(&settings).await?));
    Ok(sign_on)
}

/// What bounds the API's work (defaults in `RequestLimits`).
#[derive(clap::Args, Clone)]
struct LimitArgs {
    /// Seconds a request may take before it is answered 503 `timeout`.
    #[arg(long, env = "CONTINGENT_REQUEST_TIMEOUT", default_value_t = 30)]
    request_timeout: u64,
    /// Requests served at once; more are answered 503 `overloaded` at once.
    #[arg(
        long,
        env = "CONTINGENT_MAX_CONCURRENT_REQUESTS",
        default_value_t = 2048
    )]
    max_concurrent_requests: usize,
    /// Requests per second one caller (token subject) may make on average; 0: no limit.
    #[arg(long, env = "CONTINGENT_CALLER_RATE", default_value_t = 200)]
    caller_rate: u32,
    /// Requests one caller may make at once, in a burst.
    #[arg(long, env = "CONTINGENT_CALLER_BURST", default_value_t = 1000)]
    caller_burst: u32,
    /// Refused requests (401) per minute one address may make; past it, 429 without checking
    /// tokens; 0: no limit.
    #[arg(long, env = "CONTINGENT_REFUSED_RATE", default_value_t = 120)]
    refused_rate: u32,
    /// Hours an Idempotency-Key is remembered after its command was recorded.
    #[arg(
        long,
        env = "CONTINGENT_IDEMPOTENCY_WINDOW_HOURS",
        default_value_t = 24
    )]
    idempotency_window_hours: u64,
}

impl LimitArgs {
    fn apply(&self, settings: &mut Settings) {
        let limits = &mut settings.limits;
        limits.request_timeout = Duration::from_secs(self.request_timeout.max(1));
        limits.max_concurrent_requests = self.max_concurrent_requests.max(1);
        limits.caller_per_second = self.caller_rate;
        limits.caller_burst = self.caller_burst;
        limits.refused_per_address_per_minute = self.refused_rate;
        settings.idempotency_window = Duration::from_secs(self.idempotency_window_hours * 3600);
    }
}

// Parsed once at start: the size of the largest subcommand's arguments costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Run the log, the projectors and the HTTP API in one process.
    Serve {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        backend: BackendArgs,
        #[command(flatten)]
        auth: AuthArgs,
        /// Address to listen on.
        #[arg(long, env = "CONTINGENT_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Do not apply the log to the read models here: `contingent project` processes do.
        #[arg(long, env = "CONTINGENT_NO_PROJECTOR")]
        no_projector: bool,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        oidc: OidcArgs,
        /// Fault-injection tests only: make appends fail, SEED:PER_MILLE (half before writing,
        /// half written and then reported failed).
        #[arg(long, hide = true)]
        inject_append_faults: Option<contingent_registry::AppendFaults>,
    },
    /// Apply the log to the read models (and publish the federal topic) until stopped; for
    /// deployments where the API runs with --no-projector. Safe to kill at any moment.
    Project {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        backend: BackendArgs,
        /// Only this read model (repeatable): register, diary, class_register, vacancies,
        /// federal; `none` to only publish the federal topic.
        #[arg(long = "model")]
        models: Vec<String>,
        /// Also publish the federal view of every event to the federal topic
        /// (contingent.<region>.federal; docs/federal-topic.md). One publisher per topic.
        #[arg(long, env = "CONTINGENT_FEDERAL")]
        federal: bool,
        /// The federal topic, instead of the one named after the region.
        #[arg(long, env = "CONTINGENT_FEDERAL_TOPIC")]
        federal_topic: Option<String>,
        /// Events applied per transaction at most.
        #[arg(long, default_value_t = contingent_projections::LIVE_BATCH)]
        batch: usize,
    },
    /// Generate a realistic small region through the command path, then serve it.
    Demo {
        #[command(flatten)]
        data: DataArg,
        /// Address to listen on.
        #[arg(long, env = "CONTINGENT_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Seed of the generator: the same seed gives the same region.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Delete the data directory's databases first.
        #[arg(long)]
        reset: bool,
        /// Generate, print the tour, and exit without serving.
        #[arg(long)]
        no_serve: bool,
    },
    /// Generate a region through the command path at a chosen scale into the registry's log
    /// (the same generator as `demo`; deterministic for a seed), report what it did, and exit.
    Simulate {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        backend: BackendArgs,
        /// tiny (300 learners), demo (2,500), region (400,000 learners, ~2,000 organizations).
        #[arg(long, default_value = "demo", conflicts_with = "learners")]
        scale: String,
        /// A region of this many learners, organizations in a full region's proportions.
        #[arg(long)]
        learners: Option<usize>,
        /// Seed of the generator: the same seed gives the same region.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Print a token signed with the registry's own key (DATA/keys), for the embedded default.
    Token {
        #[command(flatten)]
        data: DataArg,
        /// parent, learner, teacher, organization, municipality, region, auditor,
        /// civil_registry, exam_centre or federal.
        #[arg(long)]
        role: String,
        /// The account (the token's subject).
        #[arg(long, default_value = "operator")]
        sub: String,
        /// SNILS of a parent or learner.
        #[arg(long)]
        snils: Option<String>,
        /// Organization of a teacher or organization account.
        #[arg(long)]
        org: Option<String>,
        /// Municipality of a municipal department.
        #[arg(long)]
        municipality: Option<String>,
        /// Hours the token is valid.
        #[arg(long, default_value_t = 12)]
        hours: u64,
    },
    /// Rebuild read models from the first event of the log (run while the server is stopped).
    Rebuild {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        backend: BackendArgs,
        /// Only this read model (repeatable): register, diary, class_register, vacancies, federal.
        #[arg(long = "model")]
        models: Vec<String>,
        /// Events applied per transaction.
        #[arg(long, default_value_t = contingent_projections::REBUILD_BATCH)]
        batch: usize,
    },
    /// Audit the whole log: every stored event's bytes, position, link and writer signature,
    /// the learner index, and the head against signed checkpoints; report every damaged
    /// position (exit code 2).
    Verify {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        backend: BackendArgs,
        /// A JSON file of checkpoints kept from GET /v1/audit/checkpoints: a log that ends
        /// before one of them, or differs at one, is reported truncated or rewritten.
        #[arg(long)]
        against: Option<PathBuf>,
    },
    /// Retire this writer's signing key and make a new one (with the writer stopped); what the
    /// old key signed still verifies.
    RotateWriterKey {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Print a learner's events in log order, or their state as of a date.
    History {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        backend: BackendArgs,
        /// The learner id.
        learner: String,
        /// Print the learner's state as the registry knew it at the end of this date instead.
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
    },
    /// List the learners whose personal data the retention policy makes due for erasure
    /// (docs/personal-data.md); with --erase, erase each of them (an erase_personal_data
    /// command by `system:retention`, recorded in the log with its legal reason).
    Retention {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        backend: BackendArgs,
        /// Years personal data is kept after a learner left their last organization.
        #[arg(long, env = "CONTINGENT_RETENTION_AFTER_LEAVING_YEARS")]
        after_leaving_years: u32,
        /// Years personal data is kept after a learner's death.
        #[arg(long, env = "CONTINGENT_RETENTION_AFTER_DEATH_YEARS")]
        after_death_years: u32,
        /// The date to judge on, instead of today.
        #[arg(long)]
        today: Option<chrono::NaiveDate>,
        /// Erase them; without it nothing is changed (a dry run).
        #[arg(long)]
        erase: bool,
    },
    /// Write the log of a deployment made before personal fields were sealed into a new, empty
    /// log (--data, --kafka...) with them sealed under learners' data keys: a first event naming
    /// the old log's head, then every old event in order, compared with the old one before
    /// success is reported. The old log is only read (docs/personal-data.md).
    MigrateLog {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        backend: BackendArgs,
        /// The old deployment's data directory: its embedded log (log.db) and trusted writer
        /// keys (keys/writers.json), verified before anything is written.
        #[arg(long)]
        from_data: PathBuf,
        /// The old log's Kafka topic, on the brokers of --kafka, instead of the old data
        /// directory's embedded log.
        #[arg(long)]
        from_kafka_topic: Option<String>,
        /// Why the log is migrated, recorded in its first event.
        #[arg(
            long,
            default_value = "personal fields sealed under learners' data keys (152-FZ art. 19, 21)"
        )]
        reason: String,
    },
    /// Export the federal register (JSON lines) or counts (JSON).
    Export {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        backend: BackendArgs,
        /// register (one learner per line) or counts.
        #[arg(long, default_value = "register")]
        what: String,
        /// Group counts by (comma-separated): municipality, organization, level, grade.
        #[arg(long, default_value = "municipality,level,grade")]
        by: String,
    },
}

fn bar(len: u64, message: &'static str) -> ProgressBar {
    let bar = if std::env::var_os("CI").is_some() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

async fn open(data: &DataArg, backend: &BackendArgs) -> Result<Registry> {
    open_with(backend.settings(data)?).await
}

async fn open_with(settings: Settings) -> Result<Registry> {
    let existing = log_length(&settings).await.unwrap_or(0);
    let replay = bar(existing, "replaying log");
    let registry = Registry::open(settings, |p| replay.set_position(p))
        .await
        .context("opening the registry")?;
    replay.finish_and_clear();
    Ok(registry)
}

/// The log's length, for progress bars (the embedded log only; 0 when unknown).
async fn log_length(settings: &Settings) -> Result<u64> {
    if settings.log != LogBackend::Embedded || !settings.log_path().exists() {
        return Ok(0);
    }
    let log = contingent_log_sqlite::SqliteLog::open(&settings.log_path()).await?;
    let head = log.head().await?;
    log.close().await;
    Ok(head.position)
}

/// Opens the log of record for the offline commands; the embedded log must exist.
async fn open_log(settings: &Settings) -> Result<Arc<dyn EventLog>> {
    if settings.log == LogBackend::Embedded && !settings.log_path().exists() {
        bail!("no log at {}", settings.log_path().display());
    }
    Ok(contingent_registry::open_log(settings).await?)
}

/// Checkpoints as GET /v1/audit/checkpoints answers them (`{"checkpoints": [...]}`), or a bare
/// list.
fn parse_checkpoints(text: &str) -> Result<Vec<contingent_log::Checkpoint>> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Kept {
        Wrapped {
            checkpoints: Vec<contingent_log::Checkpoint>,
        },
        Bare(Vec<contingent_log::Checkpoint>),
    }
    Ok(match serde_json::from_str::<Kept>(text)? {
        Kept::Wrapped { checkpoints } | Kept::Bare(checkpoints) => checkpoints,
    })
}

/// How often a sign-on's key set fetched by URL is fetched again (key rotation).
const JWKS_REFRESH: Duration = Duration::from_secs(600);

async fn fetch_jwks(url: &str) -> Result<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let response = client.get(url).send().await?.error_for_status()?;
    Ok(response.text().await?)
}

async fn verifier(
    data: &DataArg,
    auth: &AuthArgs,
) -> Result<Arc<contingent_access::TokenVerifier>> {
    let Some(jwks) = &auth.jwks else {
        return Ok(Arc::new(
            contingent_access::LocalIssuer::load_or_create(&data.data)?.verifier()?,
        ));
    };
    let issuer = auth
        .issuer
        .as_deref()
        .context("--issuer is needed with --jwks")?;
    if jwks.starts_with("http://") && !auth.insecure_jwks_http {
        bail!(
            "--jwks {jwks} is plain http: anyone on the path could substitute their own keys; use https:// (or --insecure-jwks-http for a test sign-on)"
        );
    }
    if jwks.starts_with("https://") || jwks.starts_with("http://") {
        let text = fetch_jwks(jwks)
            .await
            .with_context(|| format!("fetching the key set from {jwks}"))?;
        let verifier = Arc::new(contingent_access::TokenVerifier::from_jwks(
            &text,
            issuer,
            &auth.audience,
        )?);
        let (url, refreshed) = (jwks.clone(), verifier.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(JWKS_REFRESH).await;
                match fetch_jwks(&url)
                    .await
                    .map(|text| refreshed.replace_keys(&text))
                {
                    Ok(Ok(())) => tracing::info!(%url, "key set refreshed"),
                    Ok(Err(error)) => {
                        tracing::warn!(%url, %error, "the fetched key set cannot be used; keeping the old one")
                    }
                    Err(error) => {
                        tracing::warn!(%url, %error, "fetching the key set failed; keeping the old one")
                    }
                }
            }
        });
        Ok(verifier)
    } else {
        Ok(Arc::new(contingent_access::TokenVerifier::from_jwks_file(
            Path::new(jwks),
            issuer,
            &auth.audience,
        )?))
    }
}

fn local_token(data: &DataArg, claims: &contingent_access::Claims, hours: u64) -> Result<String> {
    let issuer = contingent_access::LocalIssuer::load_or_create(&data.data)?;
    Ok(issuer.issue(claims, Duration::from_secs(hours * 3600))?)
}

/// How people sign in to the pages: with the embedded default (no `--jwks`), the registry's own
/// key signs a token for an account that `contingent demo` kept in DATA/accounts.json; with a
/// sign-on, a token it issued is pasted on the sign-on page.
fn sign_on(data: &DataArg, auth: &AuthArgs) -> Result<contingent_pages::SignOn> {
    if auth.jwks.is_some() {
        return Ok(contingent_pages::SignOn::default());
    }
    Ok(contingent_pages::SignOn {
        issuer: Some(Arc::new(contingent_access::LocalIssuer::load_or_create(
            &data.data,
        )?)),
        accounts: contingent_pages::SignOn::read_accounts(&data.data.join(ACCOUNTS_FILE))?,
        oidc: None,
    })
}

/// The accounts `contingent demo` offers on its sign-on page.
const ACCOUNTS_FILE: &str = "accounts.json";

/// Binds the address to serve on (port 0: any free port).
async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))
}

async fn serve(
    registry: Registry,
    verifier: Arc<contingent_access::TokenVerifier>,
    listener: tokio::net::TcpListener,
    sign_on: contingent_pages::SignOn,
) -> Result<()> {
    let registry = Arc::new(registry);
    let app = contingent_api::router_with_pages(registry.clone(), verifier.clone(), |rate| {
        contingent_pages::router(registry.clone(), verifier, sign_on, rate)
    });
    tracing::info!(address = %listener.local_addr()?, "serving");
    println!(
        "Serving on http://{} (Ctrl-C to stop); the site: http://{}/",
        listener.local_addr()?,
        listener.local_addr()?
    );
    contingent_api::serve(listener, app, shutdown_signal()).await?;
    if let Ok(registry) = Arc::try_unwrap(registry) {
        registry.shutdown().await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

async fn demo(
    data: DataArg,
    listen: SocketAddr,
    seed: u64,
    reset: bool,
    no_serve: bool,
) -> Result<()> {
    if reset {
        for file in [
            "log.db",
            "log.db-wal",
            "log.db-shm",
            "read.db",
            "read.db-wal",
            "read.db-shm",
        ] {
            let path = data.data.join(file);
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    let registry = open(&data, &BackendArgs::default()).await?;
    // Bound before the tour is printed, so that it names the port really served.
    let listener = if no_serve {
        None
    } else {
        Some(bind(listen).await?)
    };
    let shown = match &listener {
        Some(l) => l.local_addr()?,
        None => listen,
    };
    if registry.head() > 0 {
        println!(
            "{} already holds {} events; serving them as they are (run with --reset to generate a new region).",
            data.data.display(),
            registry.head()
        );
    } else {
        let report = generate_region(&registry, seed, contingent_simulate::Scale::demo()).await?;
        print_tour(&registry, &report, &data, shown).await?;
    }
    let Some(listener) = listener else {
        registry.shutdown().await;
        return Ok(());
    };
    let auth = AuthArgs {
        jwks: None,
        issuer: None,
        audience: contingent_access::DEFAULT_AUDIENCE.into(),
        insecure_jwks_http: false,
    };
    let verifier = verifier(&data, &auth).await?;
    let sign_on = sign_on(&data, &auth)?;
    serve(registry, verifier, listener, sign_on).await
}

/// Generates a region into the registry with progress bars, and waits for the read models.
async fn generate_region(
    registry: &Registry,
    seed: u64,
    scale: contingent_simulate::Scale,
) -> Result<contingent_simulate::Report> {
    let config = contingent_simulate::Config {
        seed,
        scale,
        today: chrono::Utc::now().date_naive(),
    };
    let progress = bar(0, "");
    let mut stage_label = "";
    let report = contingent_simulate::generate(registry, &config, |stage, done, total| {
        if stage.label() != stage_label {
            stage_label = stage.label();
            progress.set_message(stage.label());
            progress.reset();
        }
        progress.set_length(total);
        progress.set_position(done);
    })
    .await
    .context("generating the region")?;
    progress.finish_and_clear();
    let caught_up = bar(registry.head(), "projecting");
    while !registry
        .wait_projected(registry.head(), Duration::from_millis(200))
        .await
    {
        caught_up.set_position(registry.projected());
    }
    caught_up.finish_and_clear();
    Ok(report)
}

async fn print_tour(
    registry: &Registry,
    report: &contingent_simulate::Report,
    data: &DataArg,
    listen: SocketAddr,
) -> Result<()> {
    use contingent_access::{Claims, Role};
    let f = &report.featured;
    let base = format!("http://{listen}");
    println!(
        "Generated a region: {} commands, {} events in {:.1?}; {} refused on purpose by the rules: {:?}",
        report.commands, report.events, report.elapsed, report.refused.values().sum::<u64>(), report.refused
    );
    println!(
        "The log holds {} events; every read model has applied them.\n",
        registry.head()
    );

    let claims = |sub: &str, role: Role| Claims {
        sub: sub.into(),
        role,
        snils: None,
        org: None,
        municipality: None,
        name: None,
    };
    let tokens = [
        (
            "a parent of the featured learner",
            Claims {
                snils: Some(f.guardian_snils.to_string()),
                ..claims("parent-1", Role::Parent)
            },
        ),
        (
            "their school",
            Claims {
                org: Some(f.school_id),
                ..claims("school-admin", Role::Organization)
            },
        ),
        (
            "a teacher of their class",
            Claims {
                org: Some(f.school_id),
                ..claims(&f.teacher, Role::Teacher)
            },
        ),
        (
            "the municipal department",
            Claims {
                municipality: Some(f.municipality.clone()),
                ..claims("mouo", Role::Municipality)
            },
        ),
        ("the regional ministry", claims("minobr", Role::Region)),
        ("an auditor", claims("auditor-1", Role::Auditor)),
        (
            "the federal segment",
            claims("federal-segment", Role::Federal),
        ),
        ("the civil registry", claims("zags", Role::CivilRegistry)),
        ("the exam centre", claims("rcoi", Role::ExamCentre)),
    ];
    let path = data.data.join("tokens.env");
    let mut env = String::new();
    println!(
        "Every request carries a bearer token. Tokens for each role, valid 12 hours, are in {}:",
        path.display()
    );
    for (who, c) in &tokens {
        let token = local_token(data, c, 12)?;
        let var = format!("TOKEN_{}", c.role.as_str().to_uppercase());
        env.push_str(&format!("export {var}={token}\n"));
        println!("  ${var:<22} {who}");
    }
    contingent_access::write_secret_file(&path, env.as_bytes())?;
    // The same accounts on the site's sign-on page, each opening its role's page on the
    // featured learner.
    let account = |label: &str, c: &Claims, start: Option<String>| contingent_pages::Account {
        label: label.to_owned(),
        claims: c.clone(),
        start,
    };
    let find = |role: Role| {
        tokens
            .iter()
            .find(|(_, c)| c.role == role)
            .map(|(_, c)| c.clone())
    };
    let mut accounts = Vec::new();
    for (label, role, start) in [
        (
            "Родитель выпускника",
            Role::Parent,
            Some(format!("/diary/{}?year=all", f.learner_id)),
        ),
        (
            "Учитель его класса",
            Role::Teacher,
            Some(format!("/register/{}", f.class_id)),
        ),
        ("Школа", Role::Organization, None),
        (
            "Муниципальный орган управления образованием",
            Role::Municipality,
            None,
        ),
        ("Региональное министерство", Role::Region, None),
        (
            "Аудитор",
            Role::Auditor,
            Some(format!("/audit/learners/{}", f.learner_id)),
        ),
    ] {
        if let Some(c) = find(role) {
            accounts.push(account(label, &c, start));
        }
    }
    accounts.push(account(
        "Детский сад с очередью",
        &Claims {
            org: Some(f.kindergarten_id),
            ..claims("kindergarten-admin", Role::Organization)
        },
        None,
    ));
    std::fs::write(
        data.data.join(ACCOUNTS_FILE),
        serde_json::to_vec_pretty(&accounts)?,
    )?;
    println!("\nThe site: {base}/ (sign in as any of these roles; pages in Russian)");
    let last_year = contingent_domain::AcademicYear::containing(chrono::Utc::now().date_naive())
        .start_year()
        - 1;
    let l = f.learner_id;
    println!("\nsource {}", path.display());
    println!(
        "Follow {} from birth record to graduation and college:",
        f.learner_name
    );
    println!("  curl -s -H \"Authorization: Bearer $TOKEN_PARENT\" '{base}/v1/learners/{l}/diary?academic_year={last_year}/{}'", last_year + 1);
    println!(
        "  curl -s -H \"Authorization: Bearer $TOKEN_AUDITOR\" {base}/v1/learners/{l}/history"
    );
    println!("  curl -s -H \"Authorization: Bearer $TOKEN_AUDITOR\" '{base}/v1/learners/{l}/state?as_of={last_year}-12-31'");
    // The learner has left the school for college: the school reads its own years with them.
    println!("  curl -s -H \"Authorization: Bearer $TOKEN_ORGANIZATION\" {base}/v1/learners/{l}/history   # the school they left: its own years only");
    println!("  curl -s -H \"Authorization: Bearer $TOKEN_TEACHER\" '{base}/v1/classes/{}/register?on={last_year}-10-01'", f.class_id);
    println!("  curl -s -H \"Authorization: Bearer $TOKEN_ORGANIZATION\" '{base}/v1/vacancies?organization_id={}'", f.school_id);
    println!(
        "  curl -s -H \"Authorization: Bearer $TOKEN_REGION\" {base}/v1/organizations/{}/queue",
        f.kindergarten_id
    );
    println!("  curl -s -H \"Authorization: Bearer $TOKEN_REGION\" '{base}/v1/federal/counts?by=municipality,level'");
    println!(
        "  curl -s -H \"Authorization: Bearer $TOKEN_FEDERAL\" '{base}/v1/feed?after=0&limit=5'"
    );
    println!("  curl -s -H \"Authorization: Bearer $TOKEN_AUDITOR\" {base}/v1/learners/{l}/access   # who has looked at the learner");
    println!("  curl -s {base}/openapi.json");
    println!(
        "Auditors: contingent verify --data {} (with the server stopped or running).\n",
        data.data.display()
    );
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Serve {
            data,
            backend,
            auth,
            listen,
            no_projector,
            limits,
            oidc,
            inject_append_faults,
        } => {
            let verifier = verifier(&data, &auth).await?;
            let mut settings = backend.settings(&data)?;
            settings.project = !no_projector;
            settings.append_faults = inject_append_faults;
            if let Some(faults) = inject_append_faults {
                tracing::warn!(?faults, "appends fail on purpose: a fault-injection run");
            }
            limits.apply(&mut settings);
            let sign_on = with_oidc(sign_on(&data, &auth)?, &auth, &oidc, listen).await?;
            let registry = open_with(settings).await?;
            serve(registry, verifier, bind(listen).await?, sign_on).await?;
        }
        Cmd::Project {
            data,
            backend,
            models,
            federal,
            federal_topic,
            batch,
        } => {
            let mut settings = backend.settings(&data)?;
            settings.projector_batch = batch;
            std::fs::create_dir_all(&settings.data_dir)?;
            let federal = if federal || federal_topic.is_some() {
                let topic = federal_topic.unwrap_or_else(|| {
                    contingent_log_kafka::KafkaConfig::federal_topic(&backend.region)
                });
                Some(
                    backend
                        .kafka_config(topic)?
                        .context("the federal topic needs --kafka")?,
                )
            } else {
                None
            };
            contingent_registry::run_projector(&settings, &models, federal, shutdown_signal())
                .await?;
        }
        Cmd::Simulate {
            data,
            backend,
            scale,
            learners,
            seed,
        } => {
            let scale = match (learners, scale.as_str()) {
                (Some(n), _) => contingent_simulate::Scale::with_learners(n),
                (None, "tiny") => contingent_simulate::Scale::tiny(),
                (None, "demo") => contingent_simulate::Scale::demo(),
                (None, "region") => contingent_simulate::Scale::region(),
                (None, other) => bail!("no scale {other:?}: use tiny, demo or region"),
            };
            let registry = open(&data, &backend).await?;
            let before = registry.head();
            if before > 0 {
                registry.shutdown().await;
                bail!("the log already holds {before} events: simulate into an empty one (another --data, --region or --kafka-topic)");
            }
            let started = std::time::Instant::now();
            let report = generate_region(&registry, seed, scale.clone()).await?;
            let elapsed = started.elapsed();
            println!(
                "{scale:?}\n{} commands ({} accepted, {} recorded nothing new, refused by code: {:?})\n\
                 {} events appended (log head {}) in {:.1?}, {:.0} events/s including projection",
                report.commands,
                report.accepted,
                report.replayed,
                report.refused,
                report.events,
                registry.head(),
                elapsed,
                report.events as f64 / elapsed.as_secs_f64()
            );
            registry.shutdown().await;
        }
        Cmd::Token {
            data,
            role,
            sub,
            snils,
            org,
            municipality,
            hours,
        } => {
            let role = contingent_access::Role::parse(&role)
                .with_context(|| format!("no role {role:?}"))?;
            let org = org
                .map(|o| o.parse())
                .transpose()
                .context("--org must be an organization id")?;
            let claims = contingent_access::Claims {
                sub,
                role,
                snils,
                org,
                municipality,
                name: None,
            };
            contingent_access::Principal::try_from(claims.clone())?;
            println!("{}", local_token(&data, &claims, hours)?);
        }
        Cmd::Demo {
            data,
            listen,
            seed,
            reset,
            no_serve,
        } => demo(data, listen, seed, reset, no_serve).await?,
        Cmd::Rebuild {
            data,
            backend,
            models,
            batch,
        } => {
            let settings = backend.settings(&data)?;
            let log = open_log(&settings).await?;
            let head = log.head().await?.position;
            let progress = bar(head, "rebuilding");
            let only = (!models.is_empty()).then_some(models.as_slice());
            let started = std::time::Instant::now();
            let n =
                contingent_registry::rebuild(&log, settings.read_database(), only, batch, |p| {
                    progress.set_position(p)
                })
                .await?;
            progress.finish_and_clear();
            println!(
                "Rebuilt {} from {n} events in {:.1?}.",
                if models.is_empty() {
                    "every read model".to_owned()
                } else {
                    models.join(", ")
                },
                started.elapsed()
            );
        }
        Cmd::Verify {
            data,
            backend,
            against,
        } => {
            let settings = backend.settings(&data)?;
            let keys_path = settings.writer_keys_path();
            let keys = contingent_log::WriterKeys::load(&keys_path)
                .with_context(|| "reading the trusted writer keys (--writer-keys)")?;
            let against: Vec<contingent_log::Checkpoint> = match &against {
                None => Vec::new(),
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    parse_checkpoints(&text).with_context(|| {
                        format!("{} is not a list of checkpoints", path.display())
                    })?
                }
            };
            // The walk needs no key: it checks the stored bytes, sealed fields included.
            let log = contingent_registry::open_stored_log(&settings).await?;
            let head = log.head().await?.position;
            let progress = bar(head, "verifying");
            let report =
                contingent_registry::verify(&*log, &keys, &against, |p| progress.set_position(p))
                    .await?;
            progress.finish_and_clear();
            for f in &report.findings {
                let label = if f.kind.is_damage() { "BROKEN" } else { "NOTE" };
                println!(
                    "{label} at position {} [{}]: {}",
                    f.position,
                    contingent_registry::kind_name(f),
                    f.problem
                );
            }
            if report.omitted > 0 {
                println!("... and {} findings more", report.omitted);
            }
            // A log that continues another one says so: the auditor verifies that one too.
            if let Some(first) = log.read_after(0, 1).await?.first() {
                if let contingent_domain::Event::LogMigrated(m) = &first.envelope.event {
                    println!(
                        "This log continues the log at {} that ended at position {} with head \
                         hash {} (migrated on {}): its events follow position 1, one position \
                         later; verify that log against this head.",
                        m.from_log,
                        m.from_head_position,
                        m.from_head_hash.as_str(),
                        m.migrated_on
                    );
                }
            }
            if report.is_ok() {
                println!(
                    "OK: {} events verified; head hash {}",
                    report.verified, report.head_hash
                );
            } else {
                println!(
                    "{} of {} events verified; head hash {}",
                    report.verified, report.head, report.head_hash
                );
                return Ok(ExitCode::from(2));
            }
        }
        Cmd::RotateWriterKey { data, backend } => {
            let settings = backend.settings(&data)?;
            let id = contingent_registry::rotate_writer_key(&settings)?;
            println!(
                "The writer now signs with key {id}; the old key is retired in {}.",
                settings.writer_keys_path().display()
            );
        }
        Cmd::History {
            data,
            backend,
            learner,
            as_of,
        } => {
            let learner: LearnerId = learner.parse().context("the learner id must be a UUID")?;
            let log = open_log(&backend.settings(&data)?).await?;
            let events = log.read_learner(learner).await?;
            if events.is_empty() {
                bail!("no events about learner {learner}");
            }
            match as_of {
                Some(date) => {
                    let known_at = date.and_hms_opt(23, 59, 59).map(|t| t.and_utc());
                    let snapshot = contingent_registry::LearnerSnapshot::fold(
                        learner,
                        &events,
                        known_at,
                        Some(date),
                    );
                    print_json(&snapshot)?;
                }
                None => {
                    for e in &events {
                        // Personal fields opened (or read as erased), in the current version.
                        let mut v = e.served_json()?;
                        v["hash"] = serde_json::Value::String(e.hash.to_hex());
                        println!("{}", serde_json::to_string(&v)?);
                    }
                }
            }
        }
        Cmd::MigrateLog {
            data,
            backend,
            from_data,
            from_kafka_topic,
            reason,
        } => {
            let to = backend.settings(&data)?;
            let mut from = Settings::new(&from_data);
            let from_log = match &from_kafka_topic {
                Some(topic) => {
                    let config = backend
                        .kafka_config(topic.clone())?
                        .context("--from-kafka-topic needs --kafka")?;
                    from.log = LogBackend::Kafka(config);
                    format!("Kafka topic {topic}")
                }
                None => format!("embedded log {}", from.log_path().display()),
            };
            let same = match (&from.log, &to.log) {
                (LogBackend::Embedded, LogBackend::Embedded) => {
                    let real = |p: &std::path::Path| std::fs::canonicalize(p).ok();
                    real(&from.data_dir) == real(&to.data_dir)
                }
                (a, b) => a == b,
            };
            if same {
                bail!("the old log and the new log are the same log");
            }
            // Only a log that verifies is moved: its head is what the new log records.
            let keys = contingent_log::WriterKeys::load(&from.writer_keys_path())
                .with_context(|| "reading the old deployment's trusted writer keys")?;
            let old = contingent_registry::open_stored_log(&from).await?;
            let report = contingent_registry::verify(&*old, &keys, &[], |_| {}).await?;
            old.close().await;
            if !report.is_ok() {
                for f in &report.findings {
                    println!("BROKEN at position {}: {}", f.position, f.problem);
                }
                bail!(
                    "the old log does not verify ({} of {} events): nothing was written",
                    report.verified,
                    report.head
                );
            }
            let progress = bar(report.head, "migrating");
            let migration = contingent_registry::migrate_log(
                &from,
                &to,
                contingent_domain::Text::parse(&from_log).with_context(|| {
                    format!("the old log's location {from_log:?}, recorded in the first event")
                })?,
                contingent_domain::Text::parse(&reason).context("--reason")?,
                chrono::Utc::now().date_naive(),
                |p| progress.set_position(p),
            )
            .await?;
            progress.finish_and_clear();
            println!(
                "{} events of the {from_log} (head {} at position {}) written to the new log \
                 after its first event and compared with the old; the new log's head is {} at \
                 position {}. Rebuild the read models from it (contingent rebuild) before \
                 serving.",
                migration.copied,
                migration.from_head.hash,
                migration.from_head.position,
                migration.to_head.hash,
                migration.to_head.position
            );
        }
        Cmd::Retention {
            data,
            backend,
            after_leaving_years,
            after_death_years,
            today,
            erase,
        } => {
            let policy = contingent_domain::RetentionPolicy {
                after_leaving_years,
                after_death_years,
            };
            let today = today.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let registry = open(&data, &backend).await?;
            let due =
                registry.read_state(|s| contingent_domain::due_for_erasure(s, today, &policy));
            for d in &due {
                println!(
                    "{} due since {}: {} on {}",
                    d.learner_id, d.due_on, d.ground, d.since
                );
            }
            if erase {
                let meta = contingent_log::Metadata {
                    source: contingent_log::Source {
                        kind: contingent_domain::SourceKind::Region,
                        id: "retention".into(),
                    },
                    actor: "system:retention".into(),
                    idempotency_key: None,
                    request_fingerprint: None,
                };
                for d in &due {
                    let command = contingent_domain::Command::ErasePersonalData(
                        contingent_domain::ErasePersonalData {
                            learner_id: d.learner_id,
                            reason: contingent_domain::Text::parse(&d.reason(&policy))
                                .context("the reason")?,
                        },
                    );
                    let receipt = registry.submit(command, meta.clone()).await?;
                    let at = receipt.last_position().unwrap_or_default();
                    println!("{} erased (position {at})", d.learner_id);
                }
                println!("{} learners erased.", due.len());
            } else {
                println!(
                    "{} learners due; nothing changed (dry run: --erase to erase them).",
                    due.len()
                );
            }
            registry.wait_caught_up(Duration::from_secs(60)).await;
            registry.shutdown().await;
        }
        Cmd::Export {
            data,
            backend,
            what,
            by,
        } => {
            let registry = open(&data, &backend).await?;
            registry.wait_caught_up(Duration::from_secs(600)).await;
            let pool = registry.read().pool().clone();
            match what.as_str() {
                "register" => {
                    let mut after = None;
                    loop {
                        let page = queries::federal_register(&pool, after, 1000).await?;
                        for row in &page {
                            println!("{}", serde_json::to_string(row)?);
                        }
                        if page.len() < 1000 {
                            break;
                        }
                        after = page.last().map(|r| r.learner_id);
                    }
                }
                "counts" => {
                    let dims = by
                        .split(',')
                        .map(|d| {
                            CountDimension::parse(d.trim())
                                .with_context(|| format!("cannot group by {d:?}"))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    print_json(&queries::federal_counts(&pool, &dims, None).await?)?;
                }
                other => bail!("cannot export {other:?}: use register or counts"),
            }
            registry.shutdown().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// mimalloc rather than the system allocator: answering queries allocates many short-lived
/// buffers from many threads, where glibc's malloc spent ~18 % of the CPU in a profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
