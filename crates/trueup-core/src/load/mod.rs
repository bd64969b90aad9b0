//! Loading a project: `trueup.toml` and every rule file it points at (the environment
//! variables its URLs name are read only when connecting). Every problem found is
//! collected, so a user sees all of them at once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod schedules;
mod state;

pub use state::{DEFAULT_PATH, StoreLocation};

use crate::diagnostic::{Diagnostic, FieldPath, SourceFile};
use crate::project::{Defaults, ProjectFile, ScheduleConfig, ServeConfig, interpolate};
pub use crate::rule::LoadedRule;
use crate::rule::RuleFile;
use crate::suggest::did_you_mean;
use crate::{Error, Result};

/// A project whose files parsed and passed the checks that need no database.
#[derive(Debug)]
pub struct Project {
    pub file: Arc<SourceFile>,
    /// The folder of `trueup.toml`; relative paths in it start here.
    pub root: PathBuf,
    pub sources: BTreeMap<String, SourceSpec>,
    pub defaults: Defaults,
    pub rules: Vec<LoadedRule>,
    /// Where runs are recorded.
    pub state: StoreLocation,
    /// The audits `trueup serve` runs (`[[schedule]]`), in file order.
    pub schedules: Vec<ScheduleConfig>,
    /// `[serve]`.
    pub serve: ServeConfig,
}

/// A source as configured. Its URL's `${VAR}`s are replaced only when connecting
/// ([`SourceSpec::resolve`]), so that commands that never connect need no secrets.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub name: String,
    /// The URL as written, `${VAR}`s kept; it may still hold a literal password: never print
    /// this, print [`crate::redact::redact`] of it.
    pub url: String,
    pub max_connections: Option<u32>,
    /// How long connecting may take (`connect-timeout`).
    pub connect_timeout: std::time::Duration,
    /// Where the URL is written in `trueup.toml`.
    pub path: FieldPath,
    /// The project file, to point at the URL when its variables cannot be replaced (none
    /// for a source built in code).
    pub file: Option<Arc<SourceFile>>,
}

impl SourceSpec {
    /// The URL to connect to, its `${VAR}`s replaced by the environment. The URL holds
    /// secrets: never print it.
    pub fn resolve(&self) -> Result<String> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// [`SourceSpec::resolve`] with the environment given as a function.
    pub fn resolve_with(&self, env: impl Fn(&str) -> Option<String>) -> Result<String> {
        interpolate(&self.url, env).map_err(|err| {
            let diagnostic = match &self.file {
                Some(file) => file.at_path(&self.path, err.to_string()),
                None => Diagnostic::new(format!("source `{}`: {err}", self.name)),
            };
            Error::Unresolved(Box::new(diagnostic.with_hint(err.hint())))
        })
    }

    /// The dialect the source's URL speaks, known before connecting: from the URL as
    /// written, or, when a variable gives its scheme, from the URL resolved. A source that
    /// is not SQL (Prometheus) has none: an error that says so.
    pub fn dialect(&self) -> Result<crate::dialect::Dialect> {
        let kind = self.kind()?;
        kind.dialect().ok_or_else(|| {
            Error::Other(format!(
                "source `{}` is a {} source, not a SQL database",
                self.name,
                kind.name()
            ))
        })
    }

    /// What the source is (a SQL dialect, Prometheus), by its URL's scheme: from the URL as
    /// written, or, when a variable gives its scheme, from the URL resolved.
    pub fn kind(&self) -> Result<crate::dialect::SourceKind> {
        use crate::dialect::SourceKind;
        if let Some(kind) = SourceKind::of_url(&self.url) {
            return Ok(kind);
        }
        let url = match self.url.trim_start().starts_with("${") {
            true => self.resolve()?,
            false => self.url.clone(),
        };
        SourceKind::of_url(&url).ok_or_else(|| Error::UnsupportedUrl {
            source_name: self.name.clone(),
            url: crate::redact::redact(&url),
        })
    }
}

