//! Checks on rules beyond what parsing catches, in two stages (as `vector validate` does):
//! [`offline`] needs nothing but the rule; [`online`] asks the rule's source whether the
//! tables and columns exist and whether hand-written queries prepare and return their keys.
//! A `plugin` rule's plugin is checked by [`plugin`]: it loads (a valid module that speaks
//! this trueup's interface) and, given the query's columns, accepts the rule's config.

use crate::compile::compile;
use crate::diagnostic::Diagnostic;
use crate::dialect::Dialect;
use crate::engine::Sources;
use crate::load::{LoadedRule, Project};
use crate::rule::{Detector, Repair};
use crate::source::{Source, TimestampColumn};
use crate::sql_text::{Fragment, detector_problem, fragment_problem};
use crate::suggest::did_you_mean;
use crate::template::Template;

/// Problems in one rule that need no database, but for its SQL ([`sql`]).
pub fn offline(loaded: &LoadedRule) -> Vec<Diagnostic> {
    let rule = &loaded.rule;
    let mut problems = Vec::new();
    let mut problem =
        |field: &[&str], message: String| problems.push(loaded.diagnostic(field, message));

    let id_ok = rule
        .id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && rule
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !id_ok {
        problem(
            &["id"],
            format!(
                "rule id `{}` must be lower-case letters, digits, `.`, `_` and `-`",
                rule.id
            ),
        );
    }
    if rule.title.trim().is_empty() {
        problem(&["title"], "the title is empty".to_owned());
    }
    for name in rule.postgres_settings.keys() {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
        if !valid {
            problem(
                &["postgres-settings"],
                format!("`{name}` is not a PostgreSQL setting name"),
            );
        }
    }
    if rule.timeout.is_some_and(|t| t.0.is_zero()) {
        problem(
            &["timeout"],
            "a timeout of zero would cancel every query".to_owned(),
        );
    }

    let mut require = |field: &str, len: usize| {
        if len == 0 {
            problem(
                &["detector", field],
                format!("`{field}` must name at least one column"),
            );
        }
    };
    match &rule.detector {
        Detector::Sql(d) => {
            require("key", d.key.len());
            if let Some(Err(message)) = d.message.as_deref().map(Template::parse) {
                problem(&["detector", "message"], message);
            }
        }
        Detector::Plugin(d) => {
            require("key", d.key.len());
            if d.plugin.trim().is_empty() {
                problem(
                    &["detector", "plugin"],
                    "`plugin` is empty: name the plugin's .wasm file".to_owned(),
                );
            }
            if d.limits.time.is_some_and(|t| t.0.is_zero()) {
                problem(
                    &["detector", "limits", "time"],
                    "a time limit of zero would stop the plugin before it starts".to_owned(),
                );
            }
            if d.limits
                .memory
                .is_some_and(|m| m.0 < crate::plugin::MIN_MEMORY)
            {
                problem(
                    &["detector", "limits", "memory"],
                    format!(
                        "a plugin needs at least {} of memory",
                        crate::size::ByteSize(crate::plugin::MIN_MEMORY)
                    ),
                );
            }
        }
        Detector::NotNull(d) => {
            require("columns", d.columns.len());
            require("key", d.key.len());
        }
        Detector::Unique(d) => require("columns", d.columns.len()),
        Detector::ForeignKey(d) => {
            require("columns", d.columns.len());
            require("key", d.key.len());
            if d.columns.len() != d.referenced_columns.len() {
                problem(
                    &["detector", "referenced-columns"],
                    format!(
                        "`columns` has {} column(s) but `referenced-columns` has {}; they pair up in order",
                        d.columns.len(),
                        d.referenced_columns.len()
                    ),
                );
            }
        }
        Detector::AcceptedValues(d) => {
            require("key", d.key.len());
            if d.values.is_empty() {
                problem(
                    &["detector", "values"],
                    "`values` is empty: every row would be a finding".to_owned(),
                );
            }
        }
        Detector::AggregateMatch(d) => {
            require("key", d.key.len());
            if d.child_key.len() != d.key.len() {
                problem(
                    &["detector", "child-key"],
                    format!(
                        "`child-key` has {} column(s) but `key` has {}; they pair up in order",
                        d.child_key.len(),
                        d.key.len()
                    ),
                );
            }
            if !(d.tolerance >= 0.0 && d.tolerance.is_finite()) {
                problem(
                    &["detector", "tolerance"],
                    "`tolerance` must be a finite number ≥ 0".to_owned(),
                );
            }
        }
        Detector::RowCount(d) => match (d.min, d.max) {
            (None, None) => problem(
                &["detector"],
                "a row-count detector needs `min`, `max` or both".to_owned(),
            ),
            (Some(min), Some(max)) if min > max => {
                problem(
                    &["detector", "max"],
                    format!("`max` ({max}) is below `min` ({min})"),
                );
            }
            _ => {}
        },
        Detector::Freshness(d) => {
            if d.max_age.0.is_zero() {
                problem(
                    &["detector", "max-age"],
                    "a `max-age` of zero makes every table stale".to_owned(),
                );
            }
        }
    }

    if let Some(repair) = &rule.repair {
        if let Some(message) = repair_problem(&rule.detector, repair) {
            problem(&["repair", "strategy"], message);
        }
        match repair {
            Repair::Update(r) if r.set.is_empty() => {
                problem(&["repair", "set"], "`set` names no column".to_owned())
            }

            Repair::Sql(r) if r.statements.is_empty() => {
                problem(
                    &["repair", "statements"],
                    "`statements` is empty".to_owned(),
                );
            }
            _ => {}
        }
    }
    problems
}

