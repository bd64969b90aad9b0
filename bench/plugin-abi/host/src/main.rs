//! plugin-abi-bench: rows/s through a check plugin for two ABIs, (A) the component model and
//! (B) a core module with a hand-written binary batch format, each with no limit, with
//! epoch interruption and with fuel.
//!
//!   plugin-abi-bench GUEST_WIT.wasm GUEST_CORE.wasm [RUNS]
//!
//! Prints Markdown tables of medians over RUNS runs (after one warm-up run), by wall time and
//! by the CPU time of the host thread (Linux only). Every timed call starts from host rows
//! already in memory and ends with decoded findings on the host.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Instance, Memory, Module, Result, Store, TypedFunc, bail};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "checker",
    additional_derives: [PartialEq],
});

use trueup::bench::types::Value;

const ROWS: usize = 2_000_000;
const BATCH: usize = 1024;
/// Per-call limits: far more than a batch needs, they only have to be checked.
const EPOCH_DEADLINE: u64 = 100; // ticks of 10 ms
const FUEL: u64 = 1 << 40;

#[derive(Clone, Copy, PartialEq)]
enum Limit {
    None,
    Epoch,
    Fuel,
}

#[derive(Clone, Copy)]
enum Check {
    Trivial,
    Email,
}

/// Rows (id, email, amount): one id in 1000 is flagged by the trivial check, and one email
/// in 1000 is malformed (a different row).
fn rows() -> Vec<Vec<Value>> {
    (0..ROWS as i64)
        .map(|id| {
            let email = match (id % 1000 == 500, id / 1000 % 4) {
                (false, _) => format!("user{id:07}@example.com"),
                (true, 0) => format!("user{id:07}.example.com"),
                (true, 1) => format!("user {id:07}@example.com"),
                (true, 2) => format!("@{id:07}example.com"),
                (true, _) => format!("user{id:07}@localhost"),
            };
            vec![
                Value::Int(id),
                Value::Text(email),
                Value::Float(id as f64 * 0.25),
            ]
        })
        .collect()
}

fn arm<T>(store: &mut Store<T>, limit: Limit) -> Result<()> {
    match limit {
        Limit::None => {}
        Limit::Epoch => store.set_epoch_deadline(EPOCH_DEADLINE),
        Limit::Fuel => store.set_fuel(FUEL)?,
    }
    Ok(())
}

trait Plugin {
    fn check(&mut self, check: Check, rows: &[Vec<Value>]) -> Result<Vec<Finding>>;
}

/// (A): `list<row>` in, `list<finding>` out, lowered and lifted by Wasmtime.
struct WitPlugin {
    store: Store<()>,
    checker: Checker,
    limit: Limit,
}

impl WitPlugin {
    fn new(engine: &Engine, component: &Component, limit: Limit) -> Result<Self> {
        let mut linker = Linker::new(engine);
        // std on wasm32-wasip2 may import WASI functions the checks never call.
        linker.define_unknown_imports_as_traps(component)?;
        let mut store = Store::new(engine, ());
        arm(&mut store, limit)?;
        let checker = Checker::instantiate(&mut store, component, &linker)?;
        Ok(Self {
            store,
            checker,
            limit,
        })
    }
}

impl Plugin for WitPlugin {
    fn check(&mut self, check: Check, rows: &[Vec<Value>]) -> Result<Vec<Finding>> {
        arm(&mut self.store, self.limit)?;
        match check {
            Check::Trivial => self.checker.call_check_trivial(&mut self.store, rows),
            Check::Email => self.checker.call_check_email(&mut self.store, rows),
        }
    }
}

/// (B): the host encodes the batch into guest memory and decodes the findings from it.
struct CorePlugin {
    store: Store<()>,
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    trivial: TypedFunc<(u32, u32), u64>,
    email: TypedFunc<(u32, u32), u64>,
    buf: Vec<u8>,
    limit: Limit,
}

impl CorePlugin {
    fn new(engine: &Engine, module: &Module, limit: Limit) -> Result<Self> {
        let mut store = Store::new(engine, ());
        arm(&mut store, limit)?;
        let instance = Instance::new(&mut store, module, &[])?;
        let Some(memory) = instance.get_memory(&mut store, "memory") else {
            bail!("the core guest exports no memory");
        };
        Ok(Self {
            alloc: instance.get_typed_func(&mut store, "alloc")?,
            trivial: instance.get_typed_func(&mut store, "check_trivial")?,
            email: instance.get_typed_func(&mut store, "check_email")?,
            store,
            memory,
            buf: Vec::new(),
            limit,
        })
    }
}

