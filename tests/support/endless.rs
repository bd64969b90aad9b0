//! A rule that would run for hours (five billion rows, on any SQL source), for tests that
//! stop a run in the middle.

pub const ENDLESS_RULE: &str = r#"
[[rule]]
id = "endless"
title = "Never ends"
severity = "low"
timeout = "1h"
[rule.detector]
kind = "sql"
key = ["n"]
query = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5000000000) SELECT n FROM c"
"#;
