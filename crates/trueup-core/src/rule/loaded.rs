//! A rule as loaded: the rule, the file and place it was written at, the source it runs
//! against, and the SQL of it trueup refuses to run.

use std::sync::Arc;

use super::Rule;
use crate::diagnostic::{Diagnostic, FieldPath, SourceFile};

/// A rule with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedRule {
    pub rule: Rule,
    pub file: Arc<SourceFile>,
    /// Where the rule's table is in its file, e.g. `rule[1]`.
    pub path: FieldPath,
    /// The source the rule runs against, resolved.
    pub source: String,
    /// SQL of the rule that trueup refuses to run ([`crate::lint::sql`]): `validate` reports
    /// it, `check` fails this rule with it and runs the others.
    pub refused: Vec<Diagnostic>,
}

impl LoadedRule {
    /// A diagnostic pointing at `field` of this rule (e.g. `["detector", "table"]`).
    pub fn diagnostic(&self, field: &[&str], message: impl Into<String>) -> Diagnostic {
        self.file.at_path(&self.field(field), message)
    }

    /// A diagnostic pointing at the key `field` ends with, not at its value.
    pub fn key_diagnostic(&self, field: &[&str], message: impl Into<String>) -> Diagnostic {
        self.file.at_key(&self.field(field), message)
    }

    fn field(&self, field: &[&str]) -> FieldPath {
        field
            .iter()
            .fold(self.path.clone(), |path, key| path.key(key))
    }
}