impl Plugin for CorePlugin {
    fn check(&mut self, check: Check, rows: &[Vec<Value>]) -> Result<Vec<Finding>> {
        self.buf.clear();
        encode_batch(rows, &mut self.buf);
        let len = u32::try_from(self.buf.len())?;
        arm(&mut self.store, self.limit)?;
        let ptr = self.alloc.call(&mut self.store, len)?;
        self.memory
            .write(&mut self.store, ptr as usize, &self.buf)?;
        let func = match check {
            Check::Trivial => &self.trivial,
            Check::Email => &self.email,
        };
        let out = func.call(&mut self.store, (ptr, len))?;
        let (ptr, len) = ((out >> 32) as usize, (out & 0xffff_ffff) as usize);
        match self.memory.data(&self.store).get(ptr..ptr + len) {
            Some(bytes) => decode_findings(bytes),
            None => bail!("findings out of bounds"),
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn encode_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(0),
        Value::Int(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(2);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Decimal(s) => put_bytes(out, 3, s.as_bytes()),
        Value::Text(s) => put_bytes(out, 4, s.as_bytes()),
        Value::Boolean(b) => out.extend_from_slice(&[5, u8::from(*b)]),
        Value::Timestamp(s) => put_bytes(out, 6, s.as_bytes()),
        Value::Bytes(b) => put_bytes(out, 7, b),
    }
}

fn encode_batch(rows: &[Vec<Value>], out: &mut Vec<u8>) {
    let cols = rows.first().map_or(0, Vec::len);
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    out.extend_from_slice(&(cols as u32).to_le_bytes());
    for row in rows {
        assert_eq!(row.len(), cols, "rows of a batch have the same columns");
        row.iter().for_each(|v| encode_value(out, v));
    }
}

/// Reads the guest's output, which is not trusted: every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.0.len() {
            bail!("findings truncated");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String> {
        Ok(std::str::from_utf8(self.bytes()?)?.to_owned())
    }
    fn value(&mut self) -> Result<Value> {
        Ok(match self.take(1)?[0] {
            0 => Value::Null,
            1 => Value::Int(self.u64()? as i64),
            2 => Value::Float(f64::from_bits(self.u64()?)),
            3 => Value::Decimal(self.string()?),
            4 => Value::Text(self.string()?),
            5 => Value::Boolean(self.take(1)?[0] != 0),
            6 => Value::Timestamp(self.string()?),
            7 => Value::Bytes(self.bytes()?.to_vec()),
            tag => bail!("bad value tag {tag}"),
        })
    }
}

fn decode_findings(bytes: &[u8]) -> Result<Vec<Finding>> {
    let mut r = Reader(bytes);
    let n = r.u32()?;
    // Capacity from what the bytes can hold, not from the guest's count.
    let mut findings = Vec::with_capacity((n as usize).min(bytes.len() / 8));
    for _ in 0..n {
        let keys = r.u32()?;
        let key = (0..keys).map(|_| r.value()).collect::<Result<_>>()?;
        let message = r.string()?;
        findings.push(Finding { key, message });
    }
    Ok(findings)
}

fn engine(limit: Limit) -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(limit == Limit::Epoch);
    config.consume_fuel(limit == Limit::Fuel);
    Engine::new(&config)
}

/// This thread's time on a CPU, from the kernel's scheduler statistics. The machine may be
/// busy: CPU time is steadier than wall time then.
fn cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let Some(ns) = stat.split_whitespace().next() else {
        bail!("empty /proc/thread-self/schedstat");
    };
    Ok(Duration::from_nanos(ns.parse()?))
}

