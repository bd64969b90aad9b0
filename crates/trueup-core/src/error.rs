//! The error type of the core crate.
//!
//! Problems in rule and project files are not errors but [`Diagnostic`]s: a file can have
//! many, and all of them are reported at once. An `Error` stops the operation it came from.

use std::path::PathBuf;

use crate::diagnostic::Diagnostic;

/// Result with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The project or its rules have problems; each diagnostic says where.
    #[error("{} problem(s) in the project's files", .0.len())]
    Invalid(Vec<Diagnostic>),

    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file could not be written: the `what` ("report", "metrics file") at `path`.
    #[error("cannot write the {what} {}", path.display())]
    Write {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A source could not be opened or reached.
    #[error("cannot connect to source `{source_name}` ({url})")]
    Connect {
        source_name: String,
        /// The URL with any password replaced.
        url: String,
        #[source]
        source: sqlx::Error,
    },

    /// A server that did not answer within the source's `connect-timeout`: unreachable, or
    /// accepting connections and then saying nothing.
    #[error(
        "could not connect to source `{source_name}` at {address} within {} (connect-timeout)",
        crate::duration::HumanDuration(*limit)
    )]
    ConnectTimeout {
        source_name: String,
        /// `host:port` (or the socket's folder), never the URL.
        address: String,
        limit: std::time::Duration,
    },

    /// A source spoken to over HTTP (Prometheus) failed: it could not be reached or its
    /// connection broke (`connection`), or it refused or failed the query, or its answer was
    /// past a bound. The message names the server's address, never its URL.
    #[error("source `{source_name}`: {message}")]
    Api {
        source_name: String,
        connection: bool,
        message: String,
    },

    /// A SQLite database file that should exist does not.
    #[error("source `{source_name}`: database file {} does not exist", path.display())]
    MissingDatabase { source_name: String, path: PathBuf },

    /// A SQLite database path that names something other than a file (a folder, a FIFO).
    #[error("source `{source_name}`: {} is {what}, not a database file", path.display())]
    NotADatabaseFile {
        source_name: String,
        path: PathBuf,
        /// What it is, e.g. "a directory".
        what: &'static str,
    },

    /// A source's URL names an environment variable that is not set (or writes `${` wrong);
    /// the diagnostic points at the URL in `trueup.toml`.
    #[error("{}", .0.headline())]
    Unresolved(Box<Diagnostic>),

    /// A URL whose scheme trueup does not know.
    #[error("source `{source_name}`: unsupported URL `{url}`")]
    UnsupportedUrl { source_name: String, url: String },

    /// A statement failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),

    /// The state store (run history) cannot be used.
    #[error("state store {store}: {message}")]
    Store {
        /// Where the store is, as shown (a PostgreSQL URL without its password).
        store: String,
        message: String,
    },

    /// A plugin could not be loaded, or failed while it checked a rule's rows.
    #[error("plugin `{plugin}`: {message}")]
    Plugin {
        plugin: String,
        failure: PluginFailure,
        message: String,
    },

    /// A plugin's `.wasm` is not the file its rule pins with `sha256`; nothing of it ran.
    #[error(
        "{}: its SHA-256 is {actual}, but the rule's `sha256` is {expected}: restore or \
         rebuild the file the rule was written for, or, if this file is the one to run, \
         put its hash in `sha256`",
        path.display()
    )]
    PluginHash {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// A query's result does not fit its rule: a key or message column it does not return,
    /// rows narrower than its columns.
    #[error("{0}")]
    Mismatch(String),

    /// A run named on the command line does not exist.
    #[error("{0}")]
    UnknownRun(String),

    /// A selection (`--rule`, `--tag`, `--source`) that names nothing in the project.
    #[error("{0}")]
    Selection(String),

    /// The caller's output failed (a closed pipe, a full disk).
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),

    /// What was being done when `source` happened.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },

    /// `error`, and what to try about it; [`chain`] puts the hint after every cause.
    #[error("{error}; hint: {hint}")]
    Hinted { error: Box<Error>, hint: String },

    /// Anything else in the core that is a bug or an environment failure.
    #[error("{0}")]
    Other(String),
}

/// How a plugin failed, for whoever decides what to do about it (metrics, retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginFailure {
    /// The file is missing, too big, not a valid module, not the one its rule pins, or
    /// speaks another interface.
    Load,
    /// The plugin answered with an error of its own (a config it refuses, say).
    Refused,
    /// It trapped: a panic, a stack overflow, an invalid instruction.
    Trapped,
    /// It ran past its time limit.
    OutOfTime,
    /// It asked for more memory than its limit.
    OutOfMemory,
    /// Its reply broke the interface: malformed, outside its memory, past the output limit.
    BadReply,
}

/// An error and its causes on one line, `a: b: c`, skipping causes the message already
/// repeats. A database's error ends the chain with its own message, detail and hint.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = String::new();
    let mut hints = Vec::new();
    let mut next = Some(err);
    while let Some(current) = next {
        if let Some(Error::Hinted { error, hint }) = current.downcast_ref::<Error>() {
            hints.push(hint);
            next = Some(error.as_ref());
            continue;
        }
        let (text, last) = match database_error(current) {
            Some(db) => (describe_database_error(db), true),
            None => (current.to_string(), false),
        };
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
        next = if last { None } else { current.source() };
    }
    for hint in hints {
        message.push_str("; hint: ");
        message.push_str(hint);
    }
    // A driver may quote the URL it failed to parse: never let its password through.
    crate::redact::redact_urls_in(&message)
}

fn database_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a dyn sqlx::error::DatabaseError> {
    match err
        .downcast_ref::<sqlx::Error>()
        .or_else(|| match err.downcast_ref::<Error>() {
            Some(Error::Database(inner)) => Some(inner),
            _ => None,
        }) {
        Some(sqlx::Error::Database(db)) => Some(db.as_ref()),
        _ => None,
    }
}

/// The message with its detail and hint, without sqlx's "error returned from database"
/// prefix and the server's source line.
fn describe_database_error(db: &dyn sqlx::error::DatabaseError) -> String {
    let mut text = db.message().to_owned();
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        if let Some(detail) = pg.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = pg.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
    }
    text
}
