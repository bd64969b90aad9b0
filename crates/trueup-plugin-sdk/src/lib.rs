//! The trueup plugin SDK: what a plugin author will depend on to write a check in Rust and
//! compile it to WebAssembly.
//!
//! **Placeholder.** Plugins are not implemented yet; this crate exists so that the
//! workspace has its final shape. The plugin issue defines the host/plugin contract (a
//! versioned interface: describe, configure, check batches of rows, finish) and fills this
//! crate with the trait and macro a plugin is written with. Until then, checks that SQL
//! cannot express can be written as `sql` detectors where possible.

/// The version of the host/plugin interface this SDK speaks. A host refuses plugins built
/// against another major version.
pub const INTERFACE_VERSION: u32 = 0;
