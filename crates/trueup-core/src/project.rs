//! The project file, `trueup.toml`: named sources, where the rules are, and defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::rule::Severity;

/// The project file name looked for by every command.
pub const PROJECT_FILE: &str = "trueup.toml";

/// A trueup project: `trueup.toml`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "trueup project file")]
pub struct ProjectFile {
    /// Named database connections rules run against, e.g. `[sources.shop]`.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Rule files: files, directories (every `*.toml` below them) or glob patterns, relative
    /// to this file (default: `["rules"]`).
    #[serde(default = "default_rule_paths")]
    pub rules: Vec<String>,
    /// Settings for every rule unless the rule or the command line says otherwise.
    #[serde(default)]
    pub defaults: Defaults,
    /// Where runs are recorded.
    #[serde(default)]
    pub state: StateConfig,
}

/// Where runs are recorded (`check`) and read (`runs`, `show`, `diff`, `baseline`, `gc`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StateConfig {
    /// A PostgreSQL URL (`postgres://…`, `${VAR}` allowed) for a store that runners on
    /// several machines share; its database must exist. Default: the SQLite file
    /// `.trueup/state.db` beside this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

fn default_rule_paths() -> Vec<String> {
    vec!["rules".to_owned()]
}

/// One database connection.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceConfig {
    /// Connection URL: `sqlite://path/to/shop.db` (relative to the project file) or
    /// `postgres://user@host:5432/db?sslmode=require`. `${VAR}` is replaced by the environment
    /// variable `VAR`: keep passwords out of the file. Passwords never appear in output.
    pub url: String,
    /// Most connections opened to this source at once (default: `defaults.concurrency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_connections: Option<u32>,
    /// How long connecting to the server may take before the source counts as unreachable
    /// (default: `10s`). PostgreSQL only: a SQLite source opens a local file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<HumanDuration>,
}

/// How long connecting to a source may take when its `connect-timeout` does not say.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Defaults for every rule.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Defaults {
    /// How long one detector may run (default: `5m`).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// How many queries run at once, each on its own connection (default: 4; about the
    /// database server's cores is a good value). Each key range of a split rule counts.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: u32,
    /// How many key ranges a heavy rule (an `aggregate-match` on a single-column integer key)
    /// is cut into, each run on its own connection at once (default: 2; 1 turns it off).
    #[serde(default = "default_split")]
    #[schemars(range(min = 1, max = 64))]
    pub split: u32,
    /// `check` exits with 1 when a finding is at least this severe (default: `low`, i.e. any).
    #[serde(default = "default_fail_on")]
    pub fail_on: Severity,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout: default_timeout(),
            concurrency: default_concurrency(),
            split: default_split(),
            fail_on: default_fail_on(),
        }
    }
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

fn default_concurrency() -> u32 {
    4
}

fn default_split() -> u32 {
    2
}

fn default_fail_on() -> Severity {
    Severity::Low
}

/// Why a URL's `${NAME}` references could not be replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    /// The variable is not set.
    Unset(String),
    /// A `${` without its `}`.
    Unclosed,
    /// `${}`: no name.
    Empty,
    /// A `${` inside a name, `${A${B}}`: names are not built from other variables.
    Nested,
}

impl std::fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpolateError::Unset(var) => write!(f, "environment variable `{var}` is not set"),
            InterpolateError::Unclosed => f.write_str("`${` without its closing `}`"),
            InterpolateError::Empty => f.write_str("`${}` names no environment variable"),
            InterpolateError::Nested => f.write_str(
                "`${` inside `${...}`: a variable's name cannot contain another variable",
            ),
        }
    }
}

impl InterpolateError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            InterpolateError::Unset(var) => {
                format!("set it before running trueup: export {var}=...")
            }
            InterpolateError::Unclosed | InterpolateError::Empty => "write ${NAME}".to_owned(),
            InterpolateError::Nested => {
                "write each variable on its own, e.g. ${USER}:${PASSWORD}".to_owned()
            }
        }
    }
}

/// Replaces each `${NAME}` in `text` by the environment variable `NAME`.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(InterpolateError::Unclosed)?;
        let name = &after[..end];
        if name.contains("${") {
            return Err(InterpolateError::Nested);
        }
        if name.is_empty() {
            return Err(InterpolateError::Empty);
        }
        out.push_str(&lookup(name).ok_or_else(|| InterpolateError::Unset(name.to_owned()))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A commented starter `trueup.toml`, written by `trueup init`.
pub const STARTER: &str = r#"# trueup project file; every field is described in trueup's docs/reference/project.md.
# `trueup schema project` prints its JSON Schema for editors.

# Rule files: files, directories or globs, relative to this file.
rules = ["rules"]

# A source is a named database connection. Keep passwords out of this file:
# `${VAR}` is replaced by the environment variable VAR.
[sources.main]
url = "sqlite://data.db"
# url = "postgres://trueup@db.internal:5432/shop?sslmode=require&password=${SHOP_DB_PASSWORD}"

[defaults]
timeout = "5m"       # how long one detector may run
concurrency = 4      # how many queries run at once (about the database's cores)
split = 2            # heavy aggregate checks run as this many key ranges at once
fail-on = "low"      # `check` exits 1 on findings at least this severe
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "DB_PASS").then(|| "s3cret".to_owned())
    }

    #[test]
    fn interpolates_set_variables() {
        assert_eq!(
            interpolate("postgres://u:${DB_PASS}@h/db", env).unwrap(),
            "postgres://u:s3cret@h/db"
        );
        assert_eq!(
            interpolate("sqlite://shop.db", env).unwrap(),
            "sqlite://shop.db"
        );
    }

    #[test]
    fn names_the_unset_variable() {
        assert_eq!(
            interpolate("${SHOP_DB_URL}", env),
            Err(InterpolateError::Unset("SHOP_DB_URL".into()))
        );
        assert_eq!(
            interpolate("postgres://${SHOP_DB", env),
            Err(InterpolateError::Unclosed)
        );
    }

    #[test]
    fn refuses_empty_and_nested_names() {
        assert_eq!(
            interpolate("sqlite://${}", env),
            Err(InterpolateError::Empty)
        );
        assert_eq!(
            interpolate("sqlite://${A${DB_PASS}}", env),
            Err(InterpolateError::Nested)
        );
    }

    #[test]
    fn starter_project_parses() {
        let project: ProjectFile = toml::from_str(STARTER).unwrap();
        assert_eq!(project.rules, ["rules"]);
        assert!(project.sources.contains_key("main"));
    }
}
