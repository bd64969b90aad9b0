//! A plugin that misbehaves on purpose, in the way its config's `mode` says, on the first
//! row it is given: the sandbox tests run it to prove that each misbehaviour fails its own
//! rule, with a message that says what happened, and nothing else.

use trueup_plugin_sdk::{Columns, Finding, Findings, Plugin, Row, export};

#[derive(serde::Deserialize, schemars::JsonSchema, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Computes for ever.
    Loop,
    /// Allocates until it can no more.
    Memory,
    /// Panics with a message.
    Panic,
    /// Reports a finding with a 2 KiB message for every row.
    Output,
    /// Tries to read /etc/passwd.
    File,
    /// Reports, from `finish`, a finding that names no row.
    Unkeyed,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    mode: Mode,
}

pub struct Hostile {
    mode: Mode,
    hoard: Vec<Vec<u8>>,
}

impl Plugin for Hostile {
    const NAME: &'static str = "hostile";
    const DESCRIPTION: &'static str = "Misbehaves on purpose (sandbox tests)";
    type Config = Config;

    fn new(config: Config, _columns: &Columns) -> Result<Self, String> {
        Ok(Hostile {
            mode: config.mode,
            hoard: Vec::new(),
        })
    }

    fn check(&mut self, row: &Row<'_>) -> Option<Finding> {
        match self.mode {
            Mode::Loop => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Mode::Memory => loop {
                self.hoard.push(vec![1; 1 << 20]);
            },
            Mode::Panic => panic!("row {} is more than I can take", row.index()),
            Mode::Output => None,
            Mode::File => {
                let text = std::fs::read_to_string("/etc/passwd").expect("reading /etc/passwd");
                Some(Finding::new(text))
            }
            Mode::Unkeyed => None,
        }
    }

    fn check_batch(&mut self, rows: &[Row<'_>], findings: &mut Findings) {
        if self.mode != Mode::Output {
            for row in rows {
                if let Some(finding) = self.check(row) {
                    findings.of_row(row, finding);
                }
            }
            return;
        }
        let big = "x".repeat(2 << 10);
        for row in rows {
            findings.of_row(row, Finding::new(big.clone()));
        }
    }

    fn finish(&mut self, findings: &mut Findings) {
        if self.mode == Mode::Unkeyed {
            findings.push(Finding::new("about no row in particular"));
        }
    }
}

export!(Hostile);
