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
}

pub struct EveryNth {
    n: u64,
    seen: u64,
    first_again: bool,
    first: Option<trueup_plugin_sdk::Key>,
}

impl Plugin for EveryNth {
    const NAME: &'static str = "every-nth";
    const DESCRIPTION: &'static str = "Reports every nth row";
    type Config = Config;

    fn new(config: Config, _columns: &Columns) -> Result<Self, String> {
        if config.n == 0 {
            return Err("`n` must be at least 1".to_owned());
        }
        Ok(EveryNth {
            n: config.n,
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
        self.seen
            .is_multiple_of(self.n)
            .then(|| Finding::new(format!("row {}", self.seen)).detail("seen", self.seen.cast_signed()))
    }

    fn finish(&mut self, findings: &mut Findings) {
        if let Some(first) = self.first.take() {
            findings.push(Finding::new("the first row, again").key(first));
        }
    }
}

export!(EveryNth);
