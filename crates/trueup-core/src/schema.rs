//! The JSON Schemas of rule files and project files, derived from the serde types so they
//! cannot drift. `trueup schema` prints them; the committed copies under `schemas/` are
//! checked by a test.

use crate::project::ProjectFile;
use crate::rule::RuleFile;

/// The JSON Schema of a rule file, pretty-printed.
pub fn rule_file() -> String {
    pretty(&schemars::schema_for!(RuleFile))
}

/// The JSON Schema of `trueup.toml`, pretty-printed.
pub fn project_file() -> String {
    pretty(&schemars::schema_for!(ProjectFile))
}

fn pretty(schema: &schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema is valid JSON");
    text.push('\n');
    text
}
