//! Renderers of a check run, one per output format. Each is a `CheckSink`: the run hands
//! each of them the same calls in the same order; they decide what a reader sees. A
//! renderer for people writes every piece of data through `trueup_core::text` (`Escaped`,
//! `markdown_code`), never raw; JSON is exact (docs/design/output-escaping.md).

mod human;
mod json;

pub use human::{HumanRenderer, contacts, plural};
pub use json::JsonRenderer;
