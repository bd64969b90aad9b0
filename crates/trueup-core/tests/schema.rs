//! The committed JSON Schemas under `schemas/` must be what the rule model derives today.
//! `TRUEUP_BLESS=1 cargo test -p trueup-core --test schema` rewrites them. That every
//! detector kind is in the schema and in the docs is checked from the schema itself, in
//! `tests/docs.rs`.

use std::path::PathBuf;

fn check(file: &str, current: String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas")
        .join(file);
    if std::env::var_os("TRUEUP_BLESS").is_some() {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "schemas/{file} is stale: run `TRUEUP_BLESS=1 cargo test -p trueup-core --test schema` and commit it"
    );
}

#[test]
fn rule_file_schema_is_committed() {
    check("rule-file.schema.json", trueup_core::schema::rule_file());
}

#[test]
fn project_schema_is_committed() {
    check("project.schema.json", trueup_core::schema::project_file());
}
