//! `email-syntax`: reports email addresses that are malformed.
//!
//! The rules are deliberately plain (no quoted local parts, no IP literals, no
//! internationalised domains): what a shop's sign-up form should have let through. A
//! non-NULL value is malformed when any of these holds:
//!
//! - it is longer than 254 bytes;
//! - it does not contain exactly one `@`;
//! - any character is whitespace or an ASCII control character;
//! - the local part (before the `@`) is empty, longer than 64 bytes, starts or ends with
//!   `.`, or contains `..`;
//! - the domain (after the `@`) is empty, has no `.`, starts or ends with `.` or `-`,
//!   contains `..`, or contains a character other than ASCII letters, digits, `-` and `.`.
//!
//! [`problem`] (in `syntax.rs`, which depends on nothing: the benchmark compiles the same file
//! natively) is the whole check, as a pure function; the plugin only reads the column.

use trueup_plugin_sdk::{Columns, Finding, Plugin, Row, Value, export};

/// The configuration of a rule that runs this plugin: its `[rule.detector.config]` table.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The query column that holds the email address. NULL values are skipped; a value
    /// that is not text (a number, say) is reported as `not text`.
    pub column: String,
}

mod syntax;

pub use syntax::{MAX_LEN, MAX_LOCAL_LEN, problem};

/// The finding for one value, or `None` when it is NULL or well-formed.
pub fn finding(value: Value<'_>) -> Option<Finding> {
    match value {
        Value::Null => None,
        Value::Text(email) => problem(email).map(|problem| {
            Finding::new(format!("malformed email: {problem}"))
                .detail("email", email)
                .detail("problem", problem)
        }),
        other => Some(
            Finding::new("not text")
                .detail("email", other)
                .detail("problem", "not text"),
        ),
    }
}

/// The plugin: checks one column of every row.
pub struct EmailSyntax {
    column: usize,
}

impl Plugin for EmailSyntax {
    const NAME: &'static str = "email-syntax";
    const DESCRIPTION: &'static str = "Reports malformed email addresses";
    type Config = Config;

    fn new(config: Config, columns: &Columns) -> Result<Self, String> {
        Ok(EmailSyntax {
            column: columns.require(&config.column)?,
        })
    }

    fn check(&mut self, row: &Row<'_>) -> Option<Finding> {
        finding(row.get(self.column))
    }
}

