//! The command line, as clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use trueup_core::rule::Severity;

/// trueup finds and repairs inconsistent data in production databases.
///
/// Rules (TOML) pair a detector with a repair strategy; `trueup check` runs them against
/// the sources of `trueup.toml` without ever writing to them.
#[derive(Debug, Parser)]
#[command(name = "trueup", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The project file.
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "TRUEUP_PROJECT",
        default_value = "trueup.toml"
    )]
    pub project: PathBuf,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// No progress bar or chatter on stderr; errors are still printed.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and `NO_COLOR` is not set.
    Auto,
    Always,
    Never,
}

/// Output formats. stdout carries the data only; progress and logs go to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Human,
    /// JSON for programs.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter project (trueup.toml and an example rule).
    Init(InitArgs),
    /// Check the project and its rules without running any detector.
    Validate(ValidateArgs),
    /// Print the JSON Schema of rule files or of trueup.toml.
    Schema(SchemaArgs),
    /// Run the rules' detectors and report what they find. Never writes to a source.
    Check(CheckArgs),
    /// Print the SQL each rule runs, compiled for its source's dialect, without running it.
    Compile(CompileArgs),
    /// List the project's rules: id, severity, kind, source, tags and owner.
    Rules(RulesArgs),
    /// Create a demo shop (SQLite) with planted problems and check it.
    Demo(DemoArgs),
    /// List recorded runs, newest first.
    Runs(RunsArgs),
    /// Show one recorded run: its rules and findings.
    Show(ShowArgs),
    /// Compare two runs: per rule, the findings that are new, resolved and persisting.
    Diff(DiffArgs),
    /// Accept findings, so that `check --baseline` fails only on new ones.
    Baseline(BaselineArgs),
    /// Delete old runs from the state store.
    Gc(GcArgs),
    /// Write, build, test and inspect WebAssembly check plugins.
    Plugin(PluginArgs),
    /// Plan the repairs of the selected rules' findings; writes nothing to any source.
    Plan(PlanArgs),
    /// Apply a plan: in batches, each one transaction that journals every row it changes.
    Apply(ApplyArgs),
    /// Undo a repair from its journal, refusing rows changed since (unless --force).
    Undo(UndoArgs),
    /// List the repairs in the sources' journals, newest first.
    Repairs(RepairsArgs),
    /// Render a recorded run and its trend: Markdown, self-contained HTML, JSON or JUnit XML.
    Report(ReportArgs),
    /// Run the project's scheduled audits ([[schedule]]) until stopped; serve /metrics,
    /// /healthz and /runs.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to serve /metrics, /healthz and /runs on (default: `[serve] listen`, or
    /// 127.0.0.1:9464); port 0 takes a free one, which the first log line names.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// How logs on stderr are written (default: `[serve] log-format`, or text).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// This replica's name in leases and /runs (default: host, process id and start time).
    #[arg(long, value_name = "NAME")]
    pub replica: Option<String>,
}

/// How `serve` writes its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// One line an event: time, level, message, key=value fields.
    Text,
    /// JSON Lines: one object an event.
    Json,
}

/// How `plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// For people: per rule the strategy, statements, counts and first keys.
    Human,
    /// The plan file itself (JSON Lines), as `apply` takes it.
    Json,
    /// The statements each batch runs, as a SQL script to read.
    Sql,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[arg(long, value_enum, default_value_t = PlanFormat::Human)]
    pub format: PlanFormat,
    /// Write the plan file here (for `trueup apply FILE`); stdout shows the format asked for.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Plan the findings a recorded run found (`latest`, an id) whose rows still exist,
    /// instead of detecting now.
    #[arg(long, value_name = "RUN")]
    pub from_run: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file written by `trueup plan --output FILE`. Without it, the selected rules
    /// are planned and applied at once.
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Do everything, then roll back: what would change, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keys per batch; each batch is one transaction.
    #[arg(long, default_value_t = 500, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch_size: u64,
    /// Allow up to N changed rows per rule instead of the rule's `max-rows` (needs --yes).
    #[arg(long, value_name = "N", requires = "yes")]
    pub max_rows: Option<u64>,
    /// Confirm --max-rows.
    #[arg(long)]
    pub yes: bool,
    /// Commit batches even when they give other rules new findings (they are reported).
    #[arg(long)]
    pub allow_new_findings: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The repair's id, as `trueup repairs` lists it.
    pub repair: i64,
    /// The source whose journal holds it (needed when several have that id).
    #[arg(long, short = 's', value_name = "NAME")]
    pub source: Option<String>,
    /// Restore rows that changed since the repair too, overwriting those changes.
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RepairsArgs {
    /// Only this source's journal.
    #[arg(long, short = 's', value_name = "NAME")]
    pub source: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to create the project in.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Only check the files; do not connect to sources to check tables, columns and queries.
    #[arg(long)]
    pub offline: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// A rule file (rules/*.toml).
    Rules,
    /// The project file (trueup.toml).
    Project,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[arg(value_enum, default_value_t = SchemaKind::Rules)]
    pub kind: SchemaKind,
}

