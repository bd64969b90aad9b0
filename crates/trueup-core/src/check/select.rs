//! Which rules a run takes: `--rule` patterns, `--tag`s and `--source`s, each checked
//! against the project so that a typo is an error with a suggestion, not an empty run.

use crate::load::{LoadedRule, Project};
use crate::suggest::did_you_mean;
use crate::{Error, Result};

/// A selection of a project's rules; empty lists select every rule.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Rule ids; `orders.*` selects every id starting with `orders.`.
    pub rules: Vec<String>,
    pub tags: Vec<String>,
    pub sources: Vec<String>,
}

impl Selection {
    /// The selection as flags (`--rule a --tag b`), or `None` when it selects every rule:
    /// what a run records, so that runs of the same selection can be compared.
    pub fn describe(&self) -> Option<String> {
        let flags: Vec<String> = [
            ("--rule", &self.rules),
            ("--tag", &self.tags),
            ("--source", &self.sources),
        ]
        .into_iter()
        .flat_map(|(flag, values)| values.iter().map(move |v| format!("{flag} {v}")))
        .collect();
        (!flags.is_empty()).then(|| flags.join(" "))
    }

    /// The rules selected, in project order; a pattern, tag or source that matches nothing
    /// is an error naming it.
    pub fn select<'p>(&self, project: &'p Project) -> Result<Vec<&'p LoadedRule>> {
        check_rule_patterns(project, &self.rules)?;
        for name in &self.sources {
            if !project.sources.contains_key(name) {
                let close = did_you_mean(name, project.sources.keys().map(String::as_str))
                    .map(|hint| format!("; {hint}"))
                    .unwrap_or_default();
                return Err(Error::Selection(format!(
                    "no source is named `{name}` in {}{close}",
                    project.file.path.display()
                )));
            }
        }
        for tag in &self.tags {
            if !project.rules.iter().any(|r| r.rule.tags.contains(tag)) {
                let mut tags: Vec<&str> = project
                    .rules
                    .iter()
                    .flat_map(|r| r.rule.tags.iter().map(String::as_str))
                    .collect();
                tags.sort_unstable();
                tags.dedup();
                let close = did_you_mean(tag, tags.iter().copied())
                    .map(|hint| format!("{hint} "))
                    .unwrap_or_default();
                return Err(Error::Selection(format!(
                    "no rule has the tag `{tag}`; {close}the tags are: {}",
                    tags.join(", ")
                )));
            }
        }
        let selected: Vec<&LoadedRule> = project
            .rules
            .iter()
            .filter(|r| rule_selected(&self.rules, &r.rule.id))
            .filter(|r| self.tags.is_empty() || r.rule.tags.iter().any(|t| self.tags.contains(t)))
            .filter(|r| self.sources.is_empty() || self.sources.contains(&r.source))
            .collect();
        if selected.is_empty() {
            return Err(Error::Selection("the filters select no rule".to_owned()));
        }
        Ok(selected)
    }
}

/// Fails on a `--rule` pattern that matches no rule, suggesting a close id.
pub fn check_rule_patterns(project: &Project, patterns: &[String]) -> Result<()> {
    let ids = || project.rules.iter().map(|r| r.rule.id.as_str());
    for pattern in patterns {
        if !ids().any(|id| id_matches(pattern, id)) {
            let message = match did_you_mean(pattern, ids()) {
                Some(hint) => format!("no rule matches `--rule {pattern}`; {hint}"),
                None => {
                    format!("no rule matches `--rule {pattern}`; `trueup rules` lists every rule")
                }
            };
            return Err(Error::Selection(message));
        }
    }
    Ok(())
}

/// Whether `--rule` patterns (none: every rule) select rule `id`.
pub fn rule_selected(patterns: &[String], id: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|pattern| id_matches(pattern, id))
}

/// `orders.total` matches itself; `orders.*` matches every id starting with `orders.`.
fn id_matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => pattern == id,
    }
}

#[cfg(test)]
mod tests {
    use super::id_matches;

    #[test]
    fn a_trailing_star_is_a_prefix() {
        assert!(id_matches("orders.total", "orders.total"));
        assert!(!id_matches("orders.total", "orders.totals"));
        assert!(id_matches("orders.*", "orders.total"));
        assert!(!id_matches("orders.*", "customers.email"));
    }
}
