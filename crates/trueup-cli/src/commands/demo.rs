//! `trueup demo`: the embedded default. Creates (or reuses) a SQLite shop with planted
//! problems, a project around it with the e-commerce rule pack, runs the check and says
//! whether trueup found exactly what was planted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anstream::println;
use anyhow::Context;
use trueup_core::load::Project;
use trueup_core::project::PROJECT_FILE;
use trueup_shop::{Planted, ShopSpec};

use crate::ExitStatus;
use crate::args::{CheckFormat, DemoArgs};
use crate::checking;
use crate::printer::{BOLD, DIM, ERROR, OK, Printer};

/// The e-commerce rule pack, as bundled in `rules/ecommerce/`.
const RULES: [(&str, &str); 5] = [
    (
        "orphaned-orders.toml",
        include_str!("../../../../rules/ecommerce/orphaned-orders.toml"),
    ),
    (
        "duplicate-customer-emails.toml",
        include_str!("../../../../rules/ecommerce/duplicate-customer-emails.toml"),
    ),
    (
        "order-total-matches-items.toml",
        include_str!("../../../../rules/ecommerce/order-total-matches-items.toml"),
    ),
    (
        "stock-matches-inventory.toml",
        include_str!("../../../../rules/ecommerce/stock-matches-inventory.toml"),
    ),
    (
        "completed-orders-paid.toml",
        include_str!("../../../../rules/ecommerce/completed-orders-paid.toml"),
    ),
];

const PROJECT: &str = r#"# The trueup demo: a SQLite shop with planted problems, checked by the e-commerce pack.
rules = ["rules"]

[sources.shop]
url = "sqlite://shop.db"

[defaults]
timeout = "1m"
concurrency = 4
fail-on = "low"
"#;

/// The file beside the database that records how it was generated.
const SPEC_FILE: &str = "shop.spec";

pub async fn run(args: &DemoArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir.join("rules/ecommerce"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let spec = prepare_shop(args, printer).await?;
    write_if_missing(&dir.join(PROJECT_FILE), PROJECT)?;
    for (name, text) in RULES {
        write_if_missing(&dir.join("rules/ecommerce").join(name), text)?;
    }
    if args.no_check {
        printer.status(format!(
            "demo project ready in {}; run `trueup --project {} check`",
            dir.display(),
            dir.join(PROJECT_FILE).display()
        ));
        return Ok(ExitStatus::Success);
    }

    let project = Project::load(&dir.join(PROJECT_FILE))?;
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let report = checking::execute(&project, &args.check, printer, &mut |finding| {
        let key = finding
            .key()
            .map(|(_, value)| value.to_string())
            .collect::<Vec<_>>()
            .join(",");
        found
            .entry(finding.rule.id.clone())
            .or_default()
            .insert(key);
    })
    .await?;
    let status = checking::status(&report);
    if matches!(status, ExitStatus::Error | ExitStatus::Interrupted)
        || !args.check.select.rules.is_empty()
        || !args.check.select.tags.is_empty()
    {
        return Ok(status);
    }
    let print = args.check.format == CheckFormat::Human;
    Ok(compare_with_planted(
        &Planted::for_spec(&spec),
        &found,
        dir,
        print,
    ))
}

/// Creates the shop database unless a usable one is there; returns how it was generated.
async fn prepare_shop(args: &DemoArgs, printer: &Printer) -> anyhow::Result<ShopSpec> {
    let database = args.dir.join("shop.db");
    let spec_file = args.dir.join(SPEC_FILE);
    let wanted = ShopSpec {
        orders: args.orders,
        problem_rate: args.problem_rate,
        seed: args.seed,
    };
    let existing = std::fs::read_to_string(&spec_file)
        .ok()
        .and_then(|text| parse_spec(&text));
    if let Some(spec) = existing.filter(|_| database.exists() && !args.fresh) {
        printer.status(format!(
            "reusing {} (--fresh recreates it)",
            database.display()
        ));
        if spec != wanted {
            printer.status(format!(
                "note: it was made with --orders {} --problem-rate {} --seed {}; add --fresh to use the options given now",
                spec.orders, spec.problem_rate, spec.seed
            ));
        }
        return Ok(spec);
    }
    for stale in [&database, &spec_file] {
        if stale.exists() {
            std::fs::remove_file(stale)
                .with_context(|| format!("cannot remove {}", stale.display()))?;
        }
    }
    printer.status(format!(
        "creating demo shop {} ({} orders, seed {})",
        database.display(),
        wanted.orders,
        wanted.seed
    ));
    trueup_shop::create_sqlite(&database, &wanted)
        .await
        .context("cannot create the demo shop")?;
    std::fs::write(
        &spec_file,
        format!(
            "orders={} problem-rate={} seed={}\n",
            wanted.orders, wanted.problem_rate, wanted.seed
        ),
    )?;
    Ok(wanted)
}

fn parse_spec(text: &str) -> Option<ShopSpec> {
    let mut fields = text
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='));
    let mut next = |name: &str| {
        fields
            .next()
            .filter(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    };
    Some(ShopSpec {
        orders: next("orders")?.parse().ok()?,
        problem_rate: next("problem-rate")?.parse().ok()?,
        seed: next("seed")?.parse().ok()?,
    })
}

fn write_if_missing(path: &Path, text: &str) -> anyhow::Result<()> {
    if !path.exists() {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Prints, per kind of planted problem, whether the findings were exactly the planted rows.
fn compare_with_planted(
    planted: &Planted,
    found: &BTreeMap<String, BTreeSet<String>>,
    dir: &Path,
    print: bool,
) -> ExitStatus {
    let empty = BTreeSet::new();
    let mut exact = true;
    let say = |line: String| {
        if print {
            println!("{line}");
        }
    };
    say(format!(
        "\n{BOLD}Planted in the demo shop, and what trueup found:{BOLD:#}"
    ));
    for expected in planted.expected_findings() {
        let what = expected.what;
        let got = found.get(expected.rule).unwrap_or(&empty);
        let missed = expected.keys.difference(got).count();
        let extra = got.difference(&expected.keys).count();
        let n = expected.keys.len();
        if missed == 0 && extra == 0 {
            say(format!(
                "  {OK}✓{OK:#} {n:>4} {what:<24} {DIM}all found, nothing else reported{DIM:#}"
            ));
        } else {
            exact = false;
            say(format!(
                "  {ERROR}✗{ERROR:#} {n:>4} {what:<24} {ERROR}{missed} missed, {extra} reported that were not planted{ERROR:#}"
            ));
        }
    }
    let project = dir.join(PROJECT_FILE).display().to_string();
    let database = dir.join("shop.db").display().to_string();
    if exact {
        say("\nTry next:".to_owned());
        say(format!(
            "  trueup --project {project} check --format json      every finding as JSON"
        ));
        say(format!(
            "  trueup --project {project} check --rule 'ecommerce.order-*'"
        ));
        say(format!(
            "  trueup --project {project} compile                  the SQL each rule runs"
        ));
        say(format!(
            "  sqlite3 {database} \"UPDATE orders SET total_amount = total_amount + 1 WHERE id = 10\""
        ));
        say(format!(
            "  trueup --project {project} check; trueup --project {project} diff   what the change did"
        ));
        ExitStatus::Success
    } else {
        say(format!(
            "\nThe findings differ from what was planted: was {database} changed? `trueup demo --fresh` recreates it."
        ));
        ExitStatus::Failure
    }
}