impl Project {
    /// Reads `trueup.toml` at `path` and every rule file it names. Needs no environment
    /// variable: the `${VAR}`s of URLs are replaced when connecting.
    pub fn load(path: &Path) -> Result<Project> {
        let file = Arc::new(crate::read::source_file(path)?);
        let parsed: ProjectFile = toml::from_str(&file.text)
            .map_err(|err| Error::Invalid(vec![parse_diagnostic(&file, &err)]))?;
        let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut problems = Vec::new();

        let mut sources = BTreeMap::new();
        for (name, config) in &parsed.sources {
            let path = FieldPath::default().key("sources").key(name).key("url");
            let spec = SourceSpec {
                name: name.clone(),
                url: config.url.clone(),
                max_connections: config.max_connections,
                connect_timeout: config
                    .connect_timeout
                    .map_or(crate::project::DEFAULT_CONNECT_TIMEOUT, |t| t.0),
                path,
                file: Some(file.clone()),
            };
            // A malformed `${` is wrong whatever the environment; an unset variable only
            // for the commands that connect ([`Project::resolve_sources`]).
            if let Err(Error::Unresolved(problem)) = spec.resolve_with(|_| Some(String::new())) {
                problems.push(*problem);
                continue;
            }
            if let Err(Error::UnsupportedUrl { url, .. }) = spec.kind() {
                problems.push(
                    file.at_path(&spec.path, format!("unsupported URL `{url}`"))
                    .with_hint(
                        "trueup reads sqlite://path/to/file.db, postgres://user@host/db, mysql://user@host/db, prometheus://host:9090 and redis://host:6379/0 sources",
                    ),
                );
            }
            if config.max_connections == Some(0) {
                let at = FieldPath::default()
                    .key("sources")
                    .key(name)
                    .key("max-connections");
                problems.push(file.at_path(&at, "`max-connections` must be at least 1"));
            }
            if spec.connect_timeout.is_zero() {
                let at = FieldPath::default()
                    .key("sources")
                    .key(name)
                    .key("connect-timeout");
                problems.push(
                    file.at_path(&at, "`connect-timeout` must be more than 0")
                        .with_hint("write e.g. `10s`"),
                );
            }
            sources.insert(name.clone(), spec);
        }
        let limits = [
            ("concurrency", parsed.defaults.concurrency, 256),
            ("split", parsed.defaults.split, 64),
        ];
        for (field, value, max) in limits {
            if !(1..=max).contains(&value) {
                let at = FieldPath::default().key("defaults").key(field);
                problems.push(file.at_path(&at, format!("`{field}` must be from 1 to {max}")));
            }
        }

        let rule_files = crate::rule_files::find(&file, &root, &parsed.rules, &mut problems);
        let mut rules = Vec::new();
        for rule_file in rule_files {
            match crate::read::source_file(&rule_file) {
                Ok(source_file) => parse_rules(Arc::new(source_file), &mut rules, &mut problems),
                Err(Error::Invalid(found)) => problems.extend(found),
                Err(err) => problems.push(Diagnostic::new(crate::error::chain(&err))),
            }
        }
        resolve_sources(&mut rules, &parsed, &mut problems);
        reject_duplicate_ids(&rules, &mut problems);
        schedules::check(&file, &parsed, &rules, &mut problems);
        // Refused SQL fails only its rule; it is reported with the other problems (in rule
        // order) when there are any, so that a user sees everything at once.
        let mut blocking = !problems.is_empty();
        for rule in &mut rules {
            let offline = crate::lint::offline(rule);
            blocking |= !offline.is_empty();
            problems.extend(offline);
            let dialect_of = |name: &str| sources.get(name).and_then(|spec| spec.dialect().ok());
            let right = rule.rule.detector.other_source().and_then(dialect_of);
            let kind_of = |name: &str| sources.get(name).and_then(|spec| spec.kind().ok());
            let mismatch = crate::lint::source_kinds(rule, kind_of);
            blocking |= !mismatch.is_empty();
            problems.extend(mismatch);
            rule.refused = crate::lint::sql(rule, dialect_of(&rule.source), right);
            problems.extend(rule.refused.iter().cloned());
        }

        let state = match StoreLocation::from_config(&root, parsed.state.url.as_deref()) {
            Ok(state) => state,
            Err(message) => {
                blocking = true;
                problems.push(file.at_path(&FieldPath::default().key("state").key("url"), message));
                StoreLocation::File(root.join(DEFAULT_PATH))
            }
        };
        if !blocking {
            Ok(Project {
                file,
                root,
                sources,
                defaults: parsed.defaults,
                rules,
                state,
                schedules: parsed.schedule,
                serve: parsed.serve,
            })
        } else {
            Err(Error::Invalid(problems))
        }
    }
}

