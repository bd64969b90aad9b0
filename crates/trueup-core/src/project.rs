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
    /// Audits `trueup serve` runs on a schedule, e.g. `[[schedule]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<ScheduleConfig>,
    /// How `trueup serve` runs: its address, logs and leases.
    #[serde(default)]
    pub serve: ServeConfig,
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
    /// Connection URL: `sqlite://path/to/shop.db` (relative to the project file),
    /// `postgres://user@host:5432/db?sslmode=require`, `mysql://user@host/db`, or a
    /// Prometheus API for `promql` rules, `prometheus://host:9090` (`prometheus+https://`). `${VAR}` is replaced by the environment
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

/// One scheduled audit: which rules `trueup serve` runs, when, and whom it tells.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScheduleConfig {
    /// The audit's name, unique in the project: letters, digits, `.`, `_` and `-`. Logs,
    /// metrics, `/runs` and the lease in the state store name it.
    pub name: String,
    /// When it runs: a cron expression of 5 fields (minute hour day-of-month month
    /// day-of-week), or 6 with seconds first; `@hourly`, `@daily` and the like too.
    pub cron: CronExpr,
    /// The time zone the cron expression is read in, e.g. `Europe/Berlin` (default: `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<TimeZoneName>,
    /// Rule ids to run (`orders.*` matches every id starting with `orders.`); with `tags`
    /// and `sources`, as `check --rule/--tag/--source` select. All empty: every rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Tags: rules with any of them run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Sources: rules of these sources run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Rules whose findings the audit repairs right after it found them (plan, then apply,
    /// journaled like `trueup apply`): only rules named here, each with a `[rule.repair]`,
    /// and only when the run found something. Default: none; an audit only reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repair: Vec<String>,
    /// Where to send a JSON message when a run finds new findings or a rule fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookConfig>,
}

/// A webhook: an HTTP(S) endpoint that takes a JSON POST, e.g. a Slack incoming webhook.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebhookConfig {
    /// `https://…` or `http://…`; `${VAR}` is replaced by the environment variable `VAR`
    /// (a Slack webhook URL is a secret: keep it out of the file). Never printed.
    pub url: String,
    /// How long one attempt may take (default: `10s`).
    #[serde(default = "default_webhook_timeout")]
    pub timeout: HumanDuration,
    /// How many times a message is tried before it is given up, waiting 1s, 2s, 4s, …
    /// (at most 1m) between tries (default: 5).
    #[serde(default = "default_webhook_attempts")]
    #[schemars(range(min = 1, max = 20))]
    pub attempts: u32,
}

fn default_webhook_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_webhook_attempts() -> u32 {
    5
}

/// `[serve]`: how `trueup serve` runs.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeConfig {
    /// The address `/metrics`, `/healthz` and `/runs` are served on (default:
    /// `127.0.0.1:9464`; `0.0.0.0:9464` for every interface). `serve --listen` overrides it.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Logs on stderr: `text` (one line an event) or `json` (JSON Lines). `serve
    /// --log-format` overrides it.
    #[serde(default)]
    pub log_format: LogFormat,
    /// How long a replica's claim on a running audit lasts without being renewed (default:
    /// `30s`; renewed every third of it). When a replica dies mid-run, another one takes
    /// the audit over this long after the last renewal.
    #[serde(default = "default_lease_expiry")]
    pub lease_expiry: HumanDuration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: default_listen(),
            log_format: LogFormat::default(),
            lease_expiry: default_lease_expiry(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9464".to_owned()
}

fn default_lease_expiry() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// How `trueup serve` writes its logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One line an event: time, level, message, `key=value` fields.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// A cron expression, parsed when the file is read (so that a bad one is an error at its
/// place in the file).
#[derive(Debug, Clone)]
pub struct CronExpr {
    pub text: String,
    pub cron: croner::Cron,
}

impl std::str::FromStr for CronExpr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build();
        match parser.parse(text) {
            Ok(cron) => Ok(CronExpr {
                text: text.to_owned(),
                cron,
            }),
            Err(err) => Err(format!(
                "`{text}` is not a cron expression: {}; write 5 fields (minute hour \
                 day-of-month month day-of-week, e.g. `0 3 * * *`) or 6 with seconds first",
                err.to_string().trim_end_matches('.')
            )),
        }
    }
}

impl<'de> Deserialize<'de> for CronExpr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for CronExpr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl JsonSchema for CronExpr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CronExpression".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first.",
            "examples": ["0 3 * * *", "*/15 * * * *", "@hourly"]
        })
    }
}

/// A time zone of the IANA database (`Europe/Berlin`, `UTC`), checked when the file is read.
#[derive(Debug, Clone)]
pub struct TimeZoneName {
    pub name: String,
    pub zone: jiff::tz::TimeZone,
}

impl std::str::FromStr for TimeZoneName {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match jiff::tz::TimeZone::get(name) {
            Ok(zone) => Ok(TimeZoneName {
                name: name.to_owned(),
                zone,
            }),
            Err(_) => Err(format!(
                "`{name}` is not a time zone; write an IANA name such as `UTC`, \
                 `Europe/Berlin` or `America/New_York`"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl JsonSchema for TimeZoneName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TimeZone".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An IANA time zone name.",
            "examples": ["UTC", "Europe/Berlin", "America/New_York"]
        })
    }
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
    fn schedules_parse_with_their_cron_and_time_zone() {
        let project: ProjectFile = toml::from_str(
            "[[schedule]]\nname = \"nightly\"\ncron = \"0 3 * * *\"\n\
             time-zone = \"Europe/Berlin\"\ntags = [\"critical\"]\n\
             [schedule.webhook]\nurl = \"${HOOK}\"\n\
             [serve]\nlisten = \"0.0.0.0:9000\"\nlog-format = \"json\"\n",
        )
        .unwrap();
        let schedule = &project.schedule[0];
        assert_eq!(schedule.cron.text, "0 3 * * *");
        assert_eq!(schedule.time_zone.as_ref().unwrap().name, "Europe/Berlin");
        assert_eq!(schedule.webhook.as_ref().unwrap().attempts, 5);
        assert_eq!(project.serve.log_format, LogFormat::Json);
        assert_eq!(project.serve.lease_expiry.0, Duration::from_secs(30));
    }

    #[test]
    fn bad_cron_expressions_and_time_zones_are_refused() {
        assert!("0 3 * *".parse::<CronExpr>().is_err());
        assert!("61 * * * *".parse::<CronExpr>().is_err());
        assert!("* * * * * *".parse::<CronExpr>().is_ok());
        let zone = "Mars/Olympus".parse::<TimeZoneName>().unwrap_err();
        assert!(zone.contains("not a time zone"), "{zone}");
    }

    #[test]
    fn starter_project_parses() {
        let project: ProjectFile = toml::from_str(STARTER).unwrap();
        assert_eq!(project.rules, ["rules"]);
        assert!(project.sources.contains_key("main"));
    }
}
