//! Rows through plugins on the host's real path (`PluginSink`: rows encoded into batches,
//! each batch checked on a blocking thread, findings decoded), without a database in the
//! way, and the time to load a plugin whose compiled code is in the cache.
//!
//!     cargo bench -p trueup-core --bench plugins [-- ROWS RUNS]   (defaults: 2000000 5)
//!
//! Prints a Markdown table of medians: rows/s through the trivial plugin (tests/plugins/
//! every-nth: counts rows, reports none), rows/s through the email-syntax plugin
//! (plugins/email-syntax) and through the same check compiled natively on the same rows,
//! and the milliseconds to load a cached plugin and to start an instance.

/// The email plugin's check, the very file the plugin compiles, compiled natively here.
#[path = "../../../plugins/email-syntax/src/syntax.rs"]
mod email_syntax;
#[path = "../../../tests/support/wasm.rs"]
mod wasm;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use trueup_core::engine::{FindingSink, PluginSink};
use trueup_core::finding::{Finding, RuleSpec};
use trueup_core::load::Project;
use trueup_core::plugin::{Limits, Plugin};
use trueup_core::source::RowSink;
use trueup_core::value::Value;

/// Counts findings and drops them.
struct Count(u64);

impl FindingSink for Count {
    async fn finding(&mut self, _finding: Finding) -> trueup_core::Result<()> {
        self.0 += 1;
        Ok(())
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// One finding in a thousand rows: a malformed email.
fn rows(n: usize) -> Vec<Vec<Value>> {
    (0..n)
        .map(|i| {
            let email = match i % 1000 {
                999 => format!("customer{i}.example.com"),
                _ => format!("customer{i}@example.com"),
            };
            let id = i64::try_from(i).expect("row number");
            vec![Value::Int(id), Value::Text(email), Value::Float(1.5)]
        })
        .collect()
}

/// The rule `id` of a project whose rules use the two plugins.
fn rule(dir: &Path, every: &Path, email: &Path, id: &str) -> (Arc<RuleSpec>, Arc<Plugin>) {
    let rules = format!(
        "[[rule]]\nid = \"trivial\"\ntitle = \"t\"\nseverity = \"low\"\n[rule.detector]\nkind = \"plugin\"\n\
         plugin = \"{}\"\nquery = \"SELECT id, email, score FROM t\"\nkey = [\"id\"]\nconfig = {{ n = 1000000000 }}\n\n\
         [[rule]]\nid = \"email\"\ntitle = \"e\"\nseverity = \"low\"\n[rule.detector]\nkind = \"plugin\"\n\
         plugin = \"{}\"\nquery = \"SELECT id, email, score FROM t\"\nkey = [\"id\"]\nconfig = {{ column = \"email\" }}\n",
        every.display(),
        email.display()
    );
    std::fs::create_dir_all(dir.join("rules")).expect("rules dir");
    std::fs::write(dir.join("rules/bench.toml"), rules).expect("rules");
    std::fs::write(
        dir.join("trueup.toml"),
        "rules = [\"rules\"]\n[sources.db]\nurl = \"sqlite://unused.db\"\n",
    )
    .expect("project");
    let project = Project::load(&dir.join("trueup.toml")).expect("project loads");
    let loaded: Vec<_> = project.rules.iter().collect();
    let plan = trueup_core::engine::prepare(&project, &loaded).expect("prepare");
    let index = plan.rules.iter().position(|s| s.id == id).expect("rule");
    let plugin = plan.plugins[index]
        .clone()
        .expect("a plugin rule")
        .expect("plugin loads");
    (plan.rules[index].clone(), plugin)
}

async fn through_plugin(
    spec: &Arc<RuleSpec>,
    plugin: &Arc<Plugin>,
    rows: &[Vec<Value>],
) -> (Duration, u64) {
    let call = spec.query.plugin.as_ref().expect("plugin call");
    let mut count = Count(0);
    let started = Instant::now();
    let mut sink = PluginSink::new(
        plugin.clone(),
        spec.clone(),
        call.config.clone(),
        Limits::of_rule(&call.limits, Duration::from_secs(600)),
        &mut count,
    );
    sink.columns(vec!["id".into(), "email".into(), "score".into()])
        .expect("columns");
    for row in rows {
        sink.row(row.clone()).await.expect("row");
    }
    sink.finish().await.expect("finish");
    (started.elapsed(), count.0)
}

/// The email check, natively, on the same rows (the rows are cloned as on the plugin path,
/// where the source hands each row over by value).
fn natively(rows: &[Vec<Value>]) -> (Duration, u64) {
    let started = Instant::now();
    let mut found = 0;
    for row in rows {
        let row = std::hint::black_box(row.clone());
        if let Value::Text(email) = &row[1]
            && email_syntax::problem(email).is_some()
        {
            found += 1;
        }
    }
    (started.elapsed(), found)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let every = wasm::plugin("tests/plugins", "every_nth");
    let email = wasm::plugin("plugins", "email_syntax");
    let dir = tempfile::tempdir().expect("temp dir");
    let rows = rows(n);
    let (trivial, trivial_plugin) = rule(dir.path(), &every, &email, "trivial");
    let (check, email_plugin) = rule(dir.path(), &every, &email, "email");

    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..runs {
        let (t, found) = runtime.block_on(through_plugin(&trivial, &trivial_plugin, &rows));
        assert_eq!(found, 0);
        times[0].push(t);
        let (t, found) = runtime.block_on(through_plugin(&check, &email_plugin, &rows));
        assert_eq!(found, u64::try_from(n / 1000).expect("count"));
        times[1].push(t);
        let (t, found) = natively(&rows);
        assert_eq!(found, u64::try_from(n / 1000).expect("count"));
        times[2].push(t);
    }
    // Each run's plugin and native times are paired: the machine's noise moves both.
    let mut ratios: Vec<f64> = times[1]
        .iter()
        .zip(&times[2])
        .map(|(plugin, native)| plugin.as_secs_f64() / native.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    let [trivial_t, email_t, native_t] = times.map(median);
    let per_second = |t: Duration| {
        let rows = u32::try_from(n).expect("rows fit");
        f64::from(rows) / t.as_secs_f64() / 1e6
    };

    let load: Vec<Duration> = (0..runs.max(10))
        .map(|_| {
            let started = Instant::now();
            let plugin = Plugin::load(&email).expect("loads");
            std::hint::black_box(plugin);
            started.elapsed()
        })
        .collect();
    let start: Vec<Duration> = (0..runs.max(10))
        .map(|_| {
            let started = Instant::now();
            let instance = email_plugin
                .instantiate(Limits::of_rule(
                    &Default::default(),
                    Duration::from_secs(10),
                ))
                .expect("instantiates");
            std::hint::black_box(instance);
            started.elapsed()
        })
        .collect();
    let ms = |t: Duration| t.as_secs_f64() * 1000.0;

    println!(
        "{n} rows of (int, text, float), batches of {}; median of {runs} runs; 2 cores\n",
        trueup_core::plugin::BATCH_ROWS
    );
    println!("| what | time | rate |");
    println!("|---|---:|---:|");
    println!(
        "| trivial plugin (every-nth, no findings) | {:.3} s | {:.2}M rows/s |",
        trivial_t.as_secs_f64(),
        per_second(trivial_t)
    );
    println!(
        "| email-syntax plugin ({} findings) | {:.3} s | {:.2}M rows/s |",
        n / 1000,
        email_t.as_secs_f64(),
        per_second(email_t)
    );
    println!(
        "| the same email check, native | {:.3} s | {:.2}M rows/s |",
        native_t.as_secs_f64(),
        per_second(native_t)
    );
    println!("| plugin ÷ native (median of the runs' ratios) | {ratio:.2}× | |");
    println!(
        "| load a cached plugin (email-syntax: read, cache hit, check, describe) | {:.2} ms | |",
        ms(median(load))
    );
    println!("| start an instance | {:.3} ms | |", ms(median(start)));
}
