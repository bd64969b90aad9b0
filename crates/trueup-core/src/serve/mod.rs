//! `trueup serve`: the project's scheduled audits (`[[schedule]]`) run on time, never two
//! runs of one schedule at once and, across replicas sharing a state store, each occurrence
//! once (a lease in the store); `/metrics`, `/healthz` and `/runs` over HTTP; webhooks
//! after runs that found something new or failed; a clean stop on request, the running
//! audits cancelled in their databases and recorded as interrupted. See
//! docs/design/serve.md.

mod http;
pub mod log;
mod repair;
mod run;
mod scheduler;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cancel::Cancel;
use crate::check::Selection;
use crate::load::Project;
use crate::metrics::Metrics;
use crate::notify::{Notifier, Webhook};
use crate::store::Store;
use crate::{Error, Result};
use log::{Level, Log, Record};

pub use scheduler::next_due;

/// How long a stop waits for running audits to be cancelled and recorded.
const STOP_WAIT: Duration = Duration::from_secs(4);

/// How the service runs; the rest comes from the project's `[serve]`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// This replica's name in leases and `/runs` (default: host, process id, start time).
    pub replica: Option<String>,
}

/// One schedule as the service runs it.
#[derive(Debug)]
struct Schedule {
    name: String,
    /// Its place in `project.schedules`.
    index: usize,
    selection: Selection,
    notifier: Option<Notifier>,
}

/// What every task of the service shares.
struct Service {
    project: Arc<Project>,
    store: Store,
    metrics: Mutex<Metrics>,
    replica: String,
    lease_expiry: Duration,
    log: Arc<dyn Log>,
    /// Cancelled when the service stops.
    shutdown: Cancel,
}

/// Runs the service until `shutdown` is cancelled: binds `options.listen`, runs every
/// schedule, then stops cleanly (running audits cancelled and recorded as interrupted,
/// their leases handed back). Errors before it starts (no schedule, an unknown tag, an
/// unset variable, the address in use) are returned at once.
pub async fn serve(
    project: Arc<Project>,
    options: ServeOptions,
    shutdown: Cancel,
    log: Arc<dyn Log>,
) -> Result<()> {
    if project.schedules.is_empty() {
        return Err(Error::Other(format!(
            "{} has no [[schedule]]: `trueup serve` runs scheduled audits (see docs/reference/project.md)",
            project.file.path.display()
        )));
    }
    let mut schedules = Vec::new();
    for (index, config) in project.schedules.iter().enumerate() {
        let selection = Selection {
            rules: config.rules.clone(),
            tags: config.tags.clone(),
            sources: config.sources.clone(),
        };
        let selected = selection.select(&project).map_err(|err| Error::Context {
            context: format!("schedule `{}` selects no rules", config.name),
            source: Box::new(err),
        })?;
        project.resolve_sources(&selected)?;
        let notifier = match (project.webhook_url(index)?, &config.webhook) {
            (Some(url), Some(webhook)) => {
                let hook =
                    Webhook::new(&url, webhook.timeout.0, webhook.attempts).map_err(|message| {
                        Error::Other(format!("schedule `{}`: {message}", config.name))
                    })?;
                let report = delivery_log(&config.name, &hook.shown, Arc::clone(&log));
                Some(Notifier::start(hook, report).map_err(|message| {
                    Error::Other(format!("schedule `{}`: {message}", config.name))
                })?)
            }
            _ => None,
        };
        schedules.push(Schedule {
            name: config.name.clone(),
            index,
            selection,
            notifier,
        });
    }
    project.state.resolve()?;
    let store = Store::open_location(&project.state).await?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|err| Error::Other(format!("cannot listen on {}: {err}", options.listen)))?;
    let address = listener.local_addr().unwrap_or(options.listen);

    let mut metrics = Metrics::new();
    for schedule in &schedules {
        metrics.declare(&schedule.name);
    }
    let service = Arc::new(Service {
        replica: options.replica.unwrap_or_else(replica_name),
        lease_expiry: project.serve.lease_expiry.0,
        project: Arc::clone(&project),
        store,
        metrics: Mutex::new(metrics),
        log: Arc::clone(&log),
        shutdown: shutdown.clone(),
    });
    log.log(
        Record::new(
            Level::Info,
            "serve.started",
            format!("serving on http://{address}"),
        )
        .with("address", address.to_string())
        .with("replica", service.replica.as_str())
        .with("store", project.state.to_string())
        .with("schedules", schedules.len()),
    );

    let schedules: Vec<Arc<Schedule>> = schedules.into_iter().map(Arc::new).collect();
    let server = tokio::spawn(http::serve(
        listener,
        Arc::clone(&service),
        schedules.clone(),
    ));
    let loops: Vec<_> = schedules
        .iter()
        .map(|schedule| tokio::spawn(scheduler::run(Arc::clone(&service), Arc::clone(schedule))))
        .collect();

    shutdown.cancelled().await;
    log.log(Record::new(
        Level::Info,
        "serve.stopping",
        "stopping: running audits are cancelled and recorded as interrupted",
    ));
    let stopped = tokio::time::timeout(STOP_WAIT, futures_util::future::join_all(loops)).await;
    if stopped.is_err() {
        log.log(Record::new(
            Level::Warn,
            "serve.stop-timeout",
            format!(
                "audits did not stop within {}; exiting anyway",
                crate::duration::HumanDuration(STOP_WAIT)
            ),
        ));
    }
    server.abort();
    service.store.close().await;
    log.log(Record::new(Level::Info, "serve.stopped", "stopped"));
    Ok(())
}

/// Log records of what became of `schedule`'s webhook messages.
fn delivery_log(schedule: &str, shown: &str, log: Arc<dyn Log>) -> crate::notify::Report {
    let (schedule, shown) = (schedule.to_owned(), shown.to_owned());
    Arc::new(move |delivery| {
        use crate::notify::Delivery;
        let (level, event, message, attempt) = match delivery {
            Delivery::Sent { attempt } => (
                Level::Info,
                "webhook.sent",
                "webhook message sent".to_owned(),
                Some(attempt),
            ),
            Delivery::Retry { attempt, why, wait } => (
                Level::Warn,
                "webhook.retry",
                format!(
                    "webhook try failed, next in {}: {why}",
                    crate::duration::HumanDuration(wait)
                ),
                Some(attempt),
            ),
            Delivery::Failed { attempt, why } => (
                Level::Error,
                "webhook.failed",
                format!("the webhook message was given up after {attempt} tries: {why}"),
                Some(attempt),
            ),
            Delivery::Refused { attempt, why } => (
                Level::Error,
                "webhook.refused",
                format!("the webhook refused the message: {why}"),
                Some(attempt),
            ),
            Delivery::Dropped => (
                Level::Warn,
                "webhook.dropped",
                "a webhook message was dropped: earlier ones are still being tried".to_owned(),
                None,
            ),
        };
        let mut record = Record::new(level, event, message)
            .with("schedule", schedule.as_str())
            .with("webhook", shown.as_str());
        if let Some(attempt) = attempt {
            record = record.with("attempt", attempt);
        }
        log.log(record);
    })
}

/// This replica's default name: its host, process id and start time, unique enough that
/// two replicas never share one.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_owned());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        crate::time::now_millis()
    )
}
