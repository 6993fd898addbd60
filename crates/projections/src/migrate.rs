//! The versioned DDL of the read models, per engine, and the runner that applies it.
//!
//! Every migration has a version (applied in ascending order), an owner (`projection_positions`
//! or a projection's name) and one SQL file per engine, embedded at build time:
//! `projections/sqlite/*.sql` and `projections/postgres/*.sql`. The versions applied are recorded
//! in `contingent_migrations`; opening a store applies the missing ones of the owners it serves,
//! in one transaction. Resetting a projection drops its tables, forgets its versions and applies
//! them again. To change a read model, add a migration with the next version and the projection
//! as owner (and, usually, rebuild that projection).

use sqlx::AnyConnection;

use crate::store::Engine;

/// Owner of the migrations every store needs.
pub(crate) const POSITIONS: &str = "projection_positions";

/// One migration. `postgres` is empty for a migration of SQLite only.
pub(crate) struct Migration {
    pub version: i64,
    pub owner: &'static str,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

macro_rules! migration {
    ($version:expr, $owner:expr, $file:literal) => {
        Migration {
            version: $version,
            owner: $owner,
            name: $file,
            sqlite: include_str!(concat!("../../../projections/sqlite/", $file, ".sql")),
            postgres: include_str!(concat!("../../../projections/postgres/", $file, ".sql")),
        }
    };
    ($version:expr, $owner:expr, $file:literal, sqlite_only) => {
        Migration {
            version: $version,
            owner: $owner,
            name: $file,
            sqlite: include_str!(concat!("../../../projections/sqlite/", $file, ".sql")),
            postgres: "",
        }
    };
}

/// Every migration, by version.
pub(crate) static MIGRATIONS: &[Migration] = &[
    migration!(1, POSITIONS, "000_positions"),
    migration!(2, "register", "register"),
    migration!(3, "diary", "diary"),
    migration!(4, "class_register", "class_register"),
    migration!(5, "vacancies", "vacancies"),
    migration!(6, "federal", "federal"),
    migration!(7, "diary", "diary_marks_by_position"),
    migration!(8, "class_register", "class_register_marks_by_position"),
    migration!(9, "diary", "diary_by_learner_and_date"),
    // PostgreSQL keeps the diary's indexes of migration 9: the month's lead was measured on
    // SQLite's write-ahead log only (docs/performance.md).
    migration!(10, "diary", "diary_by_month", sqlite_only),
];

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS contingent_migrations (\
     version BIGINT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL)";

/// Serializes migrations of concurrent openers of one PostgreSQL database (an arbitrary constant).
const PG_LOCK: i64 = 0x0063_6f6e_7469_6e67;

/// Takes the migration lock (PostgreSQL) and makes sure the ledger exists; call at the start of
/// the transaction that migrates.
pub(crate) async fn begin(conn: &mut AnyConnection, engine: Engine) -> Result<(), sqlx::Error> {
    if engine == Engine::Postgres {
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(PG_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(LEDGER).execute(&mut *conn).await?;
    Ok(())
}

/// Applies the migrations of `owners` not yet recorded, in version order. Returns how many.
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    engine: Engine,
    owners: &[&str],
) -> Result<usize, sqlx::Error> {
    let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM contingent_migrations")
        .fetch_all(&mut *conn)
        .await?;
    let mut n = 0;
    for m in MIGRATIONS {
        if !owners.contains(&m.owner) || applied.iter().any(|(v,)| *v == m.version) {
            continue;
        }
        let sql = match engine {
            Engine::Sqlite => m.sqlite,
            Engine::Postgres => m.postgres,
        };
        // A migration of one engine only is recorded on the other too, with nothing to run.
        if !sql.is_empty() {
            sqlx::raw_sql(sql).execute(&mut *conn).await?;
        }
        sqlx::query("INSERT INTO contingent_migrations (version, owner, name) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.owner)
            .bind(m.name)
            .execute(&mut *conn)
            .await?;
        n += 1;
    }
    Ok(n)
}

/// Forgets the migrations of `owner`, so that [`apply`] runs them again.
pub(crate) async fn forget(conn: &mut AnyConnection, owner: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM contingent_migrations WHERE owner = $1")
        .bind(owner)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
