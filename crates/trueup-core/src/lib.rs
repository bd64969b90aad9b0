//! trueup's engine: the rule model and its JSON Schema, project files, sources, the
//! detection engine and its findings.
//!
//! The core never prints and never reads argv: it hands typed values (diagnostics, events,
//! findings) to the caller, and the CLI decides how to render them.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod alert;
pub mod cache;
pub mod cancel;
pub mod check;
pub mod compile;
pub mod diagnostic;
pub mod dialect;
pub mod distinct;
pub mod duration;
pub mod engine;
pub mod error;
pub mod finding;
pub mod fingerprint;
pub mod http_client;
pub mod lint;
pub mod load;
pub mod metrics;
pub mod notify;
pub mod outcome;
pub mod plugin;
pub mod project;
pub mod promql_text;
pub mod read;
pub mod reconcile;
pub mod redact;
pub mod repair;
pub mod report;
pub mod rule;
pub mod rule_files;
pub mod schema;
pub mod serve;
pub mod size;
pub mod source;
pub mod sql_text;
pub mod store;
pub mod suggest;
pub mod template;
pub mod text;
pub mod time;
pub mod validate;
pub mod value;
pub mod write;

pub use error::{Error, Result};
