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
    /// A PostgreSQL database, its URL as written until [`StoreLocation::resolve`] (the URL
    /// holds secrets: never print it).
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
        Self::from_config(root, parsed.state.url.as_deref()).map_err(|message| {
            Error::Invalid(vec![crate::diagnostic::Diagnostic::in_file(
                project, message,
            )])
        })
    }

    /// The location `[state] url` (if any) gives, its `${VAR}`s kept: they are replaced
    /// when the store is opened ([`StoreLocation::resolve`]).
    pub fn from_config(root: &Path, url: Option<&str>) -> Result<StoreLocation, String> {
        match url {
            None => Ok(StoreLocation::File(root.join(DEFAULT_PATH))),
            Some(url) => {
                crate::project::interpolate(url, |_| Some(String::new()))
                    .map_err(|e| format!("`[state] url`: {e}"))?;
                // A variable may give the scheme: then it is checked when opening.
                if !url.trim_start().starts_with("${") {
                    postgres_only(url).map_err(|e| format!("`[state] url` {e}"))?;
                }
                Ok(StoreLocation::Url(url.to_owned()))
            }
        }
    }

    /// This location with its URL's `${VAR}`s replaced by the environment: what opening it
    /// connects to.
    pub fn resolve(&self) -> Result<StoreLocation> {
        match self {
            StoreLocation::File(_) => Ok(self.clone()),
            StoreLocation::Url(url) => {
                let unresolved = |message| Error::Store {
                    store: "`[state] url`".to_owned(),
                    message,
                };
                let url = crate::project::interpolate(url, |name| std::env::var(name).ok())
                    .map_err(|e| unresolved(format!("{e}; {}", e.hint())))?;
                postgres_only(&url).map_err(unresolved)?;
                Ok(StoreLocation::Url(url))
            }
        }
    }
}

/// A state store URL must be a PostgreSQL one.
fn postgres_only(url: &str) -> Result<(), String> {
    match url.starts_with("postgres://") || url.starts_with("postgresql://") {
        true => Ok(()),
        false => Err(format!(
            "must be a postgres:// URL, not `{}`",
            crate::redact::redact(url)
        )),
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
