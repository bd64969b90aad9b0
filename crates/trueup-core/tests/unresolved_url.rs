//! A source URL's `${VAR}` is replaced when connecting: the project loads without it, and
//! connecting names the variable at the URL's place in `trueup.toml`.

mod support;

use support::TestProject;
use trueup_core::load::Project;
use trueup_core::source::Source;

/// Never set in a test run.
const UNSET: &str = "TRUEUP_TEST_UNRESOLVED_URL_PASSWORD";

const RULE: &str = "[[rule]]\nid = \"t.rows\"\ntitle = \"Rows\"\nseverity = \"low\"\n\
                    [rule.detector]\nkind = \"sql\"\nquery = \"SELECT 1 AS id\"\nkey = [\"id\"]\n";

#[tokio::test]
async fn connecting_names_the_unset_variable_at_its_url() {
    let url = format!("postgres://app:${{{UNSET}}}@db.internal/shop");
    let project = TestProject::new(&url, &[("t.toml", RULE)]);
    let loaded = Project::load(&project.path()).expect("loads without the variable");
    let spec = &loaded.sources["db"];
    assert_eq!(spec.url, url, "the URL is kept as written");

    let err = Source::connect(spec, &loaded.root, 1)
        .await
        .expect_err("the variable is unset");
    let message = trueup_core::error::chain(&err);
    assert!(
        message.ends_with(&format!(
            "trueup.toml:4:7: environment variable `{UNSET}` is not set"
        )),
        "{message}"
    );

    let rules: Vec<_> = loaded.rules.iter().collect();
    match loaded.resolve_sources(&rules) {
        Err(trueup_core::Error::Invalid(problems)) => {
            assert_eq!(problems.len(), 1);
            assert_eq!(
                problems[0].hints,
                [format!("set it before running trueup: export {UNSET}=...")]
            );
        }
        other => panic!("expected the unset variable, got {other:?}"),
    }
}

#[test]
fn a_malformed_variable_is_an_error_at_load() {
    let project = TestProject::new("postgres://app:${PASSWORD@db/shop", &[("t.toml", RULE)]);
    let err = Project::load(&project.path()).expect_err("`${` without `}`");
    let trueup_core::Error::Invalid(problems) = err else {
        panic!("expected diagnostics, got {err:?}");
    };
    assert!(
        problems[0]
            .headline()
            .ends_with("trueup.toml:4:7: `${` without its closing `}`"),
        "{}",
        problems[0].headline()
    );
}
