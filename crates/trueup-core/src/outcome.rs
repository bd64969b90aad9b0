//! How a rule's run ended: its findings, its time, and why it could not finish, typed by
//! cause so that metrics can count errors by it and a scheduler can decide to retry.

use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::error::PluginFailure;
use crate::finding::RuleSpec;

/// How one rule's run ended.
#[derive(Debug, Clone)]
pub struct RuleOutcome {
    pub rule: Arc<RuleSpec>,
    /// Findings: one per key (see [`crate::distinct`]; the engine counts rows, and who
    /// folds repeated keys lowers this and sets `repeats`).
    pub findings: u64,
    /// Rows that repeated the key of an earlier finding of the rule.
    pub repeats: u64,
    pub elapsed: Duration,
    /// Why the rule could not finish; its findings so far were still reported.
    pub error: Option<RuleError>,
}

/// Why a rule could not run to the end. Its `Display` is the message a user reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// trueup refused the rule's SQL before it reached the database.
    Refused(String),
    /// The rule does not fit its source: a table or column that is not there, a timestamp
    /// column that holds no timestamps, a key or message column the query does not return.
    Configuration(String),
    /// The source could not be opened, or its connection failed.
    Connection(String),
    /// The database rejected or failed the query.
    Query(String),
    /// The query (with the rule's plugin, if any) ran past the rule's timeout.
    Timeout {
        limit: Duration,
        /// The deadline covered a plugin too.
        with_plugin: bool,
    },
    /// The rule's plugin could not be loaded or failed while it checked rows.
    Plugin {
        failure: PluginFailure,
        message: String,
    },
    /// Anything else.
    Other(String),
}

impl RuleError {
    /// The cause as a stable label (`timeout`, `plugin-trapped`, …), for metrics and JSON.
    pub fn cause(&self) -> &'static str {
        match self {
            RuleError::Refused(_) => "refused",
            RuleError::Configuration(_) => "configuration",
            RuleError::Connection(_) => "connection",
            RuleError::Query(_) => "query",
            RuleError::Timeout { .. } => "timeout",
            RuleError::Plugin { failure, .. } => match failure {
                PluginFailure::Load => "plugin-load",
                PluginFailure::Refused => "plugin-refused",
                PluginFailure::Trapped => "plugin-trapped",
                PluginFailure::OutOfTime => "plugin-out-of-time",
                PluginFailure::OutOfMemory => "plugin-out-of-memory",
                PluginFailure::BadReply => "plugin-bad-reply",
            },
            RuleError::Other(_) => "other",
        }
    }

    /// The rule error an engine error stands for.
    pub fn from_error(error: &Error) -> RuleError {
        let message = crate::error::chain(error);
        // A hint changes the words, not the cause.
        let mut error = error;
        while let Error::Hinted { error: inner, .. } = error {
            error = inner;
        }
        match error {
            Error::Plugin { failure, .. } => RuleError::Plugin {
                failure: *failure,
                message,
            },
            Error::PluginHash { .. } => RuleError::Plugin {
                failure: PluginFailure::Load,
                message,
            },
            Error::Mismatch(_) => RuleError::Configuration(message),
            Error::Api {
                connection: true, ..
            } => RuleError::Connection(message),
            Error::Api { .. } => RuleError::Query(message),
            Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::MissingDatabase { .. }
            | Error::NotADatabaseFile { .. }
            | Error::UnsupportedUrl { .. }
            | Error::Unresolved(_) => RuleError::Connection(message),
            Error::Database(sqlx::Error::Database(_)) => RuleError::Query(message),
            Error::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_),
            ) => RuleError::Connection(message),
            Error::Database(_) => RuleError::Query(message),
            _ => RuleError::Other(message),
        }
    }
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleError::Refused(message)
            | RuleError::Configuration(message)
            | RuleError::Connection(message)
            | RuleError::Query(message)
            | RuleError::Plugin { message, .. }
            | RuleError::Other(message) => f.write_str(message),
            RuleError::Timeout {
                limit,
                with_plugin: false,
            } => write!(
                f,
                "timed out after {}; the query was cancelled (raise `timeout` on the rule to \
                 allow more)",
                crate::duration::HumanDuration(*limit)
            ),
            RuleError::Timeout {
                limit,
                with_plugin: true,
            } => write!(
                f,
                "timed out after {}: the rule's timeout covers its query and its plugin \
                 together (raise `timeout` on the rule)",
                crate::duration::HumanDuration(*limit)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_told_apart() {
        let plugin = Error::Plugin {
            plugin: "p".into(),
            failure: PluginFailure::OutOfTime,
            message: "ran past its time limit".into(),
        };
        assert_eq!(RuleError::from_error(&plugin).cause(), "plugin-out-of-time");
        assert_eq!(
            RuleError::from_error(&Error::Database(sqlx::Error::PoolTimedOut)).cause(),
            "connection"
        );
        assert_eq!(
            RuleError::from_error(&Error::Mismatch("no key".into())).cause(),
            "configuration"
        );
        let timeout = RuleError::Timeout {
            limit: Duration::from_secs(2),
            with_plugin: false,
        };
        assert_eq!(timeout.cause(), "timeout");
        assert!(
            timeout.to_string().starts_with("timed out after 2s"),
            "{timeout}"
        );
    }
}