/// Which rules to run and how to report them.
#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Exit 1 when a finding is at least this severe (default: the project's `fail-on`).
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<Severity>,
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub format: CheckFormat,
    /// Write the output to FILE instead of stdout, whole or not at all (a temporary file
    /// renamed over FILE when the run is done).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How many finding keys to show per rule in human output.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = show_range())]
    pub show: usize,
    /// How many queries run at once (default: the project's `concurrency`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: Option<u32>,
    /// Do not record this run in the state store (.trueup/state.db).
    #[arg(long)]
    pub no_record: bool,
    /// Fail only on findings that are not in the baseline (trueup.baseline.jsonl).
    #[arg(long, visible_alias = "new-only")]
    pub baseline: bool,
    /// How many key ranges heavy rules run as, at once (default: the project's `split`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub split: Option<u32>,
    /// Write the run's Prometheus metrics to FILE (node_exporter's textfile collector), replaced atomically.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// The `schedule` label of the metrics.
    #[arg(long, value_name = "NAME", default_value = trueup_core::metrics::CHECK_SCHEDULE, requires = "metrics_file")]
    pub schedule: String,
}

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// For people.
    Human,
    /// JSON for programs, every finding.
    Json,
    /// JUnit XML: a testcase per rule, for CI.
    Junit,
    /// The report as Markdown, for a pull request or an issue.
    Markdown,
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    text.parse()
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// Only rules with this id; `prefix.*` selects ids starting with `prefix.`. Repeatable.
    #[arg(long = "rule", short = 'r', value_name = "ID")]
    pub rules: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Which rules a command takes: `--rule`, `--tag`, `--source` (none: every rule).
#[derive(Debug, Args, Clone)]
pub struct SelectArgs {
    /// Only rules with this id; `prefix.*` selects ids starting with `prefix.`. Repeatable.
    #[arg(long = "rule", short = 'r', value_name = "ID")]
    pub rules: Vec<String>,
    /// Only rules with this tag. Repeatable.
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only rules against this source. Repeatable.
    #[arg(long = "source", short = 's', value_name = "NAME")]
    pub sources: Vec<String>,
}

