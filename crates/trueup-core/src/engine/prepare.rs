//! Preparing a run: each selected rule compiled for its source's dialect, its plugin
//! loaded, its definition hashed. A [`Plan`] is the engine's; what reports show of a rule
//! is its [`RuleSpec`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::compile::compile;
use crate::finding::RuleSpec;
use crate::load::{LoadedRule, Project};
use crate::plugin::Plugin;
use crate::{Error, Result};

/// A plugin loaded, or why it could not be (the rule's error).
pub type Loaded = std::result::Result<Arc<Plugin>, crate::outcome::RuleError>;

/// Rules ready to run, and the plugin of each `plugin` rule (by the rule's index).
#[derive(Debug)]
pub struct Plan {
    pub rules: Vec<Arc<RuleSpec>>,
    pub plugins: Vec<Option<Loaded>>,
}

/// Turns loaded rules into runnable ones, compiling each for its source's dialect and
/// loading the plugins of `plugin` rules (each file once).
pub fn prepare(project: &Project, rules: &[&LoadedRule]) -> Result<Plan> {
    // By file and pin: two rules may pin the same file to different hashes.
    let mut plugins: BTreeMap<(std::path::PathBuf, Option<String>), Loaded> = BTreeMap::new();
    let prepared: Vec<(Arc<RuleSpec>, Option<Loaded>)> = rules
        .iter()
        .map(|loaded| {
            let rule = &loaded.rule;
            let spec = &project.sources[&loaded.source];
            // A source that is not SQL has no dialect: its detector compiles to a query of
            // its own language, whatever dialect is passed.
            let dialect = spec
                .kind()?
                .dialect()
                .unwrap_or(crate::dialect::Dialect::Sqlite);
            let mut query = compile(&rule.detector, dialect)
                .map_err(|e| Error::Other(format!("rule `{}`: {e}", rule.id)))?;
            if dialect == crate::dialect::Dialect::Postgres {
                for (name, value) in &rule.postgres_settings {
                    query.settings.retain(|(n, _)| n != name);
                    query.settings.push((name.clone(), value.clone()));
                }
            }
            let plugin = query.plugin.as_mut().map(|call| {
                call.path = crate::plugin::resolve(&loaded.file.path, &call.path.to_string_lossy());
                plugins
                    .entry((call.path.clone(), call.sha256.clone()))
                    .or_insert_with(|| {
                        Plugin::load_pinned(&call.path, call.sha256.as_deref())
                            .map(Arc::new)
                            .map_err(|e| load_error(loaded, &e))
                    })
                    .clone()
            });
            let spec = Arc::new(RuleSpec {
                id: rule.id.clone(),
                title: rule.title.clone(),
                severity: rule.severity,
                tags: rule.tags.clone(),
                owner: rule.owner.clone(),
                runbook: rule.runbook.clone(),
                kind: rule.detector.kind(),
                source: loaded.source.clone(),
                timeout: rule.timeout.unwrap_or(project.defaults.timeout).0,
                columns_used: rule.detector.columns_used(),
                timestamp_column: rule.detector.timestamp_column(),
                definition_hash: definition_hash(loaded, plugin.as_ref()),
                query,
                refused: refusal(loaded),
                two_sources: match &rule.detector {
                    crate::rule::Detector::Reconcile(d) => {
                        Some(crate::finding::TwoSources::Reconcile(Arc::new(d.clone())))
                    }
                    crate::rule::Detector::CacheConsistency(d) => {
                        Some(crate::finding::TwoSources::Cache(Arc::new(d.clone())))
                    }
                    _ => None,
                },
                right_source: rule.detector.other_source().map(str::to_owned),
            });
            Ok((spec, plugin))
        })
        .collect::<Result<_>>()?;
    let (rules, plugins) = prepared.into_iter().unzip();
    Ok(Plan { rules, plugins })
}

/// The rule error for a plugin that did not load; a file its rule's `sha256` does not
/// match is reported at that field, as `validate` does.
fn load_error(loaded: &LoadedRule, error: &Error) -> crate::outcome::RuleError {
    match error {
        Error::PluginHash { .. } => crate::outcome::RuleError::Plugin {
            failure: crate::error::PluginFailure::Load,
            message: loaded
                .diagnostic(&["detector", "sha256"], error.to_string())
                .headline(),
        },
        _ => crate::outcome::RuleError::from_error(error),
    }
}

/// Why the rule's SQL is not run, on one line: its first refused fragment or query.
fn refusal(loaded: &LoadedRule) -> Option<String> {
    let first = loaded.refused.first()?;
    Some(match loaded.refused.len() {
        1 => format!("refused: {}", first.headline()),
        n => format!("refused: {} (and {} more)", first.headline(), n - 1),
    })
}

/// A hash of what a rule does, to tell between runs that it changed.
fn definition_hash(loaded: &LoadedRule, plugin: Option<&Loaded>) -> String {
    let rule = &loaded.rule;
    let mut definition =
        serde_json::to_string(&(&rule.detector, &loaded.source, &rule.postgres_settings))
            .unwrap_or_default();
    // A rebuilt plugin is a changed rule; a plugin that failed to load, the same rule.
    if let Some(Ok(plugin)) = plugin {
        definition.push_str(&plugin.hash);
    }
    format!(
        "{:016x}",
        crate::fingerprint::Fnv::default()
            .field(&definition)
            .finish()
    )
}
