//! The state store: every `check` records its run, the rules it ran and every finding, so
//! that runs can be listed, shown and diffed. An embedded SQLite file under the project
//! (`.trueup/state.db`), with versioned migrations.

pub mod baseline;
mod diff;
mod record;
mod runs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqlSafeStr, SqlitePool};

pub use baseline::{Accepted, Baseline};
pub use diff::{Diff, DiffKey, RuleChange, RuleDiff};
pub use record::Recorder;
pub use runs::{RunRule, RunSummary, StoredFinding};

use crate::{Error, Result};

/// Where a project keeps its state store, relative to `trueup.toml`.
pub const DEFAULT_PATH: &str = ".trueup/state.db";

/// How long a writer waits for another one (a concurrent `check`) to let go of the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The schema, one migration per version. Never edit a released migration: add one.
const MIGRATIONS: [(i64, &str, &str); 1] = [(
    1,
    "runs, rules and findings",
    include_str!("migrations/0001_runs.sql"),
)];

/// An open state store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

/// A run's id.
pub type RunId = i64;

impl Store {
    /// Opens (creating when missing) the store at `path` and brings its schema up to date.
    /// Refuses a store written by a newer trueup, and says so.
    pub async fn open(path: &Path) -> Result<Store> {
        let failed = |message: String| Error::Store {
            path: path.to_owned(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(|e| failed(describe_open_error(&e)))?;
        let migrations = MIGRATIONS
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
                MIGRATIONS.len()
            )),
            other => failed(describe_open_error(&other)),
        })?;
        Ok(Store {
            pool,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// An error of this store.
    fn failed(&self, err: &(dyn std::error::Error + 'static)) -> Error {
        Error::Store {
            path: self.path.clone(),
            message: crate::error::chain(err),
        }
    }
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