impl SelectArgs {
    /// The selection, as core takes it.
    pub fn selection(&self) -> trueup_core::check::Selection {
        trueup_core::check::Selection {
            rules: self.rules.clone(),
            tags: self.tags.clone(),
            sources: self.sources.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder of the demo project; created when missing, reused when present.
    #[arg(long, default_value = "trueup-demo")]
    pub dir: PathBuf,
    /// Number of orders of a new shop (customers, products and items scale with it).
    #[arg(long, default_value_t = 2000)]
    pub orders: u64,
    /// Share of rows given a planted problem, 0 to 1 (0: a handful of each kind).
    #[arg(long, default_value_t = 0.0)]
    pub problem_rate: f64,
    /// Seed of the generator: the same seed makes the same shop.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Delete and recreate the shop database even if it exists.
    #[arg(long)]
    pub fresh: bool,
    /// Only create the project and its database; do not run the check.
    #[arg(long)]
    pub no_check: bool,
    #[command(flatten)]
    pub check: CheckArgs,
}

/// A run: its id, `last` (the newest complete run) or `last~N` (N complete runs before it).
const RUN_HELP: &str = "A run id, `last` or `last~N`";

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// How many runs to list.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: i64,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(default_value = "last", help = RUN_HELP)]
    pub run: String,
    /// How many findings to show per rule in human output.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = show_range())]
    pub show: usize,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Output formats of `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Human,
    Json,
    /// A table and lists for a pull request or an issue.
    Markdown,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier run: an id, `last` or `last~N` (default: the newest complete run before
    /// TO that selected the same rules, `--rule/--tag/--source` or every rule).
    pub from: Option<String>,
    /// The later run: an id, `last` or `last~N` (default: `last`).
    pub to: Option<String>,
    /// How many new and resolved keys to show per rule (human and markdown).
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = show_range())]
    pub show: usize,
    #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
    pub format: DiffFormat,
}

/// Output formats of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Tables and lists for a pull request, an issue or a wiki page.
    Markdown,
    /// One page with no external reference: inline styles, SVG charts, sortable tables.
    Html,
    /// The report's model, for programs.
    Json,
    /// JUnit XML: one testsuite for the run, one testcase per rule.
    Junit,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(default_value = "last", help = RUN_HELP)]
    pub run: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
    /// Write the report to FILE instead of stdout, whole or not at all (a temporary file
    /// renamed over FILE).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How many runs the trend shows, this one included (0: none).
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub trend: u16,
    /// How many finding keys to show per rule.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub show: u16,
    /// A rule fails when it has a finding at least this severe (default: the project's `fail-on`).
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<Severity>,
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    #[command(subcommand)]
    pub command: BaselineCommand,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Accept every finding of a run: write them to trueup.baseline.jsonl (commit it).
    Accept {
        #[arg(default_value = "last", help = RUN_HELP)]
        run: String,
    },
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep this many newest runs.
    #[arg(long, value_name = "N")]
    pub keep: Option<u32>,
    /// Delete runs started longer ago than this, e.g. `30d`.
    #[arg(long, value_name = "AGE")]
    pub older_than: Option<trueup_core::duration::HumanDuration>,
}

#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate: a small working check, its fixtures and a README.
    New(PluginNewArgs),
    /// Build a plugin crate (or a workspace of them) to WebAssembly and check the result.
    Build(PluginBuildArgs),
    /// Run a plugin on the cases of its fixtures.toml and compare what it reports.
    ///
    /// Each `[[case]]` has a `name`, a `config`, the query's `columns`, the `key` columns and
    /// `rows`, then either `expect`, the findings in any order (`{ key = [..] }`, with
    /// `message` and `detail` when they matter), or `expect-error`, text the plugin's
    /// refusal must contain. Exits 0 when every case passes, 1 when one fails, 2 when the
    /// file is malformed or the plugin does not build.
    Test(PluginTestArgs),
    /// Show what a plugin says of itself: name, version and the JSON Schema of its config.
    Describe(PluginDescribeArgs),
}

#[derive(Debug, Args)]
pub struct PluginNewArgs {
    /// The plugin's crate name: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// The folder to create the crate in, as `DIR/NAME`.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Depend on the trueup-plugin-sdk at this path (written relative to the new crate).
    /// Without it: the SDK of the trueup checkout the crate is created in, by a relative
    /// path; outside a checkout, this trueup's tag of its git repository.
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PluginBuildArgs {
    /// A plugin crate, or a workspace of them.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PluginTestArgs {
    /// The plugin crate, with its fixtures.toml.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Test the plugin as last built; do not build it.
    #[arg(long, conflicts_with = "wasm")]
    pub no_build: bool,
    /// Test this .wasm instead of building the crate.
    #[arg(long, value_name = "FILE")]
    pub wasm: Option<PathBuf>,
    /// The fixture file (default: fixtures.toml in DIR).
    #[arg(long, value_name = "FILE")]
    pub fixtures: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PluginDescribeArgs {
    /// The plugin's .wasm file, or its crate's folder (built first, as `plugin test` does).
    pub wasm: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// `--show N` of `check`, `show` and `diff`: at most 1000 keys per rule, as `report` takes,
/// so that what is kept for people stays bounded whatever the number of findings.
fn show_range() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(0..=1000)
}