impl Project {
    /// The URL of schedule `index`'s webhook, its `${VAR}`s replaced by the environment;
    /// `None` when the schedule has none. The URL is a secret: never print it.
    pub fn webhook_url(&self, index: usize) -> Result<Option<String>> {
        let Some(webhook) = self.schedules.get(index).and_then(|s| s.webhook.as_ref()) else {
            return Ok(None);
        };
        interpolate(&webhook.url, |name| std::env::var(name).ok())
            .map(Some)
            .map_err(|err| {
                let at = FieldPath::default()
                    .key("schedule")
                    .index(index)
                    .key("webhook")
                    .key("url");
                Error::Invalid(vec![
                    self.file
                        .at_path(&at, err.to_string())
                        .with_hint(err.hint()),
                ])
            })
    }

    /// Checks that the URL of every source `rules` use can be resolved, before anything
    /// connects: all unset variables at once, each at its URL in `trueup.toml`.
    pub fn resolve_sources(&self, rules: &[&LoadedRule]) -> Result<()> {
        let mut names: Vec<&str> = rules.iter().map(|r| r.source.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let problems: Vec<Diagnostic> = names
            .iter()
            .filter_map(|name| match self.sources.get(*name)?.resolve() {
                Err(Error::Unresolved(problem)) => Some(*problem),
                _ => None,
            })
            .collect();
        match problems.is_empty() {
            true => Ok(()),
            false => Err(Error::Invalid(problems)),
        }
    }
}

/// Turns a `toml` parse or type error into a diagnostic at its span. The message may quote
/// a value of the file: the diagnostic hides the file's secrets in it and cuts it.
pub fn parse_diagnostic(file: &SourceFile, err: &toml::de::Error) -> Diagnostic {
    let message = err.message().trim_end().to_owned();
    match err.span() {
        Some(span) => {
            // Inside tagged tables (a detector, a repair) serde reports the table, not the
            // field: point at the unknown key itself, or at the value the message quotes,
            // when it can be found.
            let span = unknown_field(&message)
                .and_then(|name| key_span_after(&file.text, name, span.start))
                .or_else(|| {
                    quoted_value(&message)
                        .and_then(|value| value_span_after(&file.text, value, span.start))
                })
                .unwrap_or(span);
            let problem = file.at_span(span, message.clone());
            match unknown_field(&message)
                .and_then(|name| did_you_mean(name, expected_fields(&message)))
            {
                Some(hint) => problem.with_hint(hint),
                None => problem,
            }
        }
        None => file.at_file(message),
    }
}

/// The field name of an "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    message.strip_prefix("unknown field `")?.split('`').next()
}

/// The fields an "unknown field `x`, expected one of `a`, `b`" (or "expected `a` or `b`")
/// message lists.
fn expected_fields(message: &str) -> impl Iterator<Item = &str> {
    let listed = message
        .split_once(", expected ")
        .map_or("", |(_, rest)| rest);
    listed.split('`').skip(1).step_by(2)
}

