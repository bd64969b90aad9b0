//! Checks on rules beyond what parsing catches, in two stages (as `vector validate` does):
//! [`offline`] needs nothing but the rule; [`online`] asks the rule's source whether the
//! tables and columns exist and whether hand-written queries prepare and return their keys.
//! A `plugin` rule's plugin is checked by [`plugin`]: it loads (a valid module that speaks
//! this trueup's interface) and, given the query's columns, accepts the rule's config.

pub use crate::lint::{offline, sql};

use crate::compile::compile;
use crate::diagnostic::Diagnostic;
use crate::finding::MissingColumn;
use crate::load::{LoadedRule, Project};
use crate::rule::Detector;
use crate::source::Sources;
use crate::source::{SchemaProblem, Source};
use crate::suggest::did_you_mean;

/// How long `validate` lets a look at a source's data take (the newest value of a freshness
/// column on SQLite), when the rule sets no `timeout`.
const DATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Warnings for sources whose URL holds a password written out, not a `${VAR}`:
/// `trueup.toml` is usually committed, and the password with it.
pub fn literal_passwords(project: &Project) -> Vec<Diagnostic> {
    let variable = |part: &str| {
        part.strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .is_some_and(|name| !name.is_empty() && !name.contains(['$', '{', '}']))
    };
    project
        .sources
        .values()
        .filter(|spec| crate::redact::secret_parts(&spec.url).any(|part| !variable(part)))
        .map(|spec| {
            let var = format!("{}_DB_PASSWORD", spec.name.to_uppercase().replace('-', "_"));
            project
                .file
                .at_path(
                    &spec.path,
                    format!(
                        "source `{}`: its URL holds a password written out",
                        spec.name
                    ),
                )
                .with_hint(format!(
                    "keep it out of trueup.toml (which is usually committed): write `${{{var}}}` \
                     in its place and set {var} in the environment"
                ))
        })
        .collect()
}

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
    if let Detector::Promql(_) = detector {
        // Its query was parsed at load time; the source answered when it was opened.
        // Nothing else is asked without running the query.
        return problems;
    }
    if let Detector::CacheConsistency(d) = detector {
        // The Redis source answered PING when it was opened; the rows are asked about on
        // their own source.
        if let Some(Ok(rows)) = sources.get(&d.rows.source) {
            problems.extend(cache_rows(loaded, d, rows).await);
        }
        return problems;
    }

    for used in detector.table_uses() {
        let columns: Vec<&str> = used.columns.iter().map(|(column, _, _)| *column).collect();
        let found = match source.schema_problems(used.table, &columns).await {
            Ok(found) => found,
            Err(err) => {
                problems.push(loaded.diagnostic(&["detector"], crate::error::chain(&err)));
                continue;
            }
        };
        for problem in found {
            // A field of a nested table is written with dots (`left.table`).
            let field_path = |field: &str| {
                field
                    .split('.')
                    .fold(loaded.path.key("detector"), |path, part| path.key(part))
            };
            let path = match &problem {
                SchemaProblem::NoTable { .. } => field_path(used.table_field),
                SchemaProblem::NoColumn { at, .. } => {
                    let (_, field, index) = used.columns[*at];
                    let path = field_path(field);
                    index.map_or(path.clone(), |i| path.index(i))
                }
            };
            let mut diagnostic = loaded.file.at_path(&path, problem.to_string());
            if let Some(hint) = problem.hint() {
                diagnostic = diagnostic.with_hint(hint);
            }
            problems.push(diagnostic);
        }
    }
    if problems.is_empty()
        && let Some(column) = detector.timestamp_column()
    {
        let timeout = loaded.rule.timeout.map_or(DATA_TIMEOUT, |t| t.0);
        match source.timestamp_problem(&column, timeout).await {
            Ok(None) => {}
            Ok(Some(message)) => problems.push(loaded.diagnostic(&["detector", "column"], message)),
            Err(err) => problems.push(loaded.diagnostic(&["detector"], crate::error::chain(&err))),
        }
    }
    if let Detector::Reconcile(d) = detector
        && let (Some(name), Some(table)) = (d.right.source.as_deref(), d.right.table.as_deref())
        && let Some(Ok(right)) = sources.get(name)
    {
        problems.extend(right_side(loaded, d, right, table).await);
    }
    if problems.is_empty() {
        problems.extend(check_query(loaded, source).await);
    }
    if problems.is_empty()
        && let Detector::Plugin(_) = detector
        && let Some(dialect) = source.dialect()
        && let Ok(query) = compile(detector, dialect)
        && let Ok(columns) = source.result_columns(&query).await
    {
        problems.extend(plugin(loaded, Some(columns)).await);
    }
    problems
}

