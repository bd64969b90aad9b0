//! WebAssembly plugins: checks SQL cannot express, run sandboxed under wasmtime.
//!
//! A rule's query rows go to the plugin in batches ([`sink`]); the plugin answers with
//! findings. The contract (exported functions and wire format) lives with the SDK,
//! `trueup-plugin-sdk`; this module is the host's side of it. The sandbox: a plugin module
//! may import nothing but `trueup.panic` (no WASI: no files, network, clock, environment,
//! randomness); each rule run gets its own [`Instance`] with a time limit (epoch
//! interruption), a memory limit and an output limit, and an instance that failed is
//! dropped, never called again. One wasmtime `Engine` serves the process; compiled modules
//! are cached on disk by wasmtime's cache, keyed by the module's content, the wasmtime
//! version and the compiler settings, so a warm start does not compile.

mod instance;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use trueup_plugin_sdk::wire::Description;
use wasmtime::{Cache, CacheConfig, Config, Engine, ExternType, Module, ValType};

pub use instance::{Instance, Limits};

use crate::error::PluginFailure;
use crate::{Error, Result};

/// Memory a plugin may grow to unless its rule says otherwise.
pub const DEFAULT_MEMORY: u64 = 64 << 20;
pub use crate::rule::MIN_MEMORY;

/// Rows per batch, and the batch size (bytes) that sends a batch early. Fewer, larger
/// batches cost fewer thread hand-offs: 4096 rows checked the email plugin 20% faster than
/// 1024 (`cargo bench -p trueup-core --bench plugins`).
pub const BATCH_ROWS: usize = 4096;
/// Bytes of findings a plugin may return in one rule run unless its rule says otherwise.
pub const DEFAULT_OUTPUT: u64 = 64 << 20;
/// How often the engine's epoch advances: the resolution of time limits.
const TICK: Duration = Duration::from_millis(10);

/// The functions a plugin module exports, with their parameter and result types.
const EXPORTS: [(&str, &[ValType], &[ValType]); 6] = [
    ("trueup_interface_version", &[], &[ValType::I32]),
    ("trueup_input", &[ValType::I32], &[ValType::I32]),
    ("trueup_describe", &[], &[ValType::I64]),
    ("trueup_start", &[ValType::I32], &[ValType::I64]),
    ("trueup_check", &[ValType::I32], &[ValType::I64]),
    ("trueup_finish", &[], &[ValType::I64]),
];

/// The process's engine: epoch interruption on, a ticker thread advancing the epoch, and
/// the on-disk cache of compiled modules when a cache folder is available.
fn engine() -> Result<&'static Engine> {
    static ENGINE: OnceLock<std::result::Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.epoch_interruption(true);
            // One memory per plugin: the memory limit is per memory, so a module of a hundred
            // memories would have a hundred times the limit.
            config.wasm_multi_memory(false);
            if let Some(dir) = cache_dir() {
                let mut cache = CacheConfig::new();
                cache.with_directory(dir);
                // A cache that cannot be set up costs compile time, nothing else.
                if let Ok(cache) = Cache::new(cache) {
                    config.cache(Some(cache));
                }
            }
            let engine = Engine::new(&config).map_err(|e| format!("cannot start wasmtime: {e}"))?;
            let ticking = engine.clone();
            std::thread::Builder::new()
                .name("trueup-plugin-clock".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(TICK);
                        ticking.increment_epoch();
                    }
                })
                .map_err(|e| format!("cannot start the plugin clock: {e}"))?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|message| Error::Other(message.clone()))
}

/// Where compiled plugins are cached: `$TRUEUP_CACHE_DIR`, else `$XDG_CACHE_HOME/trueup`,
/// else `~/.cache/trueup`; then `wasmtime/`.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let root = var("TRUEUP_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("trueup")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("trueup")))?;
    Some(root.join("wasmtime"))
}

/// The plugin file a rule in `rule_file` names as `plugin`: relative to the rule file's
/// folder.
pub fn resolve(rule_file: &Path, plugin: &str) -> PathBuf {
    rule_file.parent().unwrap_or(Path::new("")).join(plugin)
}