/// The value an "invalid type: string \"x\", ..." or "`x` is not a ..." message quotes.
/// "missing field `x`" quotes a key that is not there, not a value: the table is the place.
fn quoted_value(message: &str) -> Option<&str> {
    if message.starts_with("missing field ") || message.starts_with("duplicate field ") {
        return None;
    }
    if let Some(rest) = message.split_once("string \"").map(|(_, rest)| rest) {
        return rest.split('"').next();
    }
    let rest = message.strip_prefix("invalid type: ").unwrap_or(message);
    let rest = rest.split_once('`')?.1;
    rest.split('`').next()
}

/// The span of the first value written as `wanted` (quotes aside) at or after `start`.
fn value_span_after(text: &str, wanted: &str, start: usize) -> Option<std::ops::Range<usize>> {
    fn walk(
        value: &toml::de::DeValue<'_>,
        span: std::ops::Range<usize>,
        text: &str,
        wanted: &str,
        start: usize,
        best: &mut Option<std::ops::Range<usize>>,
    ) {
        match value {
            toml::de::DeValue::Table(table) => {
                for (_, inner) in table.iter() {
                    walk(inner.get_ref(), inner.span(), text, wanted, start, best);
                }
            }
            toml::de::DeValue::Array(items) => {
                for item in items.iter() {
                    walk(item.get_ref(), item.span(), text, wanted, start, best);
                }
            }
            _ => {
                let written = text.get(span.clone()).unwrap_or_default();
                if written.trim_matches(['"', '\'']) == wanted
                    && span.start >= start
                    && best.as_ref().is_none_or(|b| span.start < b.start)
                {
                    *best = Some(span);
                }
            }
        }
    }
    let document = toml::de::DeTable::parse(text).ok()?;
    let mut best = None;
    for (_, value) in document.get_ref().iter() {
        walk(
            value.get_ref(),
            value.span(),
            text,
            wanted,
            start,
            &mut best,
        );
    }
    best
}

