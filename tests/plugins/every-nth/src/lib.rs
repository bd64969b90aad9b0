//! The trivial plugin: reports every `n`th row and looks at nothing else. What the
//! throughput benchmark and the contract tests run.

use trueup_plugin_sdk::{Columns, Finding, Findings, Plugin, Row, export};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Report one row in `n`.
    n: u64,
    /// Also report, from `finish`, the first row seen (to exercise keyed findings).
    #[serde(default)]
    first_again: bool,
    /// Give each finding every column of its row as detail (to check typed values).
    #[serde(default)]
    echo: bool,
}

pub struct EveryNth {
    n: u64,
    echo: Option<Vec<String>>,
    seen: u64,
    first_again: bool,
    first: Option<trueup_plugin_sdk::Key>,
}

impl Plugin for EveryNth {
    const NAME: &'static str = "every-nth";
    const DESCRIPTION: &'static str = "Reports every nth row";
    type Config = Config;

    fn new(config: Config, columns: &Columns) -> Result<Self, String> {
        if config.n == 0 {
            return Err("`n` must be at least 1".to_owned());
        }
        Ok(EveryNth {
            n: config.n,
            echo: config.echo.then(|| {
                columns
                    .names()
                    .iter()
                    .map(|name| format!("echo_{name}"))
                    .collect()
            }),
            seen: 0,
            first_again: config.first_again,
            first: None,
        })
    }

    fn check(&mut self, row: &Row<'_>) -> Option<Finding> {
        self.seen += 1;
        if self.first_again && self.first.is_none() {
            self.first = Some(row.key());
        }
        if !self.seen.is_multiple_of(self.n) {
            return None;
        }
        let mut finding =
            Finding::new(format!("row {}", self.seen)).detail("seen", self.seen.cast_signed());
        for (name, value) in self.echo.iter().flatten().zip(row.values()) {
            finding = finding.detail(name, *value);
        }
        Some(finding)
    }

    fn finish(&mut self, findings: &mut Findings) {
        if let Some(first) = self.first.take() {
            findings.push(Finding::new("the first row, again").key(first));
        }
    }
}

export!(EveryNth);