/// The SQL of one rule that trueup refuses to run, parsed in `dialect` (the dialect of the
/// rule's source; generic SQL when it is not known): a query that is not exactly one
/// read-only statement, a fragment (`where`, `expression`, `keep`, a `set` value) that is
/// not exactly one expression. `validate` reports these; `check` fails the rule with them
/// and runs the others.
pub fn sql(loaded: &LoadedRule, dialect: Option<Dialect>) -> Vec<Diagnostic> {
    let rule = &loaded.rule;
    let fragment = |field: &[&str], text: &str, kind: Fragment| {
        fragment_problem(text, kind, dialect).map(|message| {
            let name = field[1..].join(".");
            loaded.diagnostic(field, format!("`{name}`: {message}"))
        })
    };
    let mut problems = Vec::new();
    match &rule.detector {
        Detector::Sql(crate::rule::SqlDetector { query, .. })
        | Detector::Plugin(crate::rule::PluginDetector { query, .. }) => problems.extend(
            detector_problem(query, dialect)
                .map(|message| loaded.diagnostic(&["detector", "query"], message)),
        ),
        Detector::AggregateMatch(d) => problems.extend(fragment(
            &["detector", "expression"],
            &d.expression,
            Fragment::Aggregated,
        )),
        detector => problems.extend(
            detector_filter(detector)
                .and_then(|filter| fragment(&["detector", "where"], filter, Fragment::Expression)),
        ),
    }
    match &rule.repair {
        Some(Repair::Update(r)) => problems.extend(r.set.iter().filter_map(|(column, value)| {
            fragment(&["repair", "set", column], value, Fragment::Expression)
        })),
        Some(Repair::MergeDuplicates(r)) => {
            problems.extend(fragment(&["repair", "keep"], &r.keep, Fragment::OrderBy));
        }
        _ => {}
    }
    problems
}

/// Why `repair` cannot repair what `detector` finds, if it cannot.
fn repair_problem(detector: &Detector, repair: &Repair) -> Option<String> {
    let strategy = repair.strategy();
    let kind = detector.kind();
    match repair {
        Repair::Delete(_) | Repair::Quarantine(_) | Repair::Update(_) => match detector {
            Detector::Sql(_) | Detector::Plugin(_) if repair.table().is_none() => Some(format!(
                "`{strategy}` after a `{kind}` detector must name the `table` its key identifies rows of"
            )),
            Detector::Unique(_) => Some(format!(
                "`{strategy}` needs findings that are rows, but `unique` findings are groups of duplicates; use `merge-duplicates`"
            )),
            Detector::RowCount(_) | Detector::Freshness(_) => Some(format!(
                "`{strategy}` needs findings that are rows, but `{kind}` findings are whole tables"
            )),
            _ => None,
        },
        Repair::Recompute(_) => (!matches!(detector, Detector::AggregateMatch(_)))
            .then(|| format!("`recompute` repairs `aggregate-match` findings, not `{kind}` ones")),
        Repair::MergeDuplicates(_) => (!matches!(detector, Detector::Unique(_)))
            .then(|| format!("`merge-duplicates` repairs `unique` findings, not `{kind}` ones")),
        Repair::Sql(_) | Repair::Manual(_) => None,
    }
}

/// A table a detector reads, and the columns of it the detector names.
struct TableUse<'a> {
    table: &'a str,
    table_field: &'static str,
    columns: Vec<(&'a str, &'static str, Option<usize>)>,
}