/// A plugin module, compiled and checked: it exports the contract's functions, imports
/// nothing it may not, speaks this trueup's interface version, and described itself.
pub struct Plugin {
    pub path: PathBuf,
    pub description: Description,
    /// FNV-1a 64 of the module's bytes, in hex: a rebuilt plugin changes its rules'
    /// definitions.
    pub hash: String,
    /// SHA-256 of the module's bytes, in hex: what a rule pins it with (`sha256`).
    pub sha256: String,
    module: Module,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("name", &self.description.name)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Reads, compiles (or finds in the cache) and checks the module at `path`, then asks
    /// it to describe itself.
    pub fn load(path: &Path) -> Result<Plugin> {
        Plugin::load_pinned(path, None)
    }

    /// [`Plugin::load`], refusing ([`Error::PluginHash`]) a file whose SHA-256 is not
    /// `sha256` when it is given, before compiling or running any of it: the bytes checked
    /// are the bytes compiled.
    pub fn load_pinned(path: &Path, sha256: Option<&str>) -> Result<Plugin> {
        let shown = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let failed = |message: String| Error::Plugin {
            plugin: shown.clone(),
            failure: PluginFailure::Load,
            message,
        };
        let bytes = crate::read::bytes(path, crate::read::PLUGIN_LIMIT).map_err(|e| {
            failed(match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "{} does not exist: build the plugin (`trueup plugin build <its folder>`), or \
                     check the path, which is relative to the rule file",
                    path.display()
                ),
                _ => format!("cannot read {}: {e}", path.display()),
            })
        })?;
        let actual = sha256_hex(&bytes);
        if let Some(expected) = sha256
            && expected != actual
        {
            return Err(Error::PluginHash {
                path: path.to_owned(),
                expected: expected.to_owned(),
                actual,
            });
        }
        let module = Module::new(engine()?, &bytes).map_err(|e| {
            failed(format!(
                "{} is not a valid WebAssembly module: {}",
                path.display(),
                crate::error::chain(e.as_ref())
            ))
        })?;
        check_imports(&module).map_err(&failed)?;
        check_exports(&module).map_err(&failed)?;
        let mut instance = Instance::new(&shown, &module, Limits::for_describe())?;
        let mut description = instance.describe()?;
        description.name = instance::clean(&description.name);
        let hash = format!(
            "{:016x}",
            crate::fingerprint::Fnv::default().bytes(&bytes).finish()
        );
        Ok(Plugin {
            path: path.to_owned(),
            description,
            hash,
            sha256: actual,
            module,
        })
    }

    /// The name messages use.
    pub fn name(&self) -> &str {
        &self.description.name
    }

    /// A new instance for one rule run.
    pub fn instantiate(&self, limits: Limits) -> Result<Instance> {
        Instance::new(self.name(), &self.module, limits)
    }
}

/// SHA-256 of `bytes`, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    crate::value::hex(&sha2::Sha256::digest(bytes))
}

fn check_imports(module: &Module) -> std::result::Result<(), String> {
    for import in module.imports() {
        let allowed = import.module() == "trueup"
            && import.name() == "panic"
            && matches!(import.ty(), ExternType::Func(_));
        if !allowed {
            return Err(format!(
                "it imports `{}::{}`, which trueup does not provide: plugins run without \
                 files, network, clock or environment (build for wasm32-unknown-unknown with \
                 trueup-plugin-sdk, not for WASI)",
                import.module(),
                import.name()
            ));
        }
    }
    Ok(())
}

fn check_exports(module: &Module) -> std::result::Result<(), String> {
    for (name, params, results) in EXPORTS {
        let found = module.get_export(name);
        let ok = match &found {
            Some(ExternType::Func(ty)) => {
                ty.params()
                    .map(|p| p.to_string())
                    .eq(params.iter().map(ToString::to_string))
                    && ty
                        .results()
                        .map(|p| p.to_string())
                        .eq(results.iter().map(ToString::to_string))
            }
            _ => false,
        };
        if !ok {
            return Err(format!(
                "it does not export `{name}` as the contract says: is it a trueup plugin, built \
                 with trueup-plugin-sdk's `export!`?"
            ));
        }
    }
    match module.get_export("memory") {
        Some(ExternType::Memory(_)) => Ok(()),
        _ => Err("it exports no `memory`".to_owned()),
    }
}
