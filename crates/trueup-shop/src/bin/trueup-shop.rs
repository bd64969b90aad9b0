//! `trueup-shop`: writes the demo shop to SQLite, PostgreSQL or MySQL, or prints its planted
//! problems as JSON, for benchmarks and tests.
//!
//! ```text
//! trueup-shop load-postgres URL [OPTIONS]   load into a PostgreSQL database (tables must not exist)
//! trueup-shop load-mysql URL [OPTIONS]      load into a MySQL or MariaDB database (the same)
//! trueup-shop load-sqlite PATH [OPTIONS]    write a new SQLite file
//! trueup-shop planted [OPTIONS]             print the planted problems as JSON
//!
//! OPTIONS: --orders N (2000)  --problem-rate R (0.0)  --seed S (42)
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use trueup_shop::{Planted, ShopSpec, create_mysql, create_postgres, create_sqlite};

const USAGE: &str = "\
usage: trueup-shop load-postgres URL [OPTIONS]
       trueup-shop load-mysql URL [OPTIONS]
       trueup-shop load-sqlite PATH [OPTIONS]
       trueup-shop planted [OPTIONS]

Writes the deterministic demo shop with planted problems, or prints the planted problems
(the findings a correct check reports) as JSON.

options:
  --orders N          number of orders (default 2000; scale factor 1 is 1500000)
  --problem-rate R    fraction of rows with a planted problem (default 0.0: the minimum)
  --seed S            the seed every row derives from (default 42)";

enum Command {
    LoadPostgres(String),
    LoadMysql(String),
    LoadSqlite(String),
    Planted,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let (command, spec) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command, &spec)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                eprint!(": {cause}");
                source = cause.source();
            }
            eprintln!();
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, spec: &ShopSpec) -> trueup_shop::Result<()> {
    let start = Instant::now();
    let (planted, target) = match command {
        Command::Planted => {
            println!("{}", planted_json(&Planted::for_spec(spec)));
            return Ok(());
        }
        Command::LoadPostgres(url) => (create_postgres(&url, spec).await?, "PostgreSQL"),
        Command::LoadMysql(url) => (create_mysql(&url, spec).await?, "MySQL"),
        Command::LoadSqlite(path) => (create_sqlite(Path::new(&path), spec).await?, "SQLite"),
    };
    let plugin_findings: usize = planted
        .plugin_expected_findings()
        .iter()
        .map(|e| e.keys.len())
        .sum();
    eprintln!(
        "loaded {} orders (problem rate {}, seed {}) into {target} in {:.1} s; {} planted problems \
         for the e-commerce rules, {plugin_findings} for the check plugins",
        spec.orders,
        spec.problem_rate,
        spec.seed,
        start.elapsed().as_secs_f64(),
        planted.total()
    );
    Ok(())
}

/// `{"orphaned_orders": [...], "duplicate_emails": [...], ...}`, keys as in [`Planted`];
/// `near_duplicate_names` is a list of `[original, copy]` pairs.
fn planted_json(planted: &Planted) -> serde_json::Value {
    serde_json::json!({
        "orphaned_orders": planted.orphaned_orders,
        "duplicate_emails": planted.duplicate_emails,
        "wrong_totals": planted.wrong_totals,
        "wrong_stock": planted.wrong_stock,
        "bad_payments": planted.bad_payments,
        "malformed_emails": planted.malformed_emails,
        "near_duplicate_names": planted.near_duplicate_names,
        "bad_gtins": planted.bad_gtins,
        "price_outliers": planted.price_outliers,
    })
}

fn parse(args: &[String]) -> Result<(Command, ShopSpec), String> {
    let mut args = args.iter();
    let command = match args.next().map(String::as_str) {
        Some("load-postgres") => {
            Command::LoadPostgres(args.next().ok_or("load-postgres needs a URL")?.clone())
        }
        Some("load-mysql") => {
            Command::LoadMysql(args.next().ok_or("load-mysql needs a URL")?.clone())
        }
        Some("load-sqlite") => {
            Command::LoadSqlite(args.next().ok_or("load-sqlite needs a PATH")?.clone())
        }
        Some("planted") => Command::Planted,
        Some(other) => return Err(format!("unknown command `{other}`")),
        None => return Err("a command is needed".into()),
    };
    let mut spec = ShopSpec::demo();
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag.as_str(), None),
        };
        let value = match inline {
            Some(value) => value,
            None => args.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        let invalid = |err: &dyn std::fmt::Display| format!("invalid {name} `{value}`: {err}");
        match name {
            "--orders" => spec.orders = value.parse().map_err(|e| invalid(&e))?,
            "--seed" => spec.seed = value.parse().map_err(|e| invalid(&e))?,
            "--problem-rate" => {
                let rate: f64 = value.parse().map_err(|e| invalid(&e))?;
                if !(0.0..=1.0).contains(&rate) {
                    return Err(invalid(&"not between 0 and 1"));
                }
                spec.problem_rate = rate;
            }
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    Ok((command, spec))
}