export!(EmailSyntax);

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(email: &str) {
        assert_eq!(problem(email), None, "{email:?} should be well-formed");
    }

    fn bad(email: &str, expected: &str) {
        assert_eq!(problem(email), Some(expected), "{email:?}");
    }

    #[test]
    fn well_formed_addresses_pass() {
        ok("anna@example.com");
        ok("a@b.co");
        ok("anna.smith+shop@mail.example.co.uk");
        ok("o'brien@example.ie");
        ok("x_y-z!#$%&*=?^`{|}~@example.com");
        ok("customer17@example.com");
        ok("ANNA@EXAMPLE.COM");
        ok("anna@ex-ample.com");
        ok("anna@123.45");
        ok("jos\u{e9}@example.com"); // non-ASCII is allowed in the local part
        ok("\"quoted\"@example.com"); // quotes are ordinary characters here
    }

    #[test]
    fn the_at_sign() {
        bad("", "no @");
        bad("anna.example.com", "no @");
        bad("anna@@example.com", "more than one @");
        bad("a@b@example.com", "more than one @");
        bad("@", "empty local part");
    }

    #[test]
    fn lengths_at_and_past_the_limits() {
        let local64 = "a".repeat(64);
        ok(&format!("{local64}@example.com"));
        bad(
            &format!("{}@example.com", "a".repeat(65)),
            "local part longer than 64 bytes",
        );
        // 254 bytes in all is fine, 255 is not.
        let domain = format!("{}.com", "d".repeat(254 - 64 - 1 - 4));
        let email = format!("{local64}@{domain}");
        assert_eq!(email.len(), 254);
        ok(&email);
        let email = format!("{local64}@d{domain}");
        assert_eq!(email.len(), 255);
        bad(&email, "longer than 254 bytes");
        // The limit is in bytes: 2-byte characters count twice.
        bad(
            &format!("{}@example.com", "\u{e9}".repeat(33)),
            "local part longer than 64 bytes",
        );
        // Length wins over everything else.
        bad(&" ".repeat(300), "longer than 254 bytes");
    }

    #[test]
    fn the_local_part() {
        bad("@example.com", "empty local part");
        bad(".anna@example.com", "local part starts or ends with a dot");
        bad("anna.@example.com", "local part starts or ends with a dot");
        bad(".@example.com", "local part starts or ends with a dot");
        bad("anna..smith@example.com", "local part contains ..");
        ok("a.n.n.a@example.com");
    }

    #[test]
    fn the_domain() {
        bad("anna@", "empty domain");
        bad("anna@localhost", "no dot in domain");
        bad("anna@.example.com", "domain starts or ends with . or -");
        bad("anna@example.com.", "domain starts or ends with . or -");
        bad("anna@-example.com", "domain starts or ends with . or -");
        bad("anna@example.com-", "domain starts or ends with . or -");
        bad("anna@.", "domain starts or ends with . or -");
        bad("anna@example..com", "domain contains ..");
        bad("anna@exa_mple.com", "invalid character in domain");
        bad("anna@exam+ple.com", "invalid character in domain");
        bad("anna@b\u{fc}cher.de", "invalid character in domain");
        bad("anna@[127.0.0.1]", "invalid character in domain");
        bad("anna@example.com\"", "invalid character in domain");
        ok("anna@a-.b"); // only the ends of the whole domain are checked
        ok("anna@a.-b");
    }

    #[test]
    fn whitespace_and_control_characters() {
        bad("anna smith@example.com", "whitespace or control character");
        bad(" anna@example.com", "whitespace or control character");
        bad("anna@example.com ", "whitespace or control character");
        bad("anna@example.com\n", "whitespace or control character");
        bad("anna\t@example.com", "whitespace or control character");
        bad("anna\0@example.com", "whitespace or control character");
        bad("anna\x7f@example.com", "whitespace or control character");
        bad("anna\x0b@example.com", "whitespace or control character");
        // Unicode whitespace too: no-break space, ideographic space, line separator.
        bad("anna\u{a0}@example.com", "whitespace or control character");
        bad(
            "anna@example\u{3000}.com",
            "whitespace or control character",
        );
        bad(
            "anna\u{2028}@example.com",
            "whitespace or control character",
        );
        bad("anna\u{85}@example.com", "whitespace or control character");
        // A C1 control that is not whitespace is not an ASCII control: allowed in the
        // local part (and caught in the domain as a non-ASCII character).
        ok("anna\u{80}@example.com");
        bad("anna@exa\u{80}mple.com", "invalid character in domain");
    }

    #[test]
    fn the_first_failing_check_is_the_answer() {
        bad("an na", "no @");
        bad("a b@c@d", "more than one @");
        bad(" @example.com", "whitespace or control character");
        bad(".@", "local part starts or ends with a dot");
    }

    #[test]
    fn findings_for_values() {
        assert!(finding(Value::Null).is_none());
        assert!(finding(Value::Text("anna@example.com")).is_none());
        assert!(finding(Value::Text("anna")).is_some());
        assert!(finding(Value::Int(42)).is_some());
        assert!(finding(Value::Bytes(b"anna@example.com")).is_some());
    }

    #[test]
    fn the_config_schema_documents_the_column() {
        let schema = schemars::schema_for!(Config).to_value();
        let column = &schema["properties"]["column"];
        assert!(column["description"].as_str().unwrap().contains("email"));
        assert_eq!(schema["required"][0], "column");
    }
}
