//! The state store: every `check` records its run, the rules it ran and every finding, so
//! that runs can be listed, shown and diffed. An embedded SQLite file under the project
//! (`.trueup/state.db`) by default, or a PostgreSQL database (`[state] url` in trueup.toml)
//! that runners on several machines share; versioned migrations for each.

pub mod baseline;
mod diff;
mod first;
pub mod history;
mod leases;
mod prints;
mod record;
mod repairs;
mod runs;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Connection, Executor, SqlSafeStr};

pub use baseline::{Accepted, Baseline};
pub use diff::{Diff, DiffKey, RuleChange, RuleDiff, Side};
pub use history::RuleRun;
pub use leases::{Claim, ScheduledEnd, ScheduledRun};
pub use record::Recorder;
pub use repairs::RepairRecord;
pub use runs::{RunRule, RunStatus, RunSummary, StoredFinding, key_text};

pub use crate::load::{DEFAULT_PATH, StoreLocation};
use crate::{Error, Result};

/// How long a writer waits for another one (a concurrent `check`) to let go of the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The schema per backend, one migration per version. Never edit a released one: add one.
const SQLITE_MIGRATIONS: [(i64, &str, &str); 4] = [
    (
        1,
        "runs, rules and findings",
        include_str!("migrations/sqlite/0001_runs.sql"),
    ),
    (
        2,
        "how a run ended",
        include_str!("migrations/sqlite/0002_run_status.sql"),
    ),
    (
        3,
        "repairs",
        include_str!("migrations/sqlite/0003_repairs.sql"),
    ),
    (
        4,
        "leases and scheduled runs",
        include_str!("migrations/sqlite/0004_leases.sql"),
    ),
];
const POSTGRES_MIGRATIONS: [(i64, &str, &str); 4] = [
    (
        1,
        "runs, rules and findings",
        include_str!("migrations/postgres/0001_runs.sql"),
    ),
    (
        2,
        "how a run ended",
        include_str!("migrations/postgres/0002_run_status.sql"),
    ),
    (
        3,
        "repairs",
        include_str!("migrations/postgres/0003_repairs.sql"),
    ),
    (
        4,
        "leases and scheduled runs",
        include_str!("migrations/postgres/0004_leases.sql"),
    ),
];

/// An open state store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where the store is; messages name it as its `Display` shows it (no password).
    location: StoreLocation,
    /// The schema version the store is at: a store opened read-only may be older than
    /// this trueup's (it is read as it is, never migrated).
    schema: i64,
}

/// A run's id.
pub type RunId = i64;

