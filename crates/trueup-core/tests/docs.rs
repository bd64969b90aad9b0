//! The reference docs cannot drift from the rule model: the annotated reference rule file
//! shows every detector kind and every repair strategy and is valid, and the rule reference
//! names every field of the JSON Schema.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use trueup_core::load::Project;
use trueup_core::rule::RuleFile;

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path))
        .unwrap_or_else(|err| panic!("cannot read {path}: {err}"))
}

fn rule_schema() -> Value {
    serde_json::from_str(&trueup_core::schema::rule_file()).expect("the rule schema is JSON")
}

/// The `const` values of `tag` in the `oneOf` variants of the schema definition `name`,
/// e.g. every detector `kind`.
fn variant_tags(schema: &Value, name: &str, tag: &str) -> BTreeSet<String> {
    let variants = schema["$defs"][name]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("`{name}` has variants"));
    variants
        .iter()
        .map(|variant| {
            variant["properties"][tag]["const"]
                .as_str()
                .unwrap_or_else(|| panic!("a `{name}` variant without a `{tag}` constant"))
                .to_owned()
        })
        .collect()
}

/// Every property name anywhere in `value`.
fn property_names(value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                names.extend(properties.keys().cloned());
            }
            map.values().for_each(|inner| property_names(inner, names));
        }
        Value::Array(items) => items.iter().for_each(|inner| property_names(inner, names)),
        _ => {}
    }
}

#[test]
fn reference_rule_file_shows_every_detector_and_repair() {
    let text = read("docs/reference/rule-reference.toml");
    let file: RuleFile =
        toml::from_str(&text).unwrap_or_else(|err| panic!("rule-reference.toml: {err}"));
    let schema = rule_schema();

    let kinds: BTreeSet<String> = file
        .rules
        .iter()
        .map(|r| r.detector.kind().to_owned())
        .collect();
    let strategies: BTreeSet<String> = file
        .rules
        .iter()
        .filter_map(|r| r.repair.as_ref())
        .map(|r| r.strategy().to_owned())
        .collect();

    let all_kinds = variant_tags(&schema, "Detector", "kind");
    let all_strategies = variant_tags(&schema, "Repair", "strategy");
    let missing_kinds: Vec<_> = all_kinds.difference(&kinds).collect();
    let missing_strategies: Vec<_> = all_strategies.difference(&strategies).collect();
    assert!(
        missing_kinds.is_empty(),
        "rule-reference.toml shows no detector of kind {missing_kinds:?}"
    );
    assert!(
        missing_strategies.is_empty(),
        "rule-reference.toml shows no repair of strategy {missing_strategies:?}"
    );
}

#[test]
fn reference_rule_file_is_valid() {
    // Loading runs every check that needs no database: unique ids, required lists,
    // repairs that fit their detectors, message templates.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("trueup.toml"),
        "rules = [\"rules\"]\n\n[sources.shop]\nurl = \"sqlite://shop.db\"\n\n\
         [sources.metrics]\nurl = \"prometheus://localhost:9090\"\n\n\
         [sources.cache]\nurl = \"redis://localhost:6379/0\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/reference.toml"),
        read("docs/reference/rule-reference.toml"),
    )
    .unwrap();
    if let Err(err) = Project::load(&dir.path().join("trueup.toml")) {
        match err {
            trueup_core::Error::Invalid(problems) => {
                let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                panic!("rule-reference.toml is not valid:\n{}", problems.join("\n"));
            }
            other => panic!("rule-reference.toml cannot be loaded: {other}"),
        }
    }
}

#[test]
fn rules_reference_names_every_field() {
    let reference = read("docs/reference/rules.md");
    let mut names = BTreeSet::new();
    let schema = rule_schema();
    property_names(&schema, &mut names);
    assert!(
        names.len() > 30,
        "the schema walk found too few fields: {names:?}"
    );

    let missing: Vec<_> = names
        .iter()
        .filter(|name| !reference.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/reference/rules.md does not mention the fields {missing:?}"
    );

    let kinds = variant_tags(&schema, "Detector", "kind");
    let strategies = variant_tags(&schema, "Repair", "strategy");
    let missing: Vec<_> = kinds
        .iter()
        .chain(&strategies)
        .filter(|tag| !reference.contains(&format!("`{tag}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/reference/rules.md does not describe {missing:?}"
    );
}
