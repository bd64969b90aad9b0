//! Feeding a rule's rows to its plugin: rows are encoded into batches as they stream from
//! the database, each batch is checked on a blocking thread (plugin code is CPU work), and
//! the plugin's findings become the rule's.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use trueup_plugin_sdk::wire::{self, FindingAt, Start, WireFinding};

use crate::finding::{Finding, RuleSpec, Shape};
use crate::plugin::{BATCH_ROWS, Instance, Limits, Plugin};
use crate::source::RowSink;
use crate::value::Value;
use crate::{Error, Result};

/// The batch size (bytes) that sends a batch before it has [`BATCH_ROWS`] rows.
const BATCH_BYTES: usize = 1 << 20;
/// Bytes of a batch's header (rows, columns), written when the batch is sent.
const HEADER: usize = 8;
/// Most detail columns a finding may have, and most distinct sets of detail columns a rule's
/// findings may have: past them the plugin's output is garbage, and the rule fails.
const MAX_DETAILS: usize = 256;
const MAX_SHAPES: usize = 1024;

/// Where a rule's findings go.
pub trait FindingSink: Send {
    fn finding(&mut self, finding: Finding) -> impl Future<Output = Result<()>> + Send;
}

/// A [`RowSink`] that hands rows to a plugin and its findings to `out`. Call
/// [`PluginSink::finish`] after the query's last row.
pub struct PluginSink<'a, S> {
    plugin: Arc<Plugin>,
    rule: Arc<RuleSpec>,
    config: serde_json::Map<String, serde_json::Value>,
    limits: Limits,
    /// The instance while no batch is in flight: `None` before the first batch.
    instance: Option<Instance>,
    /// The batch the plugin is checking, with the instance.
    in_flight: Option<InFlight>,
    /// The buffer of the batch checked last, to fill again.
    spare: Option<wire::Writer>,
    columns: Option<Vec<String>>,
    /// Positions of the key columns in the query's columns.
    key: Vec<usize>,
    /// The batch being filled, after room for its header.
    batch: wire::Writer,
    /// Each row of the batch's key values, for the findings about it.
    keys: Keys,
    /// The shapes of findings so far, by their detail columns.
    shapes: HashMap<Vec<String>, Arc<Shape>>,
    /// Stops the plugin's current call if this sink is dropped before it lands (its rule
    /// was abandoned: a timeout, a closed output).
    cancel: Option<Arc<AtomicBool>>,
    out: &'a mut S,
}

impl<S> Drop for PluginSink<'_, S> {
    fn drop(&mut self) {
        if let Some(cancel) = &self.cancel {
            cancel.store(true, Ordering::Relaxed);
        }
    }
}

/// The key values of a batch's rows, one after the other (no allocation per row).
#[derive(Default)]
struct Keys {
    values: Vec<Value>,
    rows: usize,
}

impl Keys {
    fn of_row(&self, row: usize, key_len: usize) -> Option<Vec<Value>> {
        let start = row.checked_mul(key_len)?;
        (row < self.rows).then(|| {
            self.values
                .get(start..start + key_len)
                .map(<[Value]>::to_vec)
        })?
    }
}

/// A batch being checked on a blocking thread, and its rows' keys.
struct InFlight {
    task: tokio::task::JoinHandle<(Instance, wire::Writer, Result<Vec<Owned>>)>,
    keys: Keys,
}

/// A finding read out of the plugin's memory.
struct Owned {
    at: Result<usize, Vec<Value>>,
    message: String,
    detail: Vec<(String, Value)>,
}

impl<'a, S: FindingSink> PluginSink<'a, S> {
    pub fn new(
        plugin: Arc<Plugin>,
        rule: Arc<RuleSpec>,
        config: serde_json::Map<String, serde_json::Value>,
        limits: Limits,
        out: &'a mut S,
    ) -> Self {
        PluginSink {
            plugin,
            rule,
            config,
            limits,
            instance: None,
            in_flight: None,
            spare: None,
            columns: None,
            key: Vec::new(),
            batch: wire::Writer {
                buf: vec![0; HEADER],
            },
            keys: Keys::default(),
            shapes: HashMap::new(),
            cancel: None,
            out,
        }
    }

    fn failed(&self, message: String) -> Error {
        Error::Plugin {
            plugin: self.plugin.name().to_owned(),
            failure: crate::error::PluginFailure::BadReply,
            message,
        }
    }

    /// Makes the instance and starts it with the config and the columns.
    async fn start(&mut self) -> Result<()> {
        let columns = self.columns.clone().unwrap_or_default();
        let start = Start {
            config: serde_json::Value::Object(self.config.clone()),
            key: self.rule.query.key.clone(),
            columns,
        };
        let (plugin, limits) = (self.plugin.clone(), self.limits);
        let instance = blocking(move || {
            let mut instance = plugin.instantiate(limits)?;
            instance.start(&start)?;
            Ok(instance)
        })
        .await?;
        self.cancel = Some(instance.canceller());
        self.instance = Some(instance);
        Ok(())
    }