impl Store {
    /// Opens (creating when missing) the SQLite store at `path` and brings its schema up to
    /// date. Refuses a store written by a newer trueup, and says so.
    pub async fn open(path: &Path) -> Result<Store> {
        let failed = |message: String| Error::Store {
            store: path.display().to_string(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = connect(&url, Backend::Sqlite { write: true })
            .await
            .map_err(|e| failed(describe_open_error(&e)))?;
        migrate(
            pool,
            StoreLocation::File(path.to_owned()),
            &SQLITE_MIGRATIONS,
        )
        .await
    }

    /// Opens the PostgreSQL store at `url` (its database must exist; the tables are created).
    pub async fn open_url(url: &str) -> Result<Store> {
        let location = StoreLocation::Url(url.to_owned());
        let pool = connect(url, Backend::Postgres)
            .await
            .map_err(|e| Error::Store {
                store: location.to_string(),
                message: crate::error::chain(&e),
            })?;
        migrate(pool, location, &POSTGRES_MIGRATIONS).await
    }

    /// Opens the store at `location`.
    pub async fn open_location(location: &StoreLocation) -> Result<Store> {
        match &location.resolve()? {
            StoreLocation::File(path) => Store::open(path).await,
            StoreLocation::Url(url) => Store::open_url(url).await,
        }
    }

    /// Opens the store at `location` to read it only: no migration, nothing written (a
    /// SQLite file is opened `mode=ro`, so a store the user may read but not write serves
    /// `runs`, `show`, `diff` and `baseline accept`). A missing SQLite file is an error that
    /// says `check` records the first run.
    pub async fn open_read_only(location: &StoreLocation) -> Result<Store> {
        let location = &location.resolve()?;
        match location {
            StoreLocation::File(path) => {
                if !path.is_file() {
                    return Err(Error::Store {
                        store: path.display().to_string(),
                        message: "no runs recorded yet here: `trueup check` records one".to_owned(),
                    });
                }
                match Store::read_file(path, false).await {
                    // A store in WAL mode needs its `-shm` file, which a reader that may not
                    // write the folder cannot create once the last writer removed it: then
                    // the file is read as immutable (no writer this user could wait for can
                    // be under way there).
                    Err(Error::Store { message, .. })
                        if message.contains("readonly") || message.contains("unable to open") =>
                    {
                        Store::read_file(path, true).await
                    }
                    opened => opened,
                }
            }
            StoreLocation::Url(url) => {
                let pool = connect(url, Backend::Postgres)
                    .await
                    .map_err(|e| Error::Store {
                        store: location.to_string(),
                        message: crate::error::chain(&e),
                    })?;
                Store::read(pool, location.clone(), POSTGRES_MIGRATIONS.len()).await
            }
        }
    }

    /// Opens the SQLite file at `path` `mode=ro` (and `immutable` when asked).
    async fn read_file(path: &Path, immutable: bool) -> Result<Store> {
        let url = format!(
            "sqlite://{}?mode=ro{}",
            path.display(),
            if immutable { "&immutable=true" } else { "" }
        );
        let pool = connect(&url, Backend::Sqlite { write: false })
            .await
            .map_err(|e| Error::Store {
                store: path.display().to_string(),
                message: describe_open_error(&e),
            })?;
        Store::read(
            pool,
            StoreLocation::File(path.to_owned()),
            SQLITE_MIGRATIONS.len(),
        )
        .await
    }

    /// The store `pool` reaches, read as it is: its schema version is checked, not changed.
    async fn read(pool: AnyPool, location: StoreLocation, known: usize) -> Result<Store> {
        let mut store = Store {
            pool,
            location,
            schema: 0,
        };
        match store.schema_version(known).await {
            Ok(version) => store.schema = version,
            Err(err) => {
                store.close().await;
                return Err(err);
            }
        }
        Ok(store)
    }

    /// The version of the store's schema; refuses a store that is none, or that a newer
    /// trueup wrote.
    async fn schema_version(&self, known: usize) -> Result<i64> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            let text = crate::error::chain(&e);
            let message = if text.contains("no such table") || text.contains("does not exist") {
                "it is not a trueup state store (no schema version): `trueup check` records runs"
                    .to_owned()
            } else {
                describe_open_error(&e)
            };
            Error::Store {
                store: self.location.to_string(),
                message,
            }
        })?;
        let version = version.unwrap_or_default();
        if version > i64::try_from(known).unwrap_or(i64::MAX) {
            return Err(Error::Store {
                store: self.location.to_string(),
                message: format!(
                    "it was written by a newer trueup (schema version {version}; this trueup knows up to {known}): upgrade trueup"
                ),
            });
        }
        Ok(version)
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    fn is_sqlite(&self) -> bool {
        self.pool.connect_options().database_url.scheme() == "sqlite"
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// An error of this store.
    fn failed(&self, err: &(dyn std::error::Error + 'static)) -> Error {
        Error::Store {
            store: self.location.to_string(),
            message: crate::error::chain(err),
        }
    }
}

/// The statements every connection to a SQLite store starts with.
fn sqlite_session() -> [String; 3] {
    [
        format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis()),
        "PRAGMA foreign_keys = ON".to_owned(),
        "PRAGMA synchronous = NORMAL".to_owned(),
    ]
}

/// What a connection is to.
#[derive(Debug, Clone, Copy)]
enum Backend {
    /// A SQLite file, to write (set up for it) or only read.
    Sqlite {
        write: bool,
    },
    Postgres,
}

async fn connect(url: &str, backend: Backend) -> Result<AnyPool, sqlx::Error> {
    let sqlite = matches!(backend, Backend::Sqlite { .. });
    sqlx::any::install_default_drivers();
    let options: AnyConnectOptions = url.parse()?;
    // One direct connection first: a damaged file or an unreachable server is reported at
    // once with its cause, where a pool would retry until its timeout and say only that.
    let mut probe = sqlx::AnyConnection::connect_with(&options).await?;
    if sqlite {
        for statement in sqlite_session() {
            probe.execute(sqlx::AssertSqlSafe(statement)).await?;
        }
    }
    if let Backend::Sqlite { write: true } = backend {
        // Only takes effect on a new file: findings are stored in batches of about half a
        // megabyte, and large pages write them with a sixteenth of the system calls.
        probe.execute("PRAGMA page_size = 65536").await?;
        // Also only on a new file: pages freed by `gc` can be given back to the file system
        // (`PRAGMA incremental_vacuum`), so that the file shrinks.
        probe.execute("PRAGMA auto_vacuum = INCREMENTAL").await?;
        // Persistent in the file: readers never wait for the writer.
        probe.execute("PRAGMA journal_mode = WAL").await?;
    }
    probe.close().await?;
    AnyPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(BUSY_TIMEOUT)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    for statement in sqlite_session() {
                        conn.execute(sqlx::AssertSqlSafe(statement)).await?;
                    }
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
}

async fn migrate(
    pool: AnyPool,
    location: StoreLocation,
    schema: &[(i64, &'static str, &'static str)],
) -> Result<Store> {
    let failed = |message: String| Error::Store {
        store: location.to_string(),
        message,
    };
    let migrations = schema
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                (*description).into(),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations).run(&pool).await.map_err(|e| match e {
        MigrateError::VersionMissing(version) => failed(format!(
            "it was written by a newer trueup (schema version {version}; this trueup knows up to {}): upgrade trueup",
            schema.len()
        )),
        other => failed(describe_open_error(&other)),
    })?;
    Ok(Store {
        pool,
        location,
        schema: i64::try_from(schema.len()).unwrap_or(i64::MAX),
    })
}

/// A clearer word for the failures users meet: a file that is not a database.
fn describe_open_error(err: &(dyn std::error::Error + 'static)) -> String {
    let text = crate::error::chain(err);
    if text.contains("file is not a database") || text.contains("malformed") {
        format!(
            "{text}; the file is damaged or not a trueup state store: move it away and trueup starts a new one"
        )
    } else {
        text
    }
}
