//! The error type of the demo-shop generator.

use std::path::PathBuf;

/// Result with the shop's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while writing a demo shop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target file exists: the shop is only ever written to a new file.
    #[error("{} already exists", path.display())]
    Exists { path: PathBuf },

    /// The target file could not be created.
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The database refused the schema or the rows.
    #[error("cannot write the demo shop to {}", path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },

    /// Tables of the shop already exist in the target PostgreSQL or MySQL database: the
    /// shop is only loaded into a database without them.
    #[error("{url} already has the table(s) {}: load the shop into a database without them", tables.join(", "))]
    TablesExist { url: String, tables: Vec<String> },

    /// PostgreSQL refused the connection, the schema or the rows (the URL without its
    /// password).
    #[error("cannot load the demo shop into {url}")]
    Postgres {
        url: String,
        #[source]
        source: sqlx::Error,
    },

    /// MySQL (or MariaDB) refused the connection, the schema or the rows (the URL without
    /// its password).
    #[error("cannot load the demo shop into {url}")]
    Mysql {
        url: String,
        #[source]
        source: sqlx::Error,
    },
}
