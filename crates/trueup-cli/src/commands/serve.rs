//! `trueup serve`: the core's scheduled-audit service (`trueup_core::serve`), its logs on
//! stderr as text or JSON lines; SIGINT or SIGTERM stops it cleanly (a second one at once).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use trueup_core::cancel::Cancel;
use trueup_core::load::Project;
use trueup_core::project::LogFormat;
use trueup_core::serve::log::{Log, Record};
use trueup_core::serve::{ServeOptions, serve};
use trueup_core::text::Escaped;

use crate::ExitStatus;
use crate::args::{LogFormatArg, ServeArgs};
use crate::printer::Printer;

pub async fn run(
    args: &ServeArgs,
    project_path: &Path,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let project = Project::load(project_path)?;
    printer.warnings(&trueup_core::validate::literal_passwords(&project));
    let format = match args.log_format {
        Some(LogFormatArg::Text) => LogFormat::Text,
        Some(LogFormatArg::Json) => LogFormat::Json,
        None => project.serve.log_format,
    };
    let listen = match args.listen {
        Some(listen) => listen,
        // Checked when the project was loaded.
        None => project.serve.listen.parse()?,
    };
    let options = ServeOptions {
        listen,
        replica: args.replica.clone(),
    };
    let log = Arc::new(Stderr {
        format,
        lock: Mutex::new(()),
    });
    let shutdown = Cancel::new();
    let signals = tokio::spawn(crate::checking::stop_on_signals(shutdown.clone()));
    let served = serve(Arc::new(project), options, shutdown, log).await;
    signals.abort();
    served?;
    Ok(ExitStatus::Success)
}

/// Log records on stderr, one line each.
struct Stderr {
    format: LogFormat,
    /// Lines from many tasks never interleave.
    lock: Mutex<()>,
}

impl Log for Stderr {
    fn log(&self, record: Record) {
        let line = match self.format {
            LogFormat::Json => json_line(record),
            LogFormat::Text => text_line(&record),
        };
        let _guard = self.lock.lock();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}

/// `{"time":…,"level":…,"event":…,"message":…, fields…}`.
fn json_line(record: Record) -> String {
    let mut object = serde_json::Map::new();
    object.insert("time".to_owned(), Value::String(record.time));
    object.insert("level".to_owned(), record.level.as_str().into());
    object.insert("event".to_owned(), record.event.into());
    object.insert("message".to_owned(), Value::String(record.message));
    for (key, value) in record.fields {
        object.entry(key).or_insert(value);
    }
    Value::Object(object).to_string()
}

/// `2026-12-03T08:00:00.004Z info  run.finished run complete schedule=nightly run=4`: a
/// string field with spaces, quotes or control characters is written as a JSON string.
fn text_line(record: &Record) -> String {
    let mut line = format!(
        "{} {:<5} {} {}",
        record.time,
        record.level.as_str(),
        record.event,
        Escaped(&record.message)
    );
    for (key, value) in &record.fields {
        let shown = match value {
            Value::String(text)
                if !text.is_empty()
                    && !text
                        .chars()
                        .any(|c| c.is_whitespace() || c == '"' || c.is_control()) =>
            {
                text.clone()
            }
            other => other.to_string(),
        };
        line.push_str(&format!(" {key}={}", Escaped(shown)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use trueup_core::serve::log::Level;

    #[test]
    fn text_lines_quote_what_needs_quoting_and_escape_control_characters() {
        let record = Record::new(Level::Info, "run.finished", "run complete")
            .with("schedule", "nightly")
            .with("error", "a b\u{1b}[2J")
            .with("run", 4);
        let line = text_line(&record);
        assert!(line.contains(" info  run.finished run complete"), "{line}");
        assert!(line.contains("schedule=nightly"), "{line}");
        assert!(line.contains("run=4"), "{line}");
        assert!(line.contains(r#"error="a b\u001b[2J""#), "{line}");
        assert!(!line.contains('\u{1b}'), "{line}");
    }

    #[test]
    fn json_lines_carry_every_field() {
        let record = Record::new(Level::Warn, "run.skipped", "skipped").with("schedule", "s");
        let value: Value = serde_json::from_str(&json_line(record)).unwrap();
        assert_eq!(value["level"], "warn");
        assert_eq!(value["event"], "run.skipped");
        assert_eq!(value["schedule"], "s");
    }
}