/// What the rows of a `cache-consistency` rule lack on their source: the table, a key or
/// compared column, at `detector.rows.table`; or the database's objection to the query
/// that reads them, at `detector.rows.query`.
async fn cache_rows(
    loaded: &LoadedRule,
    d: &crate::rule::CacheConsistencyDetector,
    rows: &Source,
) -> Vec<Diagnostic> {
    let Some(dialect) = rows.dialect() else {
        return Vec::new(); // lint reported the kind
    };
    if let Some(table) = &d.rows.table {
        let wanted: Vec<&str> = d.key.iter().chain(&d.fields).map(String::as_str).collect();
        let at = ["detector", "rows", "table"];
        return match rows.schema_problems(table, &wanted).await {
            Ok(found) => found
                .iter()
                .map(|problem| {
                    let diagnostic = loaded.diagnostic(&at, format!("the rows: {problem}"));
                    match problem.hint() {
                        Some(hint) => diagnostic.with_hint(hint),
                        None => diagnostic,
                    }
                })
                .collect(),
            Err(err) => vec![loaded.diagnostic(&at, crate::error::chain(&err))],
        };
    }
    let query = crate::compile::cache_rows(d, dialect, true);
    match rows.result_columns(&query).await {
        Ok(_) => Vec::new(),
        Err(err) => vec![loaded.diagnostic(
            &["detector", "rows", "query"],
            format!(
                "{} rejects the rows' query: {}",
                dialect.name(),
                crate::error::chain(&err)
            ),
        )],
    }
}

/// What the right side of a `reconcile` lacks on its own source: its table, or a key,
/// compared or `changed-at` column (by its right-side name), at `detector.right.table`.
async fn right_side(
    loaded: &LoadedRule,
    d: &crate::rule::ReconcileDetector,
    right: &Source,
    table: &str,
) -> Vec<Diagnostic> {
    let columns = d.right_columns();
    let wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
    let at = ["detector", "right", "table"];
    match right.schema_problems(table, &wanted).await {
        Ok(found) => found
            .iter()
            .map(|problem| {
                let diagnostic = loaded.diagnostic(&at, format!("the right side: {problem}"));
                match problem.hint() {
                    Some(hint) => diagnostic.with_hint(hint),
                    None => diagnostic,
                }
            })
            .collect(),
        Err(err) => vec![loaded.diagnostic(&at, crate::error::chain(&err))],
    }
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
                rule.rule
                    .detector
                    .columns_used()
                    .into_iter()
                    .map(|(t, _)| t),
            );
            if let Some(dialect) = source.dialect()
                && let Ok(mut query) = compile(&rule.rule.detector, dialect)
            {
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
    let sha256 = d.sha256.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let plugin =
            crate::plugin::Plugin::load_pinned(&path, sha256.as_deref()).map_err(|e| match e {
                crate::Error::PluginHash { .. } => ("sha256", e),
                _ => ("plugin", e),
            })?;
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
                Some(key) => loaded.key_diagnostic(&["detector", "config", &key], message),
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
    let dialect = source.dialect()?;
    let query = compile(detector, dialect).ok()?;
    let field = match detector {
        Detector::Sql(_) | Detector::Plugin(_) => "query",
        Detector::AggregateMatch(_) => "expression",
        _ if detector.filter().is_some() => "where",
        _ => "kind",
    };
    let columns = match source.result_columns(&query).await {
        Ok(columns) => columns,
        Err(err) => {
            return Some(loaded.diagnostic(
                &["detector", field],
                format!(
                    "{} rejects the query: {}",
                    dialect.name(),
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
    let key = key?;
    let missing = crate::finding::missing_column(&columns, key, &query.message)?;
    let field: &[&str] = match &missing {
        MissingColumn::Key { .. } => &["detector", "key"],
        MissingColumn::Message(_) => &["detector", "message"],
    };
    let mut path = field
        .iter()
        .fold(loaded.path.clone(), |path, key| path.key(key));
    if let MissingColumn::Key { at, .. } = missing {
        path = path.index(at);
    }
    Some(
        loaded
            .file
            .at_path(&path, missing.to_string())
            .with_hint(format!("it returns: {}", columns.join(", "))),
    )
}
