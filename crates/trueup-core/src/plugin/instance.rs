//! One plugin instance, for one rule run: its store with limits, and the calls of the
//! contract. Any failure (a trap, a limit, a malformed reply) poisons the instance: it is
//! never called again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use trueup_plugin_sdk::INTERFACE_VERSION;
use trueup_plugin_sdk::wire::{self, Description, Start, WireFinding};
use wasmtime::{
    Caller, Linker, Memory, Module, ResourceLimiter, Store, Trap, TypedFunc, UpdateDeadline,
    WasmParams, WasmResults,
};

use super::{DEFAULT_MEMORY, DEFAULT_OUTPUT, engine};
use crate::error::PluginFailure;
use crate::size::ByteSize;
use crate::{Error, Result};

/// Longest message from a plugin kept (a panic, an error reply, its name), in bytes.
const MESSAGE_MAX: usize = 4096;

/// What one instance may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time in plugin code, all calls together.
    pub time: Duration,
    /// Linear memory, in bytes.
    pub memory: u64,
    /// Bytes of replies, all calls together.
    pub output: u64,
    /// Whether a rule set these (messages then say which of its limits to raise).
    pub from_rule: bool,
}

impl Limits {
    /// The limits a rule asks for, with defaults; `timeout` is the rule's.
    pub fn of_rule(limits: &crate::rule::PluginLimits, timeout: Duration) -> Limits {
        Limits {
            time: limits.time.map_or(timeout, |t| t.0),
            memory: limits.memory.map_or(DEFAULT_MEMORY, |m| m.0),
            output: limits.output.map_or(DEFAULT_OUTPUT, |o| o.0),
            from_rule: true,
        }
    }

    /// For loading a plugin: it only describes itself.
    pub(super) fn for_describe() -> Limits {
        Limits {
            time: Duration::from_secs(5),
            memory: DEFAULT_MEMORY,
            output: 1 << 20,
            from_rule: false,
        }
    }
}

/// The store's data: the memory limiter and what the plugin said when it panicked.
struct State {
    /// When the current call must end: checked on every epoch tick.
    deadline: Instant,
    /// Set when the instance's rule is abandoned: the current call stops at the next tick.
    cancelled: Arc<AtomicBool>,
    memory_limit: u64,
    /// The size the plugin asked to grow its memory to, past the limit.
    denied_memory: Option<usize>,
    panic: Option<String>,
}

