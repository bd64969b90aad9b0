//! Checks of one rule that need no database: [`offline`] problems in what the rule says,
//! and [`sql`], the SQL in it that trueup refuses to run. Loading a project runs both;
//! `validate` reports them, `check` fails a refused rule and runs the others.

use crate::diagnostic::Diagnostic;
use crate::dialect::Dialect;
use crate::rule::{Detector, LoadedRule, Repair};
use crate::sql_text::{Fragment, detector_problem, fragment_problem};
use crate::template::Template;

/// Problems in one rule that need no database, but for its SQL ([`sql`]).
pub fn offline(loaded: &LoadedRule) -> Vec<Diagnostic> {
    let rule = &loaded.rule;
    let mut problems = Vec::new();
    let mut promql_problems = Vec::new();
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
            if let Some(sha256) = &d.sha256
                && !is_sha256(sha256)
            {
                problem(
                    &["detector", "sha256"],
                    "`sha256` must be 64 lowercase hex digits, as `trueup plugin build` prints it"
                        .to_owned(),
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
                .is_some_and(|m| m.0 < crate::rule::MIN_MEMORY)
            {
                problem(
                    &["detector", "limits", "memory"],
                    format!(
                        "a plugin needs at least {} of memory",
                        crate::size::ByteSize(crate::rule::MIN_MEMORY)
                    ),
                );
            }
        }
        Detector::Reconcile(d) => {
            require("key", d.key.len());
            for (name, side) in [("left", &d.left), ("right", &d.right)] {
                match (&side.table, &side.query) {
                    (Some(_), Some(_)) => problem(
                        &["detector", name, "query"],
                        format!("`{name}` has both a `table` and a `query`: keep one"),
                    ),
                    (None, None) => problem(
                        &["detector", name],
                        format!("`{name}` needs a `table` or a `query`"),
                    ),
                    _ => {}
                }
                if d.min_age.is_some() && side.changed_at.is_none() {
                    problem(
                        &["detector", name],
                        format!(
                            "`min-age` needs `{name}.changed-at`, the column that says when a \
                             row last changed"
                        ),
                    );
                }
            }
            if d.right.source.is_none() {
                problem(
                    &["detector", "right"],
                    "`right` needs a `source`: the database to compare the rule's source with"
                        .to_owned(),
                );
            }
            let named = |column: &String| d.key.contains(column) || d.columns.contains(column);
            for (field, names) in [
                ("map", d.map.keys().collect::<Vec<_>>()),
                ("tolerance", d.tolerance.keys().collect()),
                ("precision", d.precision.keys().collect()),
            ] {
                for name in names.into_iter().filter(|n| !named(n)) {
                    problem(
                        &["detector", field, name],
                        format!("`{name}` is neither a key column nor a compared column"),
                    );
                }
            }
            for (name, tolerance) in &d.tolerance {
                if !(tolerance.is_finite() && *tolerance >= 0.0) {
                    problem(
                        &["detector", "tolerance", name],
                        "a tolerance is a number of 0 or more".to_owned(),
                    );
                }
            }
            for (name, precision) in &d.precision {
                if precision.0.is_zero() {
                    problem(
                        &["detector", "precision", name],
                        "a precision of zero compares nothing: leave it out for microseconds"
                            .to_owned(),
                    );
                }
            }
        }
        Detector::Promql(d) => promql_problems = promql(loaded, d),
        Detector::CacheConsistency(d) => {
            require("key", d.key.len());
            for (field, message) in cache_problems(d) {
                problem(
                    &field.iter().map(String::as_str).collect::<Vec<_>>(),
                    message,
                );
            }
        }
        Detector::NotNull(d) => {
            require("columns", d.columns.len());
            require("key", d.key.len());
        }
        Detector::Unique(d) => {
            require("columns", d.columns.len());
            if let Some(key) = &d.key {
                require("key", key.len());
            }
        }
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
    problems.extend(promql_problems);
    problems
}

/// Problems of a `promql` detector: its query (parsed), its key labels, its message and
/// its bounds.
fn promql(loaded: &LoadedRule, d: &crate::rule::PromqlDetector) -> Vec<Diagnostic> {
    use crate::compile::{PROMQL_LABELS, PROMQL_VALUE};
    let mut problems = Vec::new();
    if let Some((message, hint)) = crate::promql_text::problem(&d.query) {
        let diagnostic = loaded.diagnostic(&["detector", "query"], message);
        problems.push(match hint {
            Some(hint) => diagnostic.with_hint(hint),
            None => diagnostic,
        });
    }
    let mut problem =
        |field: &[&str], message: String| problems.push(loaded.diagnostic(field, message));
    let key = d.key.as_deref().unwrap_or_default();
    if d.key.as_ref().is_some_and(Vec::is_empty) {
        problem(
            &["detector", "key"],
            "`key` names no label: leave it out to key findings by every label".to_owned(),
        );
    }
    for label in key {
        if label == PROMQL_VALUE || label == PROMQL_LABELS {
            problem(
                &["detector", "key"],
                format!(
                    "`{label}` is the name of the finding's own `{label}` column, not a label a key can name"
                ),
            );
        } else if !crate::promql_text::is_label_name(label) {
            problem(
                &["detector", "key"],
                format!("`{label}` is not a label name (letters, digits and `_`)"),
            );
        }
    }
    if let Some(message) = &d.message {
        match Template::parse(message) {
            Err(message) => problem(&["detector", "message"], message),
            Ok(template) if !key.is_empty() => {
                let known = |name: &str| {
                    key.iter().any(|k| k == name) || name == PROMQL_VALUE || name == PROMQL_LABELS
                };
                if let Some(unknown) = template.columns().find(|name| !known(name)) {
                    problem(
                        &["detector", "message"],
                        format!(
                            "the message uses `{{{unknown}}}`, which is neither a `key` label                              nor `value` or `labels`"
                        ),
                    );
                }
            }
            Ok(_) => {}
        }
    }
    if d.max_series == Some(0) {
        problem(
            &["detector", "max-series"],
            "a `max-series` of 0 would fail the rule whenever it finds anything".to_owned(),
        );
    }
    if d.max_response.is_some_and(|b| b.0 < 1024) {
        problem(
            &["detector", "max-response"],
            "a `max-response` under 1KiB cannot hold an answer".to_owned(),
        );
    }
    problems
}

/// What is wrong with a `cache-consistency` detector on its own, each at its field.
fn cache_problems(d: &crate::rule::CacheConsistencyDetector) -> Vec<(Vec<String>, String)> {
    let mut problems: Vec<(Vec<String>, String)> = Vec::new();
    let mut problem = |field: &[&str], message: String| {
        let mut path = vec!["detector".to_owned()];
        path.extend(field.iter().map(|f| (*f).to_owned()));
        problems.push((path, message));
    };
    match (&d.rows.table, &d.rows.query) {
        (Some(_), Some(_)) => problem(
            &["rows", "query"],
            "`rows` has both a `table` and a `query`: keep one".to_owned(),
        ),
        (None, None) => problem(&["rows"], "`rows` needs a `table` or a `query`".to_owned()),
        _ => {}
    }
    match Template::parse(&d.key_template) {
        Err(message) => problem(&["key-template"], message),
        Ok(template) => {
            let used: Vec<&str> = template.columns().collect();
            let key = d.key.join(", ");
            if let Some(other) = used.iter().find(|c| !d.key.iter().any(|k| k == *c)) {
                problem(
                    &["key-template"],
                    format!(
                        "`{{{other}}}` is not a key column: the template's placeholders are \
                         the key's columns ({key})"
                    ),
                );
            } else if let Some(absent) = d.key.iter().find(|k| !used.contains(&k.as_str())) {
                problem(
                    &["key-template"],
                    format!(
                        "the key column `{absent}` is not in the template: write `{{{absent}}}` \
                         where the cache key holds it"
                    ),
                );
            } else if template.has_adjacent_columns() {
                problem(
                    &["key-template"],
                    "two placeholders with no text between them cannot be read back from a \
                     key: separate them, e.g. `{a}:{b}`"
                        .to_owned(),
                );
            }
        }
    }
    for (field, names) in [
        ("map", d.map.keys().collect::<Vec<_>>()),
        ("tolerance", d.tolerance.keys().collect()),
    ] {
        for name in names.into_iter().filter(|n| !d.fields.contains(n)) {
            problem(
                &[field, name],
                format!("`{name}` is not one of the compared `fields`"),
            );
        }
    }
    for (name, tolerance) in &d.tolerance {
        if !(tolerance.is_finite() && *tolerance >= 0.0) {
            problem(
                &["tolerance", name],
                "a tolerance is a number of 0 or more".to_owned(),
            );
        }
    }
    if let Some(orphans) = &d.orphans {
        if orphans.pattern.trim().is_empty() {
            problem(
                &["orphans", "pattern"],
                "the pattern is empty: write the keys the template builds, e.g. `customer:*`"
                    .to_owned(),
            );
        }
        if orphans.count == Some(0) {
            problem(
                &["orphans", "count"],
                "a `count` of 0: leave it out for 1000".to_owned(),
            );
        }
    }
    problems
}

/// Rules whose source is of another kind than their detector reads: a `promql` rule on a
/// SQL database, a SQL rule (or a `reconcile` side) on a Prometheus source. `kind_of`
/// gives a source's kind when it is known.
pub fn source_kinds(
    loaded: &LoadedRule,
    kind_of: impl Fn(&str) -> Option<crate::dialect::SourceKind>,
) -> Vec<Diagnostic> {
    use crate::dialect::SourceKind;
    let detector = &loaded.rule.detector;
    let kind = detector.kind();
    let mut problems = Vec::new();
    match (detector, kind_of(&loaded.source)) {
        (Detector::Promql(_), Some(SourceKind::Sql(dialect))) => problems.push(
            loaded
                .diagnostic(
                    &["detector", "kind"],
                    format!(
                        "a `promql` rule reads a Prometheus source, but `{}` is a {} database",
                        loaded.source,
                        dialect.name()
                    ),
                )
                .with_hint(
                    "declare one in trueup.toml, e.g. [sources.metrics] url = \"prometheus://localhost:9090\", and name it in the rule's `source`",
                ),
        ),
        (Detector::CacheConsistency(_), Some(SourceKind::Sql(_) | SourceKind::Prometheus)) => {
            problems.push(
                loaded
                    .diagnostic(
                        &["detector", "kind"],
                        format!(
                            "a `cache-consistency` rule reads a Redis source, but `{}` is a {} source",
                            loaded.source,
                            kind_of(&loaded.source).map_or("other", SourceKind::name)
                        ),
                    )
                    .with_hint(
                        "declare one in trueup.toml, e.g. [sources.cache] url = \"redis://localhost:6379/0\", name it in the rule's `source` and the database in `rows.source`",
                    ),
            )
        }
        (Detector::Promql(_), Some(SourceKind::Redis)) => problems.push(loaded.diagnostic(
            &["detector", "kind"],
            format!(
                "a `promql` rule reads a Prometheus source, but `{}` is a Redis source",
                loaded.source
            ),
        )),
        (Detector::Promql(_) | Detector::CacheConsistency(_), _)
        | (_, None | Some(SourceKind::Sql(_))) => {}
        (_, Some(SourceKind::Redis)) => problems.push(
            loaded
                .diagnostic(
                    &["detector", "kind"],
                    format!(
                        "source `{}` is a Redis source, which only `cache-consistency` rules read; `{kind}` rules read a SQL database",
                        loaded.source
                    ),
                )
                .with_hint("give the rule a SQL source in `source`"),
        ),
        (_, Some(other)) => problems.push(
            loaded
                .diagnostic(
                    &["detector", "kind"],
                    format!(
                        "source `{}` is a {} source, which only `promql` rules read; `{kind}` rules read a SQL database",
                        loaded.source,
                        other.name()
                    ),
                )
                .with_hint("give the rule a SQL source in `source`"),
        ),
    }
    if let Detector::CacheConsistency(d) = detector
        && let Some(other) = kind_of(&d.rows.source).filter(|k| k.dialect().is_none())
    {
        problems.push(loaded.diagnostic(
            &["detector", "rows", "source"],
            format!(
                "source `{}` is a {} source: the rows of a `cache-consistency` rule are read \
                 from a SQL database",
                d.rows.source,
                other.name()
            ),
        ));
    }
    if let Detector::Reconcile(d) = detector
        && let Some(right) = d.right.source.as_deref()
        && let Some(SourceKind::Prometheus | SourceKind::Redis) = kind_of(right)
    {
        problems.push(loaded.diagnostic(
            &["detector", "right", "source"],
            format!(
                "source `{right}` is a Prometheus source: a `reconcile` side is a SQL database"
            ),
        ));
    }
    problems
}

/// The SQL of one rule that trueup refuses to run, parsed in `dialect` (the dialect of the
/// rule's source; generic SQL when it is not known): a query that is not exactly one
/// read-only statement, a fragment (`where`, `expression`, `keep`, a `set` value) that is
/// not exactly one expression. `validate` reports these; `check` fails the rule with them
/// and runs the others.
///
/// A `reconcile`'s right side is parsed in `right`, the dialect of its own source.
pub fn sql(
    loaded: &LoadedRule,
    dialect: Option<Dialect>,
    right: Option<Dialect>,
) -> Vec<Diagnostic> {
    let rule = &loaded.rule;
    let fragment_in = |field: &[&str], text: &str, kind: Fragment, dialect: Option<Dialect>| {
        fragment_problem(text, kind, dialect).map(|message| {
            let name = field[1..].join(".");
            loaded.diagnostic(field, format!("`{name}`: {message}"))
        })
    };
    let fragment =
        |field: &[&str], text: &str, kind: Fragment| fragment_in(field, text, kind, dialect);
    let mut problems = Vec::new();
    match &rule.detector {
        Detector::Reconcile(d) => {
            for (name, side, dialect) in [("left", &d.left, dialect), ("right", &d.right, right)] {
                if let Some(query) = &side.query {
                    problems.extend(
                        detector_problem(query, dialect).map(|message| {
                            loaded.diagnostic(&["detector", name, "query"], message)
                        }),
                    );
                }
                if let Some(filter) = &side.filter {
                    problems.extend(fragment_in(
                        &["detector", name, "where"],
                        filter,
                        Fragment::Expression,
                        dialect,
                    ));
                }
            }
        }
        Detector::CacheConsistency(d) => {
            if let Some(query) = &d.rows.query {
                problems.extend(
                    detector_problem(query, right)
                        .map(|message| loaded.diagnostic(&["detector", "rows", "query"], message)),
                );
            }
            if let Some(filter) = &d.rows.filter {
                problems.extend(fragment_in(
                    &["detector", "rows", "where"],
                    filter,
                    Fragment::Expression,
                    right,
                ));
            }
        }
        Detector::Sql(crate::rule::SqlDetector { query, .. })
        | Detector::Plugin(crate::rule::PluginDetector { query, .. }) => problems.extend(
            detector_problem(query, dialect)
                .map(|message| loaded.diagnostic(&["detector", "query"], message)),
        ),
        Detector::AggregateMatch(d) => {
            problems.extend(
                fragment(
                    &["detector", "expression"],
                    &d.expression,
                    Fragment::Aggregated,
                )
                .into_iter()
                .chain(d.filter.as_deref().and_then(|filter| {
                    fragment(&["detector", "where"], filter, Fragment::Expression)
                }))
                .chain(d.child_where.as_deref().and_then(|filter| {
                    fragment(&["detector", "child-where"], filter, Fragment::Expression)
                })),
            )
        }
        detector => problems.extend(
            detector
                .filter()
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
        Some(Repair::Sql(r)) => {
            let table = r.table.as_deref().or(rule.detector.table());
            let key = dialect.and_then(|d| crate::compile::compile(&rule.detector, d).ok());
            if let (Some(dialect), Some(table), Some(key)) = (dialect, table, key) {
                for (i, statement) in r.statements.iter().enumerate() {
                    let bind = |n: usize, name: &str| {
                        key.key.iter().any(|k| k == name).then(|| dialect.param(n))
                    };
                    if let Err(message) =
                        crate::sql_text::repair_statement(statement, dialect, table, bind)
                    {
                        problems.push(loaded.diagnostic(
                            &["repair", "statements"],
                            format!("statement {}: {message}", i + 1),
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    problems
}

/// Why `repair` cannot repair what `detector` finds, if it cannot.
fn repair_problem(detector: &Detector, repair: &Repair) -> Option<String> {
    let strategy = repair.strategy();
    let kind = detector.kind();
    if matches!(detector, Detector::Promql(_)) && !matches!(repair, Repair::Manual(_)) {
        return Some(format!(
            "`{strategy}` cannot repair `promql` findings, which are series of a metrics \
             server, not rows trueup can change: use `manual` with instructions"
        ));
    }
    if matches!(detector, Detector::CacheConsistency(_))
        && !matches!(repair, Repair::Manual(_) | Repair::Evict(_))
    {
        return Some(format!(
            "`{strategy}` cannot repair `cache-consistency` findings, which are keys of a \
             cache, not rows: use `evict` (delete the keys) or `manual`"
        ));
    }
    if matches!(repair, Repair::Evict(_)) && !matches!(detector, Detector::CacheConsistency(_)) {
        return Some(format!(
            "`evict` deletes cache keys and repairs `cache-consistency` findings, not `{kind}` ones"
        ));
    }
    if let Detector::Reconcile(d) = detector {
        return match repair {
            Repair::Manual(_) => None,
            Repair::CopyFrom(r) => {
                let repaired = match r.authoritative {
                    crate::rule::Authoritative::Left => &d.right,
                    crate::rule::Authoritative::Right => &d.left,
                };
                repaired.table.is_none().then(|| {
                    "`copy-from` changes the side that is not `authoritative`, which must \
                     name a `table` (not a `query`)"
                        .to_owned()
                })
            }
            _ => Some(format!(
                "`{strategy}` cannot repair `reconcile` findings, which are rows of two \
                 databases: use `copy-from` or `manual`"
            )),
        };
    }
    if matches!(repair, Repair::CopyFrom(_)) {
        return Some(format!(
            "`copy-from` repairs `reconcile` findings, not `{kind}` ones"
        ));
    }
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
        Repair::Sql(_) => match detector {
            Detector::Unique(_) => Some(
                "a `sql` repair changes the finding's row, but `unique` findings are groups of duplicates; use `merge-duplicates`".to_owned(),
            ),
            Detector::RowCount(_) | Detector::Freshness(_) => Some(format!(
                "a `sql` repair changes the finding's row, but `{kind}` findings are whole tables"
            )),
            _ => None,
        },
        Repair::CopyFrom(_) | Repair::Evict(_) | Repair::Manual(_) => None,
    }
}

/// Whether `text` is a SHA-256 as `trueup plugin build` prints it: 64 lowercase hex digits.
fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
