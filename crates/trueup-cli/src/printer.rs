//! Where and how the CLI writes: colour choice, `error:`/`hint:` lines on stderr, status
//! chatter that `--quiet` silences, and the progress bar that hides when stderr is not a
//! terminal. Errors, diagnostics and status lines can quote a value from a row or a file
//! name: they are written with their control characters escaped (`trueup_core::text`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anstream::{eprintln, stderr};
use anstyle::{AnsiColor, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trueup_core::diagnostic::{Diagnostic, Location};
use trueup_core::text::{Escaped, escape, escape_keeping_lines};

use crate::args::{ColorChoice, GlobalArgs};

pub const ERROR: Style = AnsiColor::Red.on_default().bold();
pub const WARNING: Style = AnsiColor::Yellow.on_default().bold();
pub const HINT: Style = AnsiColor::Cyan.on_default().bold();
pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();
pub const OK: Style = AnsiColor::Green.on_default().bold();

/// Writes everything that is not a command's data.
#[derive(Debug, Clone)]
pub struct Printer {
    quiet: bool,
}

impl Printer {
    pub fn new(global: &GlobalArgs) -> Printer {
        let choice = match global.color {
            ColorChoice::Auto => anstream::ColorChoice::Auto,
            ColorChoice::Always => anstream::ColorChoice::Always,
            ColorChoice::Never => anstream::ColorChoice::Never,
        };
        choice.write_global();
        Printer {
            quiet: global.quiet,
        }
    }

    /// `error: message`, one `Cause:` line per source, then hints; problems in project files
    /// are printed one by one with their file, line and column.
    pub fn error(&self, err: &anyhow::Error) {
        if let Some(trueup_core::Error::Invalid(problems)) =
            err.downcast_ref::<trueup_core::Error>()
        {
            self.diagnostics(problems);
        }
        eprintln!("{ERROR}error{ERROR:#}: {}", Escaped(err));
        for cause in err.chain().skip(1) {
            eprintln!("  {BOLD}Cause:{BOLD:#} {}", Escaped(cause));
        }
        for hint in hints_for(err) {
            eprintln!("  {HINT}hint{HINT:#}: {hint}");
        }
    }

    pub fn diagnostics(&self, problems: &[Diagnostic]) {
        Self::labelled(problems, "error", ERROR);
    }

    /// Diagnostics that do not fail the command, as `warning: …`; advice, so `--quiet`
    /// silences them (JSON output still carries them).
    pub fn warnings(&self, warnings: &[Diagnostic]) {
        if !self.quiet {
            Self::labelled(warnings, "warning", WARNING);
        }
    }

    fn labelled(diagnostics: &[Diagnostic], label: &str, style: Style) {
        let mut err = stderr().lock();
        for diagnostic in diagnostics {
            let text = shown(diagnostic)
                .to_string()
                .replace("= hint:", &format!("= {HINT}hint{HINT:#}:"));
            let _ = writeln!(err, "{style}{label}{style:#}: {text}\n");
        }
    }

    /// A line of status on stderr, unless `--quiet`: trueup's own words, which may run over
    /// several lines, around file names; control characters other than newlines and tabs
    /// are escaped.
    pub fn status(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            let message = message.to_string();
            eprintln!("{DIM}{}{DIM:#}", escape_keeping_lines(&message));
        }
    }

    /// A progress bar over `len` rules on stderr; hidden with `--quiet` or without a terminal.
    pub fn progress(&self, len: usize) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:24}] {wide_msg}")
                .expect("valid progress template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// `problem` with its message, file name, line and hints escaped: what its `Display`
/// writes is then safe. The column stays the file's (an editor jumps to it); in the line a
/// tab is shown as one space, so that the underline stays under what it marks, and the
/// underline is as wide as the escaped text it marks.
fn shown(problem: &Diagnostic) -> Diagnostic {
    let escaped = |text: &str| escape(&text.replace('\t', " ")).into_owned();
    let location = problem.location.as_ref().map(|loc| {
        let marked: String = loc
            .snippet
            .chars()
            .skip(loc.column.saturating_sub(1))
            .take(loc.width)
            .collect();
        Location {
            file: escape(&loc.file.display().to_string()).into_owned().into(),
            snippet: escaped(&loc.snippet),
            width: escaped(&marked).chars().count(),
            ..loc.clone()
        }
    });
    let mut shown = problem.clone();
    shown.message = escape(&problem.message).into_owned();
    shown.location = location;
    shown.hints = problem
        .hints
        .iter()
        .map(|h| escape(h).into_owned())
        .collect();
    shown
}

/// What a user can do about common errors.
fn hints_for(err: &anyhow::Error) -> Vec<String> {
    let mut hints = Vec::new();
    for cause in err.chain() {
        match cause.downcast_ref::<trueup_core::Error>() {
            Some(trueup_core::Error::Read { path, source })
                if source.kind() == std::io::ErrorKind::NotFound
                    && path
                        .file_name()
                        .is_some_and(|n| n == trueup_core::project::PROJECT_FILE) =>
            {
                hints.push(
                    "run `trueup init` to start a project here, or `trueup demo` to try one"
                        .to_owned(),
                );
                hints.push("or point at a project with `--project path/to/trueup.toml`".to_owned());
            }
            Some(
                trueup_core::Error::MissingDatabase { .. }
                | trueup_core::Error::NotADatabaseFile { .. },
            ) => {
                hints.push(
                    "check the source's `url` in trueup.toml; paths are relative to that file"
                        .to_owned(),
                );
            }
            _ => {}
        }
    }
    hints
}