fn table_uses(detector: &Detector) -> Vec<TableUse<'_>> {
    fn list<'a>(
        names: &'a [String],
        field: &'static str,
    ) -> impl Iterator<Item = (&'a str, &'static str, Option<usize>)> {
        names
            .iter()
            .enumerate()
            .map(move |(i, n)| (n.as_str(), field, Some(i)))
    }
    let one = |table: &'static str| {
        move |t| TableUse {
            table: t,
            table_field: table,
            columns: Vec::new(),
        }
    };
    match detector {
        Detector::Sql(_) | Detector::Plugin(_) => Vec::new(),
        Detector::NotNull(d) => vec![TableUse {
            columns: list(&d.columns, "columns")
                .chain(list(&d.key, "key"))
                .collect(),
            ..one("table")(&d.table)
        }],
        Detector::Unique(d) => vec![TableUse {
            columns: list(&d.columns, "columns").collect(),
            ..one("table")(&d.table)
        }],
        Detector::ForeignKey(d) => vec![
            TableUse {
                columns: list(&d.columns, "columns")
                    .chain(list(&d.key, "key"))
                    .collect(),
                ..one("table")(&d.table)
            },
            TableUse {
                columns: list(&d.referenced_columns, "referenced-columns").collect(),
                ..one("references")(&d.references)
            },
        ],
        Detector::AcceptedValues(d) => vec![TableUse {
            columns: std::iter::once((d.column.as_str(), "column", None))
                .chain(list(&d.key, "key"))
                .collect(),
            ..one("table")(&d.table)
        }],
        Detector::AggregateMatch(d) => vec![
            TableUse {
                columns: std::iter::once((d.column.as_str(), "column", None))
                    .chain(list(&d.key, "key"))
                    .collect(),
                ..one("table")(&d.table)
            },
            TableUse {
                columns: list(&d.child_key, "child-key").collect(),
                ..one("child-table")(&d.child_table)
            },
        ],
        Detector::RowCount(d) => vec![one("table")(&d.table)],
        Detector::Freshness(d) => vec![TableUse {
            columns: vec![(d.column.as_str(), "column", None)],
            ..one("table")(&d.table)
        }],
    }
}

