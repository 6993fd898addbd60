//! What the Kafka and PostgreSQL test suites share: the addresses of the servers
//! `scripts/services` starts (`CONTINGENT_TEST_DATABASE_URL`, `CONTINGENT_TEST_KAFKA`), a fresh
//! PostgreSQL database per test, dropped afterwards, and topic names no other test uses.
//!
//! For tests only: nothing of the registry depends on it, and it knows nothing of the domain.
#![deny(missing_docs)]

use sqlx::AnyConnection;
use sqlx::Connection;

/// The PostgreSQL server of the test suites (an existing database on it, used to create others).
pub fn database_url() -> String {
    std::env::var("CONTINGENT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| panic!("run through ./scripts/test, which starts PostgreSQL"))
}

/// The Kafka-protocol broker of the test suites.
pub fn kafka_broker() -> String {
    std::env::var("CONTINGENT_TEST_KAFKA")
        .unwrap_or_else(|_| panic!("run through ./scripts/test, which starts the broker"))
}

/// A region name no other test uses, for topics `contingent.<region>.*`.
pub fn unique_region() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh PostgreSQL database, dropped when this is dropped (also when the test panics).
#[derive(Debug)]
pub struct PgDatabase {
    name: String,
    url: String,
}

impl PgDatabase {
    /// Creates the database.
    pub async fn create() -> Self {
        sqlx::any::install_default_drivers();
        let admin = database_url();
        let name = format!("contingent_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AnyConnection::connect(&admin)
            .await
            .expect("PostgreSQL answers at CONTINGENT_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("a test database");
        conn.close().await.expect("close");
        let (base, rest) = admin.rsplit_once('/').expect("a database URL");
        let query = rest
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        let url = format!("{base}/{name}{query}");
        Self { name, url }
    }

    /// Its `postgres://` URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                sqlx::any::install_default_drivers();
                let mut conn = AnyConnection::connect(&database_url()).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
