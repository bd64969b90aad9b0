//! What the service says as it goes: typed records the caller renders (text or JSON lines);
//! the core never prints.

use serde_json::{Map, Value};

/// How much a record matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One event: when, how much it matters, its name (`run.finished`), a sentence, and its
/// fields. Fields hold no secret (webhook URLs show their host only, store URLs no
/// password).
#[derive(Debug, Clone)]
pub struct Record {
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    pub level: Level,
    pub event: &'static str,
    pub message: String,
    pub fields: Map<String, Value>,
}

impl Record {
    pub fn new(level: Level, event: &'static str, message: impl Into<String>) -> Record {
        Record {
            time: format!("{:.3}", jiff::Timestamp::now()),
            level,
            event,
            message: message.into(),
            fields: Map::new(),
        }
    }

    /// Adds a field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Record {
        self.fields.insert(key.to_owned(), value.into());
        self
    }
}

/// Where records go; called from many tasks at once.
pub trait Log: Send + Sync {
    fn log(&self, record: Record);
}