/// The tables `detector` reads and the columns it names in each.
pub fn columns_used(detector: &Detector) -> Vec<(String, Vec<String>)> {
    table_uses(detector)
        .into_iter()
        .map(|used| {
            (
                used.table.to_owned(),
                used.columns
                    .iter()
                    .map(|(c, _, _)| (*c).to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// The column `detector` compares with the clock, if it does (`freshness`).
pub fn timestamp_column(detector: &Detector) -> Option<TimestampColumn> {
    match detector {
        Detector::Freshness(d) => Some(TimestampColumn {
            table: d.table.clone(),
            column: d.column.clone(),
            filter: d.filter.clone(),
        }),
        _ => None,
    }
}

/// How long `validate` lets a look at a source's data take (the newest value of a freshness
/// column on SQLite), when the rule sets no `timeout`.
const DATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Problems only the rule's source can reveal: missing tables and columns, a freshness
/// column that holds no timestamps, queries that do not prepare or do not return their key
/// columns. A rule whose SQL is refused ([`sql`]) is not checked here. Sources that could not be opened are reported by the caller, once each.
pub async fn online(loaded: &LoadedRule, sources: &Sources) -> Vec<Diagnostic> {
    let Some(Ok(source)) = sources.get(&loaded.source) else {
        return Vec::new();
    };
    if !loaded.refused.is_empty() {
        return Vec::new(); // its SQL is not sent anywhere, not even to be prepared
    }
    let mut problems = Vec::new();
    let detector = &loaded.rule.detector;

    for used in table_uses(detector) {
        match source.columns(used.table).await {
            Ok(None) => {
                let mut problem = loaded.diagnostic(
                    &["detector", used.table_field],
                    format!("source `{}` has no table `{}`", source.name, used.table),
                );
                if let Ok(tables) = source.tables().await
                    && let Some(hint) = did_you_mean(used.table, tables.iter().map(String::as_str))
                {
                    problem = problem.with_hint(hint);
                }
                problems.push(problem);
            }
            Ok(Some(existing)) => {
                for (column, field, index) in &used.columns {
                    if existing.iter().any(|c| c == column) {
                        continue;
                    }
                    let mut path = loaded.path.key("detector").key(field);
                    if let Some(i) = index {
                        path = path.index(*i);
                    }
                    let mut problem = loaded.file.at_path(
                        &path,
                        format!("table `{}` has no column `{column}`", used.table),
                    );
                    problem = match did_you_mean(column, existing.iter().map(String::as_str)) {
                        Some(hint) => problem.with_hint(hint),
                        None => {
                            problem.with_hint(format!("its columns are: {}", existing.join(", ")))
                        }
                    };
                    problems.push(problem);
                }
            }
            Err(err) => problems.push(loaded.diagnostic(&["detector"], crate::error::chain(&err))),
        }
    }
    if problems.is_empty()
        && let Some(column) = timestamp_column(detector)
    {
        let timeout = loaded.rule.timeout.map_or(DATA_TIMEOUT, |t| t.0);
        match source.timestamp_problem(&column, timeout).await {
            Ok(None) => {}
            Ok(Some(message)) => problems.push(loaded.diagnostic(&["detector", "column"], message)),
            Err(err) => problems.push(loaded.diagnostic(&["detector"], crate::error::chain(&err))),
        }
    }
    if problems.is_empty() {
        problems.extend(check_query(loaded, source).await);
    }
    if problems.is_empty()
        && let Detector::Plugin(_) = detector
        && let Ok(query) = compile(detector, source.dialect())
        && let Ok(columns) = source.result_columns(&query).await
    {
        problems.extend(plugin(loaded, Some(columns)).await);
    }
    problems
}

/// Least privilege: for each opened source, one warning when its connection can do more
/// than read what the rules read (see `Source::excess_privileges`), at the source's `url`
/// in `trueup.toml`. Warnings do not make a project invalid.
pub async fn privileges(
    project: &Project,
    rules: &[&LoadedRule],
    sources: &Sources,
) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for (name, source) in sources {
        let Ok(source) = source else { continue };
        let mut tables = Vec::new();
        let mut queries = Vec::new();
        for rule in rules.iter().filter(|r| &r.source == name) {
            tables.extend(
                columns_used(&rule.rule.detector)
                    .into_iter()
                    .map(|(t, _)| t),
            );
            if let Ok(mut query) = compile(&rule.rule.detector, source.dialect()) {
                query.settings.extend(
                    rule.rule
                        .postgres_settings
                        .iter()
                        .map(|(n, v)| (n.clone(), v.clone())),
                );
                queries.push(query);
            }
        }
        let Some(spec) = project.sources.get(name) else {
            continue;
        };
        let warning = match source.excess_privileges(&tables, &queries).await {
            Ok(powers) if powers.is_empty() => continue,
            Ok(powers) => project
                .file
                .at_path(
                    &spec.path,
                    format!(
                        "source `{name}` can do more than read: {}",
                        powers.join("; ")
                    ),
                )
                .with_hint(
                    "detection itself runs read-only; a role of its own for trueup that can only \
                     read (PostgreSQL) or file permissions (SQLite) also bound what a rule's SQL \
                     or anyone with trueup's credentials can do: see docs/guides/least-privilege.md",
                ),
            Err(err) => project.file.at_path(
                &spec.path,
                format!(
                    "could not check what source `{name}` may do beyond reading: {}",
                    crate::error::chain(&err)
                ),
            ),
        };
        warnings.push(warning);
    }
    warnings
}

/// For a `plugin` rule: loads its plugin and, given the query's `columns`, starts it with
/// the rule's config, which the plugin accepts or refuses. Needs no database.
pub async fn plugin(loaded: &LoadedRule, columns: Option<Vec<String>>) -> Option<Diagnostic> {
    let Detector::Plugin(d) = &loaded.rule.detector else {
        return None;
    };
    let path = crate::plugin::resolve(&loaded.file.path, &d.plugin);
    let start = columns.map(|columns| trueup_plugin_sdk::wire::Start {
        config: serde_json::Value::Object(d.config.clone()),
        columns,
        key: d.key.clone(),
    });
    let limits = crate::plugin::Limits::of_rule(&d.limits, std::time::Duration::from_secs(10));
    let checked = tokio::task::spawn_blocking(move || {
        let plugin = crate::plugin::Plugin::load(&path).map_err(|e| ("plugin", e))?;
        if let Some(start) = start {
            let mut instance = plugin.instantiate(limits).map_err(|e| ("plugin", e))?;
            // The plugin's refusal is about the config; a trap or a limit, about the plugin.
            instance
                .start(&start)
                .map_err(|e| match instance.refused() {
                    true => ("config", e),
                    false => ("plugin", e),
                })?;
        }
        Ok::<_, (&str, crate::Error)>(plugin)
    })
    .await;
    let config_field = if d.config.is_empty() {
        "plugin"
    } else {
        "config"
    };
    match checked {
        Ok(Ok(plugin)) => config_options_problem(&plugin.description.config_schema, &d.config).map(
            |(key, message)| match key {
                Some(key) => loaded.diagnostic(&["detector", "config", &key], message),
                None => loaded.diagnostic(&["detector", config_field], message),
            },
        ),
        Ok(Err((field, err))) => {
            let field = if field == "config" {
                config_field
            } else {
                field
            };
            Some(loaded.diagnostic(&["detector", field], err.to_string()))
        }
        Err(err) => Some(loaded.diagnostic(&["detector", "plugin"], err.to_string())),
    }
}

/// An option `config` names that the plugin's config `schema` does not have (with its
/// key), or one the schema requires that `config` lacks: what can be told from the schema
/// alone, without starting the plugin.
fn config_options_problem(
    schema: &serde_json::Value,
    config: &serde_json::Map<String, serde_json::Value>,
) -> Option<(Option<String>, String)> {
    let properties = schema["properties"].as_object();
    let names = || {
        properties
            .map(|p| {
                p.keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    if schema["additionalProperties"] == serde_json::Value::Bool(false) {
        let known = |key: &String| properties.is_some_and(|p| p.contains_key(key));
        if let Some(unknown) = config.keys().find(|key| !known(key)) {
            let hint = properties
                .and_then(|p| did_you_mean(unknown, p.keys().map(String::as_str)))
                .map(|hint| format!("{hint} "))
                .unwrap_or_default();
            return Some((
                Some(unknown.clone()),
                format!(
                    "the plugin has no option `{unknown}`; {hint}it takes: {}",
                    names()
                ),
            ));
        }
    }
    let required = schema["required"].as_array()?;
    let missing = required
        .iter()
        .filter_map(|r| r.as_str())
        .find(|r| !config.contains_key(*r))?;
    Some((
        None,
        format!(
            "the plugin needs the option `{missing}` in `config`; it takes: {}",
            names()
        ),
    ))
}

/// Prepares the rule's query (without running it) and checks its key and message columns.
async fn check_query(loaded: &LoadedRule, source: &Source) -> Option<Diagnostic> {
    let detector = &loaded.rule.detector;
    let query = compile(detector, source.dialect()).ok()?;
    let field = match detector {
        Detector::Sql(_) | Detector::Plugin(_) => "query",
        Detector::AggregateMatch(_) => "expression",
        _ if detector_filter(detector).is_some() => "where",
        _ => "kind",
    };
    let columns = match source.result_columns(&query).await {
        Ok(columns) => columns,
        Err(err) => {
            return Some(loaded.diagnostic(
                &["detector", field],
                format!(
                    "{} rejects the query: {}",
                    source.dialect().name(),
                    crate::error::chain(&err)
                ),
            ));
        }
    };
    let key = match detector {
        Detector::Sql(d) => Some(&d.key),
        Detector::Plugin(d) => Some(&d.key),
        _ => None,
    };
    if let Some(key) = key {
        for (i, key) in key.iter().enumerate() {
            if !columns.contains(key) {
                let path = loaded.path.key("detector").key("key").index(i);
                return Some(
                    loaded
                        .file
                        .at_path(&path, format!("the query returns no column `{key}`"))
                        .with_hint(format!("it returns: {}", columns.join(", "))),
                );
            }
        }
        if let Some(missing) = query
            .message
            .columns()
            .find(|c| !columns.iter().any(|col| col == c))
        {
            return Some(
                loaded
                    .diagnostic(
                        &["detector", "message"],
                        format!(
                            "the message uses `{{{missing}}}`, which the query does not return"
                        ),
                    )
                    .with_hint(format!("it returns: {}", columns.join(", "))),
            );
        }
    }
    None
}

fn detector_filter(detector: &Detector) -> Option<&str> {
    match detector {
        Detector::NotNull(d) => d.filter.as_deref(),
        Detector::Unique(d) => d.filter.as_deref(),
        Detector::ForeignKey(d) => d.filter.as_deref(),
        Detector::AcceptedValues(d) => d.filter.as_deref(),
        Detector::RowCount(d) => d.filter.as_deref(),
        Detector::Freshness(d) => d.filter.as_deref(),
        Detector::Sql(_) | Detector::AggregateMatch(_) | Detector::Plugin(_) => None,
    }
}
