//! The checks of `[[schedule]]` and `[serve]` that serde cannot make: unique names, rules to
//! repair that exist and have a repair, webhook URLs, the listen address, the lease expiry.

use std::collections::HashMap;

use crate::diagnostic::{Diagnostic, FieldPath, SourceFile};
use crate::project::{ProjectFile, interpolate};
use crate::rule::LoadedRule;
use crate::suggest::did_you_mean;

/// The shortest lease expiry: renewals every third of it must fit between two runs' queries.
pub const MIN_LEASE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Adds the problems of the project's schedules and `[serve]` table to `problems`.
pub fn check(
    file: &SourceFile,
    parsed: &ProjectFile,
    rules: &[LoadedRule],
    problems: &mut Vec<Diagnostic>,
) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, schedule) in parsed.schedule.iter().enumerate() {
        let at = FieldPath::default().key("schedule").index(index);
        let name = &schedule.name;
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            problems.push(
                file.at_path(
                    &at.key("name"),
                    "a schedule's name is letters, digits, `.`, `_` and `-`",
                )
                .with_hint("write e.g. `name = \"nightly\"`"),
            );
        } else if let Some(first) = seen.insert(name, index) {
            problems.push(
                file.at_path(&at.key("name"), format!("duplicate schedule name `{name}`"))
                    .with_hint(format!("the first is schedule number {}", first + 1)),
            );
        }
        for (position, id) in schedule.repair.iter().enumerate() {
            let here = at.key("repair").index(position);
            match rules.iter().find(|r| &r.rule.id == id) {
                None => {
                    let problem = file.at_path(&here, format!("no rule has the id `{id}`"));
                    problems.push(
                        match did_you_mean(id, rules.iter().map(|r| r.rule.id.as_str())) {
                            Some(hint) => problem.with_hint(hint),
                            None => problem,
                        },
                    );
                }
                Some(rule) if rule.rule.repair.is_none() => problems.push(
                    file.at_path(&here, format!("rule `{id}` has no `[rule.repair]`"))
                        .with_hint("only a rule with a repair strategy can be repaired"),
                ),
                Some(_) => {}
            }
        }
        if let Some(webhook) = &schedule.webhook {
            let url_at = at.key("webhook").key("url");
            match interpolate(&webhook.url, |_| Some(String::new())) {
                Err(err) => {
                    problems.push(file.at_path(&url_at, err.to_string()).with_hint(err.hint()))
                }
                Ok(_) => {
                    let written = webhook.url.trim_start();
                    let scheme_ok = written.starts_with("${")
                        || written.starts_with("http://")
                        || written.starts_with("https://");
                    if !scheme_ok {
                        problems.push(
                            file.at_path(&url_at, "a webhook URL starts with https:// or http://")
                                .with_hint(
                                    "or names a variable that holds it: `${SLACK_WEBHOOK_URL}`",
                                ),
                        );
                    }
                }
            }
            if !(1..=20).contains(&webhook.attempts) {
                problems.push(file.at_path(
                    &at.key("webhook").key("attempts"),
                    "`attempts` must be from 1 to 20",
                ));
            }
            if webhook.timeout.0.is_zero() {
                problems.push(
                    file.at_path(
                        &at.key("webhook").key("timeout"),
                        "`timeout` must be more than 0",
                    )
                    .with_hint("write e.g. `10s`"),
                );
            }
        }
    }
    let serve = FieldPath::default().key("serve");
    if parsed.serve.listen.parse::<std::net::SocketAddr>().is_err() {
        problems.push(
            file.at_path(
                &serve.key("listen"),
                format!("`{}` is not an address to listen on", parsed.serve.listen),
            )
            .with_hint("write an IP address and a port, e.g. `127.0.0.1:9464` or `0.0.0.0:9464`"),
        );
    }
    if parsed.serve.lease_expiry.0 < MIN_LEASE_EXPIRY {
        problems.push(
            file.at_path(
                &serve.key("lease-expiry"),
                "`lease-expiry` must be at least 1s",
            )
            .with_hint("write e.g. `30s`"),
        );
    }
}