/// The span of the first key called `name` that starts at or after `start`.
fn key_span_after(text: &str, name: &str, start: usize) -> Option<std::ops::Range<usize>> {
    fn walk(
        table: &toml::de::DeTable<'_>,
        name: &str,
        start: usize,
        best: &mut Option<std::ops::Range<usize>>,
    ) {
        for (key, value) in table.iter() {
            let span = key.span();
            if key.get_ref() == name
                && span.start >= start
                && best.as_ref().is_none_or(|b| span.start < b.start)
            {
                *best = Some(span);
            }
            match value.get_ref() {
                toml::de::DeValue::Table(inner) => walk(inner, name, start, best),
                toml::de::DeValue::Array(items) => {
                    for item in items.iter() {
                        if let toml::de::DeValue::Table(inner) = item.get_ref() {
                            walk(inner, name, start, best);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let document = toml::de::DeTable::parse(text).ok()?;
    let mut best = None;
    walk(document.get_ref(), name, start, &mut best);
    best
}

fn parse_rules(file: Arc<SourceFile>, rules: &mut Vec<LoadedRule>, problems: &mut Vec<Diagnostic>) {
    match toml::from_str::<RuleFile>(&file.text) {
        Ok(parsed) if parsed.rules.is_empty() => {
            problems.push(Diagnostic::in_file(&file.path, "the file defines no rules"));
        }
        Ok(parsed) => {
            for (index, rule) in parsed.rules.into_iter().enumerate() {
                let path = FieldPath::default().key("rule").index(index);
                rules.push(LoadedRule {
                    rule,
                    file: file.clone(),
                    path,
                    source: String::new(),
                    refused: Vec::new(),
                });
            }
        }
        Err(err) => problems.push(parse_diagnostic(&file, &err)),
    }
}

/// Gives each rule its source: the one it names, or the project's only one.
fn resolve_sources(
    rules: &mut [LoadedRule],
    project: &ProjectFile,
    problems: &mut Vec<Diagnostic>,
) {
    let names: Vec<&String> = project.sources.keys().collect();
    let unknown = |loaded: &LoadedRule, field: &[&str], name: &str| {
        let problem = loaded.diagnostic(field, format!("unknown source `{name}`"));
        match did_you_mean(name, names.iter().map(|n| n.as_str())) {
            Some(hint) => problem.with_hint(hint),
            None => problem.with_hint("sources are declared in trueup.toml as [sources.NAME]"),
        }
    };
    for loaded in rules.iter_mut() {
        if let crate::rule::Detector::Reconcile(d) = &loaded.rule.detector {
            if let Some(right) = d.right.source.as_deref()
                && !project.sources.contains_key(right)
            {
                problems.push(unknown(loaded, &["detector", "right", "source"], right));
            }
            match (&loaded.rule.source, &d.left.source) {
                (None, Some(left)) => loaded.rule.source = Some(left.clone()),
                (Some(rule), Some(left)) if rule != left => problems.push(loaded.diagnostic(
                    &["detector", "left", "source"],
                    format!(
                        "the left side is the rule's source, `{rule}`, not `{left}`: leave \
                         `left.source` out, or make it the rule's `source`"
                    ),
                )),
                _ => {}
            }
        }
        // A rule that names no source takes the only one its detector can read: adding a
        // Prometheus source to a project leaves its SQL rules' default as it was.
        if let crate::rule::Detector::CacheConsistency(d) = &loaded.rule.detector
            && !project.sources.contains_key(&d.rows.source)
        {
            problems.push(unknown(
                loaded,
                &["detector", "rows", "source"],
                &d.rows.source,
            ));
        }
        use crate::dialect::SourceKind;
        let reads = match loaded.rule.detector {
            crate::rule::Detector::Promql(_) => Some(SourceKind::Prometheus),
            crate::rule::Detector::CacheConsistency(_) => Some(SourceKind::Redis),
            _ => None,
        };
        let fitting: Vec<&String> = names
            .iter()
            .copied()
            .filter(|name| {
                let kind = SourceKind::of_url(&project.sources[*name].url);
                kind.is_none_or(|kind| match reads {
                    Some(reads) => kind == reads,
                    None => kind.dialect().is_some(),
                })
            })
            .collect();
        // None fits: the sources there are, so that a lone source of the other kind is
        // reported as that (`lint::source_kinds`), not as no source at all.
        let fitting = if fitting.is_empty() {
            names.clone()
        } else {
            fitting
        };
        match (&loaded.rule.source, fitting.as_slice()) {
            (Some(name), _) if project.sources.contains_key(name) => loaded.source = name.clone(),
            (Some(name), _) => problems.push(unknown(loaded, &["source"], name)),
            (None, [only]) => loaded.source = (*only).clone(),
            (None, []) => problems.push(
                loaded
                    .diagnostic(&[], "the rule has no source and trueup.toml declares none")
                    .with_hint(
                        "declare one in trueup.toml: [sources.NAME] url = \"sqlite://shop.db\"",
                    ),
            ),
            (None, many) => problems.push(
                loaded
                    .diagnostic(
                        &[],
                        format!(
                            "the rule has no `source` and the project has {}",
                            many.len()
                        ),
                    )
                    .with_hint(format!(
                        "add `source = \"...\"`, one of: {}",
                        many.iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
            ),
        }
    }
}

fn reject_duplicate_ids(rules: &[LoadedRule], problems: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, &LoadedRule> = HashMap::new();
    for loaded in rules {
        if let Some(first) = seen.get(loaded.rule.id.as_str()) {
            let first_at = first.diagnostic(&["id"], "");
            let where_first = first_at
                .location
                .map(|l| format!("{}:{}:{}", l.file.display(), l.line, l.column))
                .unwrap_or_default();
            problems.push(
                loaded
                    .diagnostic(&["id"], format!("duplicate rule id `{}`", loaded.rule.id))
                    .with_hint(format!("first defined at {where_first}")),
            );
        } else {
            seen.insert(&loaded.rule.id, loaded);
        }
    }
}
