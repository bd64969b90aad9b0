//! PostgreSQL `NUMERIC` values reach every output as the exact text the server writes for
//! them, including those no fixed-size decimal holds (NaN, ±Infinity, 1e-30, 1e40, more than
//! 28 significant digits), as keys and as details, through the real binary.

mod common;
#[path = "../../../tests/support/pg.rs"]
mod pg;

use common::{project, run, trueup};

/// Each row: `n` (which value), the value as key and again as detail (`amount`), and the
/// server's own text of it (`expected`).
const RULE: &str = r#"
[[rule]]
id = "numbers.exact"
title = "Every NUMERIC value PostgreSQL has"
severity = "low"
[rule.detector]
kind = "sql"
key = ["value"]
message = "n={n} amount={amount}"
query = """
SELECT v AS value, n, v AS amount, v::text AS expected
FROM (VALUES
  (1, 'NaN'::numeric), (2, 1e-30), (3, 1e40), (4, 'Infinity'), (5, '-Infinity'),
  (6, 123456789012345678901234567890.123456789), (7, 0.00), (8, -12.50), (9, 10.5),
  (10, 79228162514264337593543950336), (11, 0.0000000000000000000000000001),
  (12, -0.000123), (13, 1e-16383), (14, 9999.9999), (15, 10000), (16, 0)
) AS t(n, v)
"""
"#;

#[tokio::test]
async fn hardening_13_numeric_values_keep_their_exact_text_as_key_and_detail() {
    let Some(admin) = pg::admin_url() else { return };
    let url = pg::fresh_database(&admin).await;
    let dir = project(&url, &[("numbers.toml", RULE)]);
    let project = dir.path().join("trueup.toml");

    let json = run(trueup().arg("--project").arg(&project).args([
        "check",
        "--no-record",
        "--format",
        "json",
    ]));
    assert_eq!(json.code, Some(1), "{}", json.all());
    let report = json.json();
    assert_eq!(
        report["rules"][0]["error"],
        serde_json::Value::Null,
        "{}",
        json.all()
    );
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 16, "{}", json.all());
    let mut seen = Vec::new();
    for finding in findings {
        let expected = finding["detail"]["expected"].as_str().unwrap();
        assert_eq!(finding["key"]["value"], expected, "{finding}");
        assert_eq!(finding["detail"]["amount"], expected, "{finding}");
        seen.push(expected.to_owned());
    }
    for text in [
        "NaN",
        "Infinity",
        "-Infinity",
        "0.000000000000000000000000000001",
        "10000000000000000000000000000000000000000",
        "123456789012345678901234567890.123456789",
        "0.00",
        "-12.50",
        "79228162514264337593543950336",
        "-0.000123",
    ] {
        assert!(
            seen.iter().any(|s| s == text),
            "{text} missing from {seen:?}"
        );
    }
    // 1e-16383: every one of its 16383 decimals.
    assert!(seen.iter().any(|s| s.len() == 16385 && s.ends_with('1')));

    let human =
        run(trueup()
            .arg("--project")
            .arg(&project)
            .args(["check", "--no-record", "--show", "20"]));
    assert_eq!(human.code, Some(1), "{}", human.all());
    for line in [
        "value=NaN  n=1 amount=NaN",
        "value=0.000000000000000000000000000001  n=2 amount=0.000000000000000000000000000001",
        "value=10000000000000000000000000000000000000000  n=3",
        "value=Infinity  n=4 amount=Infinity",
        "value=-Infinity  n=5 amount=-Infinity",
        "value=123456789012345678901234567890.123456789  n=6",
    ] {
        assert!(human.stdout.contains(line), "{line}:\n{}", human.all());
    }
}