impl ResourceLimiter for State {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if u64::try_from(desired).unwrap_or(u64::MAX) > self.memory_limit {
            self.denied_memory = Some(desired);
            // An error traps at once, where `false` would let the plugin's allocator fail
            // with a message of its own that nobody sees.
            return Err(wasmtime::format_err!("memory limit"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A plugin instance: call [`Instance::start`], [`Instance::check`] per batch, then
/// [`Instance::finish`].
pub struct Instance {
    name: String,
    store: Store<State>,
    memory: Memory,
    input: TypedFunc<u32, u32>,
    version: TypedFunc<(), u32>,
    describe: TypedFunc<(), u64>,
    start: TypedFunc<u32, u64>,
    check: TypedFunc<u32, u64>,
    finish: TypedFunc<(), u64>,
    limits: Limits,
    spent: Duration,
    output: u64,
    /// How and why the instance failed, once it has.
    failed: Option<(PluginFailure, String)>,
    /// Whether the plugin itself replied with an error (it refused a config, say), rather
    /// than trapping or going past a limit.
    refused: bool,
}

impl Instance {
    pub(super) fn new(name: &str, module: &Module, limits: Limits) -> Result<Instance> {
        let failed = |message: String| Error::Plugin {
            plugin: name.to_owned(),
            failure: PluginFailure::Load,
            message,
        };
        let engine = engine()?;
        let mut store = Store::new(
            engine,
            State {
                deadline: Instant::now() + limits.time,
                cancelled: Arc::new(AtomicBool::new(false)),
                memory_limit: limits.memory,
                denied_memory: None,
                panic: None,
            },
        );
        store.limiter(|state| state);
        // Every tick (10 ms) the call is looked at: past its deadline it traps as an
        // interrupt; a cancelled one stops too.
        store.epoch_deadline_callback(|context| {
            let state = context.data();
            if state.cancelled.load(Ordering::Relaxed) {
                return Err(wasmtime::format_err!("cancelled: its rule was stopped"));
            }
            if Instant::now() >= state.deadline {
                return Err(Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::Continue(1))
        });
        store.set_epoch_deadline(1);
        let instantiating = Instant::now();
        let mut linker = Linker::new(engine);
        linker
            .func_wrap("trueup", "panic", record_panic)
            .map_err(|e| failed(e.to_string()))?;
        let instance = linker.instantiate(&mut store, module).map_err(|e| {
            failed(format!(
                "cannot start: {}",
                describe_error(&store, &e, limits).1
            ))
        })?;
        // A module's start function ran in there: its time counts.
        let spent = instantiating.elapsed();
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| failed("it exports no `memory`".to_owned()))?;
        macro_rules! func {
            ($name:literal) => {
                instance
                    .get_typed_func(&mut store, $name)
                    .map_err(|e| failed(format!("`{}`: {e}", $name)))?
            };
        }
        let mut instance = Instance {
            name: name.to_owned(),
            memory,
            input: func!("trueup_input"),
            version: func!("trueup_interface_version"),
            describe: func!("trueup_describe"),
            start: func!("trueup_start"),
            check: func!("trueup_check"),
            finish: func!("trueup_finish"),
            store,
            limits,
            spent,
            output: 0,
            failed: None,
            refused: false,
        };
        let version = instance.call(instance.version.clone(), ())?;
        if version != INTERFACE_VERSION {
            return Err(failed(format!(
                "it was built for plugin interface version {version}, but this trueup speaks version \
                 {INTERFACE_VERSION}: rebuild it against the trueup-plugin-sdk of this trueup"
            )));
        }
        Ok(instance)
    }

    /// What the plugin says of itself.
    pub fn describe(&mut self) -> Result<Description> {
        let reply = self.call(self.describe.clone(), ())?;
        let json = self.reply(reply, |payload| payload.to_vec())?;
        serde_json::from_slice(&json).map_err(|e| {
            self.fail(
                PluginFailure::BadReply,
                format!("its description is not valid: {e}"),
            )
        })
    }

    /// Hands the plugin its config and the query's columns. The plugin's refusal (a bad
    /// config, a missing column) is the error.
    pub fn start(&mut self, start: &Start) -> Result<()> {
        let json = serde_json::to_vec(start).map_err(|e| Error::Other(e.to_string()))?;
        let len = self.write_input(&json)?;
        let reply = self.call(self.start.clone(), len)?;
        self.reply(reply, |_| ())
    }

    /// Checks a batch (wire format); `read` gets the findings.
    pub fn check<T>(
        &mut self,
        batch: &[u8],
        read: impl FnOnce(Vec<WireFinding<'_>>) -> T,
    ) -> Result<T> {
        let len = self.write_input(batch)?;
        let reply = self.call(self.check.clone(), len)?;
        self.findings(reply, read)
    }

    /// Ends the run; `read` gets the findings across rows.
    pub fn finish<T>(&mut self, read: impl FnOnce(Vec<WireFinding<'_>>) -> T) -> Result<T> {
        let reply = self.call(self.finish.clone(), ())?;
        self.findings(reply, read)
    }

    /// Whether the last error was the plugin's own reply (a config it refuses, say) rather
    /// than a trap or a limit.
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// A flag that, once set, stops the instance's current call at the next tick: for a
    /// rule abandoned while its plugin computes on another thread.
    pub fn canceller(&self) -> Arc<AtomicBool> {
        self.store.data().cancelled.clone()
    }

    /// Time spent in plugin code so far.
    pub fn spent(&self) -> Duration {
        self.spent
    }

    fn findings<T>(
        &mut self,
        reply: u64,
        read: impl FnOnce(Vec<WireFinding<'_>>) -> T,
    ) -> Result<T> {
        let decoded = self.reply(reply, |payload| {
            wire::decode_findings(payload)
                .map(read)
                .map_err(|e| e.to_string())
        })?;
        decoded.map_err(|e| {
            self.fail(
                PluginFailure::BadReply,
                format!("returned findings trueup cannot read: {e}"),
            )
        })
    }

    fn fail(&mut self, failure: PluginFailure, message: String) -> Error {
        self.failed = Some((failure, message.clone()));
        Error::Plugin {
            plugin: self.name.clone(),
            failure,
            message,
        }
    }

    /// Calls `func` within the time left; a failure poisons the instance.
    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        func: TypedFunc<P, R>,
        params: P,
    ) -> Result<R> {
        if let Some((failure, failed)) = &self.failed {
            return Err(Error::Plugin {
                plugin: self.name.clone(),
                failure: *failure,
                message: format!("not called again after it failed: {failed}"),
            });
        }
        let left = self.limits.time.saturating_sub(self.spent);
        self.store.data_mut().deadline = Instant::now() + left;
        self.store.set_epoch_deadline(1);
        let started = Instant::now();
        let result = func.call(&mut self.store, params);
        self.spent += started.elapsed();
        result.map_err(|e| {
            let (failure, message) = describe_error(&self.store, &e, self.limits);
            self.fail(failure, message)
        })
    }

    /// Copies `bytes` into the plugin's input buffer; returns their length.
    fn write_input(&mut self, bytes: &[u8]) -> Result<u32> {
        let len = u32::try_from(bytes.len()).map_err(|_| {
            self.fail(
                PluginFailure::BadReply,
                "an input of 4 GiB or more".to_owned(),
            )
        })?;
        let at = self.call(self.input.clone(), len)?;
        let at = usize::try_from(at).unwrap_or(usize::MAX);
        self.memory.write(&mut self.store, at, bytes).map_err(|_| {
            self.fail(
                PluginFailure::BadReply,
                "gave an input buffer outside its memory".to_owned(),
            )
        })?;
        Ok(len)
    }

    /// Reads the reply at `packed` (`ptr << 32 | len`) in place: `Ok` payloads go to `read`,
    /// the plugin's error replies become the error.
    fn reply<T>(&mut self, packed: u64, read: impl FnOnce(&[u8]) -> T) -> Result<T> {
        let len = packed & 0xffff_ffff;
        let at = usize::try_from(packed >> 32).unwrap_or(usize::MAX);
        self.output += len;
        if self.output > self.limits.output {
            return Err(self.fail(
                PluginFailure::BadReply,
                format!(
                    "returned more than its output limit of {} (raise `limits.output` on the rule)",
                    ByteSize(self.limits.output)
                ),
            ));
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let data = self.memory.data(&self.store);
        let Some(bytes) = at.checked_add(len).and_then(|end| data.get(at..end)) else {
            return Err(self.fail(
                PluginFailure::BadReply,
                format!("returned a reply outside its memory ({len} bytes at {at})"),
            ));
        };
        match wire::split_reply(bytes) {
            Ok(Ok(payload)) => Ok(read(payload)),
            Ok(Err(message)) => {
                self.refused = true;
                Err(self.fail(PluginFailure::Refused, clean(&message)))
            }
            Err(malformed) => {
                let message = format!("returned a malformed reply: {malformed}");
                Err(self.fail(PluginFailure::BadReply, message))
            }
        }
    }
}

/// A plugin's text made fit for a message: at most [`MESSAGE_MAX`] bytes, control
/// characters shown as spaces.
pub(super) fn clean(text: &str) -> String {
    let mut end = text.len().min(MESSAGE_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cleaned: String = text[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if end < text.len() {
        cleaned.push('…');
    }
    cleaned
}

/// `trueup.panic(ptr, len)`: keeps the message for the error that follows.
fn record_panic(mut caller: Caller<'_, State>, ptr: u32, len: u32) {
    let message = caller
        .get_export("memory")
        .and_then(wasmtime::Extern::into_memory)
        .and_then(|memory| {
            let data = memory.data(&caller);
            let at = usize::try_from(ptr).ok()?;
            let len = usize::try_from(len).ok()?.min(MESSAGE_MAX);
            data.get(at..at.checked_add(len)?)
                .map(|bytes| clean(&String::from_utf8_lossy(bytes)))
        })
        .unwrap_or_else(|| "(its message could not be read)".to_owned());
    caller.data_mut().panic = Some(message);
}

/// How a call failed (a limit, a panic, a trap), and why in words.
fn describe_error(
    store: &Store<State>,
    error: &wasmtime::Error,
    limits: Limits,
) -> (PluginFailure, String) {
    let state = store.data();
    // Which limit to raise, when a rule set it (loading and `plugin test` have fixed ones).
    let raise = |field: &str| match limits.from_rule {
        true => format!("; raise `limits.{field}` on the rule"),
        false => String::new(),
    };
    if let Some(desired) = state.denied_memory {
        return (
            PluginFailure::OutOfMemory,
            format!(
                "went past its memory limit of {} (it asked for {}{})",
                ByteSize(limits.memory),
                ByteSize(u64::try_from(desired).unwrap_or(u64::MAX)),
                raise("memory")
            ),
        );
    }
    let trapped = |message: String| (PluginFailure::Trapped, message);
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => (
            PluginFailure::OutOfTime,
            format!(
                "ran past its time limit of {} and was stopped{}",
                crate::duration::HumanDuration(limits.time),
                raise("time")
            ),
        ),
        _ if state.panic.is_some() => trapped(format!(
            "panicked: {}",
            state.panic.as_deref().unwrap_or_default()
        )),
        Some(Trap::StackOverflow) => trapped("overflowed its stack".to_owned()),
        Some(trap) => trapped(format!("trapped: {trap}")),
        None => trapped(crate::error::chain(error.as_ref())),
    }
}