    /// Sends the rows batched so far to the plugin, and returns while it checks them: the
    /// next batch fills meanwhile. The batch sent before is landed first (its findings
    /// emitted), so findings keep their order and the plugin has one batch at a time.
    async fn flush(&mut self) -> Result<()> {
        if self.keys.rows == 0 {
            return Ok(());
        }
        let mut instance = self.take_instance().await?;
        let columns = self.columns.as_ref().map_or(0, Vec::len);
        let mut header = wire::Writer::new();
        wire::batch_header(&mut header, self.keys.rows, columns);
        let spare = self.spare.take().unwrap_or_else(|| wire::Writer {
            buf: vec![0; HEADER],
        });
        let mut batch = std::mem::replace(&mut self.batch, spare);
        batch.buf[..HEADER].copy_from_slice(&header.buf);
        let keys = std::mem::take(&mut self.keys);
        let task = tokio::task::spawn_blocking(move || {
            let found = instance.check(&batch.buf, |findings| owned(&findings));
            batch.buf.truncate(HEADER);
            (instance, batch, found)
        });
        self.in_flight = Some(InFlight { task, keys });
        Ok(())
    }

    /// The instance, once the batch in flight (if any) has landed: its findings emitted.
    /// Starts the instance if there is none yet.
    async fn take_instance(&mut self) -> Result<Instance> {
        if let Some(in_flight) = self.in_flight.take() {
            let (instance, batch, found) = in_flight.task.await.map_err(thread_stopped)?;
            self.spare = Some(batch);
            // On an error the instance is dropped here, never called again.
            let found = found?;
            self.emit(found, &in_flight.keys).await?;
            return Ok(instance);
        }
        if self.instance.is_none() {
            self.start().await?;
        }
        Ok(self.instance.take().expect("started above"))
    }

    /// Checks the last rows, then lets the plugin report across rows. With no rows at all
    /// the plugin is started all the same, so that a bad config fails the rule.
    pub async fn finish(mut self) -> Result<()> {
        self.flush().await?;
        let mut instance = self.take_instance().await?;
        let found = blocking(move || instance.finish(|findings| owned(&findings))).await?;
        self.emit(found, &Keys::default()).await
    }

    async fn emit(&mut self, found: Vec<Owned>, keys: &Keys) -> Result<()> {
        let key_len = self.key.len();
        for finding in found {
            let mut values = match finding.at {
                Ok(row) => keys.of_row(row, key_len).ok_or_else(|| {
                    self.failed(format!(
                        "returned a finding about row {row} of a batch of {}",
                        keys.rows
                    ))
                })?,
                Err(key) if key.len() == key_len => key,
                Err(key) => {
                    return Err(self.failed(format!(
                        "returned a finding with {} key value(s); the rule's key has {key_len} column(s)",
                        key.len()
                    )));
                }
            };
            if finding.detail.len() > MAX_DETAILS {
                return Err(self.failed(format!(
                    "returned a finding with {} detail columns; at most {MAX_DETAILS} are taken",
                    finding.detail.len()
                )));
            }
            let mut detail_names = Vec::with_capacity(finding.detail.len());
            let mut seen = HashSet::with_capacity(finding.detail.len());
            for (name, value) in finding.detail {
                // A detail named like a key column or an earlier detail is left out: the
                // finding's columns must have distinct names.
                if !self.rule.query.key.contains(&name) && seen.insert(name.clone()) {
                    detail_names.push(name);
                    values.push(value);
                }
            }
            let shape = self.shape(detail_names)?;
            self.out
                .finding(Finding {
                    rule: self.rule.clone(),
                    shape,
                    values,
                    message: Some(finding.message),
                })
                .await?;
        }
        Ok(())
    }

    /// The shape of findings with these detail columns.
    fn shape(&mut self, detail: Vec<String>) -> Result<Arc<Shape>> {
        if let Some(shape) = self.shapes.get(&detail) {
            return Ok(shape.clone());
        }
        if self.shapes.len() >= MAX_SHAPES {
            return Err(self.failed(format!(
                "returned findings with more than {MAX_SHAPES} different sets of detail columns"
            )));
        }
        let key = &self.rule.query.key;
        let columns: Vec<String> = key.iter().chain(&detail).cloned().collect();
        let shape = Arc::new(Shape {
            key: (0..key.len()).collect(),
            detail: (key.len()..columns.len()).collect(),
            columns,
        });
        self.shapes.insert(detail, shape.clone());
        Ok(shape)
    }
}

impl<S: FindingSink> RowSink for PluginSink<'_, S> {
    fn columns(&mut self, names: Vec<String>) -> Result<()> {
        // The rows' own shape: where their key columns are (a missing one is an error).
        self.key = Shape::new(names.clone(), &self.rule.query)?.key;
        self.columns = Some(names);
        Ok(())
    }

    async fn row(&mut self, values: Vec<Value>) -> Result<()> {
        self.keys
            .values
            .extend(self.key.iter().map(|&i| values[i].clone()));
        self.keys.rows += 1;
        for value in &values {
            self.batch.value(value.to_wire());
        }
        if self.keys.rows >= BATCH_ROWS || self.batch.buf.len() >= BATCH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }
}

/// Runs plugin code on tokio's blocking threads, off the threads that stream rows.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(thread_stopped)?
}

fn thread_stopped(error: tokio::task::JoinError) -> Error {
    Error::Other(format!("the plugin's thread stopped: {error}"))
}

fn owned(findings: &[WireFinding<'_>]) -> Vec<Owned> {
    findings
        .iter()
        .map(|f| Owned {
            at: match &f.at {
                FindingAt::Row(row) => Ok(*row),
                FindingAt::Key(key) => Err(key.iter().map(|v| Value::from_wire(*v)).collect()),
            },
            message: f.message.to_owned(),
            detail: f
                .detail
                .iter()
                .map(|(name, value)| ((*name).to_owned(), Value::from_wire(*value)))
                .collect(),
        })
        .collect()
}
