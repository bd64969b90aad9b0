//! The committed JSON Schemas under `schemas/` must be what the rule model derives today.
//! `TRUEUP_BLESS=1 cargo test -p trueup-core --test schema` rewrites them.

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

#[test]
fn schema_describes_every_detector_kind() {
    let schema = trueup_core::schema::rule_file();
    for kind in [
        "sql",
        "not-null",
        "unique",
        "foreign-key",
        "accepted-values",
        "aggregate-match",
        "row-count",
        "freshness",
    ] {
        assert!(
            schema.contains(&format!("\"{kind}\"")),
            "detector kind {kind} missing from the schema"
        );
    }
}