/// Wall and CPU seconds to run every row through `check`, batch by batch; checks the count
/// of findings.
fn time(plugin: &mut dyn Plugin, check: Check, rows: &[Vec<Value>]) -> Result<[f64; 2]> {
    let (wall, cpu) = (Instant::now(), cpu_time()?);
    let mut findings = Vec::new();
    for batch in rows.chunks(BATCH) {
        findings.extend(plugin.check(check, batch)?);
    }
    let secs = [
        wall.elapsed().as_secs_f64(),
        (cpu_time()? - cpu).as_secs_f64(),
    ];
    if findings.len() != ROWS / 1000 {
        bail!("{} findings, expected {}", findings.len(), ROWS / 1000);
    }
    Ok(secs)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// One Markdown table; `secs[plugin][check]` are median seconds.
fn table(plugins: &[(&str, Limit)], secs: &[[f64; 2]]) {
    println!("| ABI | limit | trivial rows/s | email rows/s | trivial overhead | email overhead |");
    println!("|---|---|---:|---:|---:|---:|");
    for (i, (abi, limit)) in plugins.iter().enumerate() {
        // The plugin without a limit of the same ABI: plugins are pushed [A, B] per limit.
        let base = secs[i % 2];
        let overhead = |j: usize| match limit {
            Limit::None => "–".to_owned(),
            _ => format!("{:+.1}%", (secs[i][j] / base[j] - 1.0) * 100.0),
        };
        let limit = match limit {
            Limit::None => "none",
            Limit::Epoch => "epoch deadline",
            Limit::Fuel => "fuel",
        };
        println!(
            "| {abi} | {limit} | {:.2}M | {:.2}M | {} | {} |",
            ROWS as f64 / secs[i][0] / 1e6,
            ROWS as f64 / secs[i][1] / 1e6,
            overhead(0),
            overhead(1),
        );
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (wit_path, core_path) = match &args[..] {
        [_, a, b] | [_, a, b, _] => (a, b),
        _ => bail!("usage: plugin-abi-bench GUEST_WIT.wasm GUEST_CORE.wasm [RUNS]"),
    };
    let runs: usize = args.get(3).map_or(Ok(5), |s| s.parse())?.max(1);
    let rows = rows();

    let limits = [Limit::None, Limit::Epoch, Limit::Fuel];
    let mut plugins: Vec<(&str, Limit, Box<dyn Plugin>)> = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut ticker = None;
    for limit in limits {
        let engine = engine(limit)?;
        if limit == Limit::Epoch {
            let (engine, stop) = (engine.clone(), stop.clone());
            ticker = Some(thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(10));
                    engine.increment_epoch();
                }
            }));
        }
        let component = Component::from_file(&engine, wit_path)?;
        if limit == Limit::None {
            let ty = component.component_type();
            let names: Vec<_> = ty.imports(&engine).map(|(name, _)| name).collect();
            eprintln!("component imports (linked as traps): {names:?}");
        }
        let module = Module::from_file(&engine, core_path)?;
        plugins.push((
            "A component",
            limit,
            Box::new(WitPlugin::new(&engine, &component, limit)?),
        ));
        plugins.push((
            "B core",
            limit,
            Box::new(CorePlugin::new(&engine, &module, limit)?),
        ));
    }

    // Both ABIs find the same findings (plugins[0] is A, plugins[1] is B, both unlimited).
    for check in [Check::Trivial, Check::Email] {
        let sample = &rows[..100_000];
        let a = plugins[0].2.check(check, sample)?;
        if a.len() != 100 || a != plugins[1].2.check(check, sample)? {
            bail!("the component and the core module disagree");
        }
    }

    // times[clock][plugin][check]: one entry per timed run; runs take turns across plugins.
    let mut times = vec![vec![[Vec::new(), Vec::new()]; plugins.len()]; 2];
    for run in 0..=runs {
        for (i, (_, _, plugin)) in plugins.iter_mut().enumerate() {
            for (j, check) in [Check::Trivial, Check::Email].into_iter().enumerate() {
                let secs = time(plugin.as_mut(), check, &rows)?;
                if run > 0 {
                    times[0][i][j].push(secs[0]);
                    times[1][i][j].push(secs[1]);
                }
            }
        }
        let warm_up = if run == 0 { " (warm-up)" } else { "" };
        eprintln!("run {run}/{runs} done{warm_up}");
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        t.join().expect("epoch ticker");
    }

    let names: Vec<_> = plugins
        .iter()
        .map(|&(abi, limit, _)| (abi, limit))
        .collect();
    for (clock, times) in ["wall time", "CPU time of the host thread"]
        .iter()
        .zip(times)
    {
        let secs: Vec<[f64; 2]> = times
            .into_iter()
            .map(|[t, e]| [median(t), median(e)])
            .collect();
        println!(
            "\nBy {clock}: {ROWS} rows of (int, ~22-byte text, float), batches of {BATCH}, median of {runs} runs\n"
        );
        table(&names, &secs);
    }
    Ok(())
}
