//! Where a project keeps its state store: `[state] url`, or `.trueup/state.db` beside
//! `trueup.toml`.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Where a project keeps its state store, relative to `trueup.toml`, unless `[state] url`
/// names another.
pub const DEFAULT_PATH: &str = ".trueup/state.db";

/// Where a project's state store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file.
    File(PathBuf),
    /// A PostgreSQL database (the URL holds secrets: never print it).
    Url(String),
}

impl StoreLocation {
    /// The location the project file at `project` configures: `[state] url`, or
    /// `.trueup/state.db` beside it. Reads only the project file, not the rules.
    pub fn of_project(project: &Path) -> Result<StoreLocation> {
        let file = crate::read::source_file(project)?;
        let parsed: crate::project::ProjectFile = toml::from_str(&file.text)
            .map_err(|e| Error::Invalid(vec![super::parse_diagnostic(&file, &e)]))?;
        let root = project.parent().unwrap_or(Path::new(""));
        Self::from_config(root, parsed.state.url.as_deref(), |name| {
            std::env::var(name).ok()
        })
        .map_err(|message| {
            Error::Invalid(vec![crate::diagnostic::Diagnostic::in_file(
                project, message,
            )])
        })
    }

    /// The location `[state] url` (if any) gives, `${VAR}`s replaced by `env`.
    pub fn from_config(
        root: &Path,
        url: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<StoreLocation, String> {
        match url {
            None => Ok(StoreLocation::File(root.join(DEFAULT_PATH))),
            Some(url) => {
                let url = crate::project::interpolate(url, env)
                    .map_err(|e| format!("`[state] url`: {e}"))?;
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(format!(
                        "`[state] url` must be a postgres:// URL, not `{}`",
                        crate::redact::redact(&url)
                    ));
                }
                Ok(StoreLocation::Url(url))
            }
        }
    }
}

/// What messages name: the file, or the URL with its password replaced.
impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::File(path) => write!(f, "{}", path.display()),
            StoreLocation::Url(url) => f.write_str(&crate::redact::redact(url)),
        }
    }
}
