//! Webhooks: a JSON message (with a Slack-compatible `text`) POSTed when a scheduled run
//! finds new findings or a rule fails. Each schedule's messages go out in order from a task
//! of their own, each try bounded by a timeout and retried with backoff, so that a slow or
//! dead receiver never holds up a run; when messages pile up behind one, the newest are
//! dropped and said so.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::metrics::RunObservation;

/// Messages a schedule may have waiting behind the one being sent.
const QUEUE: usize = 8;

/// The wait before the second try; it doubles with each try, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Rules named in a message's `text`; the `rules` array lists them all.
const TEXT_RULES: usize = 10;

/// Where a schedule's messages go.
#[derive(Clone)]
pub struct Webhook {
    /// The URL with its secrets: never print it, print `shown`.
    url: hyper::Uri,
    /// Scheme and host only (a Slack webhook URL's path is its secret).
    pub shown: String,
    pub timeout: Duration,
    pub attempts: u32,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("url", &self.shown).finish()
    }
}

impl Webhook {
    /// A webhook to `url` (resolved, secrets and all); an error, without the URL, when it is
    /// not an http(s) URL.
    pub fn new(url: &str, timeout: Duration, attempts: u32) -> Result<Webhook, String> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| "the webhook URL is not a URL".to_owned())?;
        let scheme = uri.scheme_str().unwrap_or_default();
        if !matches!(scheme, "http" | "https") || uri.host().is_none() {
            return Err(
                "the webhook URL must start with https:// or http:// and name a host".to_owned(),
            );
        }
        let shown = format!("{scheme}://{}", uri.host().unwrap_or_default());
        Ok(Webhook {
            url: uri,
            shown,
            timeout,
            attempts: attempts.max(1),
        })
    }
}

/// What became of a message, told to whoever started the [`Notifier`] (to log it).
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The receiver took it (2xx) at this try.
    Sent { attempt: u32 },
    /// A try failed; another follows after `wait`.
    Retry {
        attempt: u32,
        why: String,
        wait: Duration,
    },
    /// The last try failed: the message is given up.
    Failed { attempt: u32, why: String },
    /// The receiver refused it (a 4xx other than 429): not tried again.
    Refused { attempt: u32, why: String },
    /// The queue was full: the message was never tried.
    Dropped,
}

/// Where [`Delivery`] events go.
pub type Report = Arc<dyn Fn(Delivery) + Send + Sync>;

/// A schedule's queue of messages to its webhook.
#[derive(Clone)]
pub struct Notifier {
    shown: String,
    queue: mpsc::Sender<Value>,
    report: Report,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("webhook", &self.shown)
            .finish()
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

impl Notifier {
    /// Starts the task that sends messages to `webhook`, telling `report` what became of
    /// each.
    pub fn start(webhook: Webhook, report: Report) -> Result<Notifier, String> {
        let (queue, mut received) = mpsc::channel::<Value>(QUEUE);
        let client = client()?;
        let notifier = Notifier {
            shown: webhook.shown.clone(),
            queue,
            report: Arc::clone(&report),
        };
        tokio::spawn(async move {
            while let Some(message) = received.recv().await {
                deliver(&client, &webhook, &message, report.as_ref()).await;
            }
        });
        Ok(notifier)
    }

    /// Scheme and host of the webhook (never its path).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Queues `message`; never waits. A full queue drops it, and says so.
    pub fn send(&self, message: Value) {
        if self.queue.try_send(message).is_err() {
            (self.report)(Delivery::Dropped);
        }
    }
}

/// A client for http and https ([`crate::http_client::connector`]).
fn client() -> Result<HttpsClient, String> {
    Ok(Client::builder(TokioExecutor::new()).build(crate::http_client::connector(None)?))
}

/// How one try ended.
enum Sent {
    Ok,
    /// Worth another try (no answer, a timeout, 5xx, 429).
    Retry(String),
    /// Not worth another (another 4xx: the receiver refuses the message).
    GiveUp(String),
}

/// Tries `message` up to `webhook.attempts` times, waiting longer after each failure.
async fn deliver(
    client: &HttpsClient,
    webhook: &Webhook,
    message: &Value,
    report: &(dyn Fn(Delivery) + Send + Sync),
) {
    let body = Bytes::from(message.to_string());
    let mut wait = FIRST_BACKOFF;
    for attempt in 1..=webhook.attempts {
        let sent = tokio::time::timeout(webhook.timeout, post(client, webhook, body.clone()));
        let outcome = sent.await.unwrap_or_else(|_| {
            Sent::Retry(format!(
                "no answer within {}",
                crate::duration::HumanDuration(webhook.timeout)
            ))
        });
        match outcome {
            Sent::Ok => return report(Delivery::Sent { attempt }),
            Sent::GiveUp(why) => return report(Delivery::Refused { attempt, why }),
            Sent::Retry(why) if attempt < webhook.attempts => {
                report(Delivery::Retry { attempt, why, wait });
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_BACKOFF);
            }
            Sent::Retry(why) => report(Delivery::Failed { attempt, why }),
        }
    }
}

async fn post(client: &HttpsClient, webhook: &Webhook, body: Bytes) -> Sent {
    let request = hyper::Request::post(webhook.url.clone())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("trueup/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(body));
    let request = match request {
        Ok(request) => request,
        Err(err) => return Sent::GiveUp(err.to_string()),
    };
    match client.request(request).await {
        Ok(response) => {
            let status = response.status();
            // Read the answer so the connection can be used again; it is not shown.
            let _ = response.into_body().collect().await;
            if status.is_success() {
                Sent::Ok
            } else if status.is_server_error() || status == hyper::StatusCode::TOO_MANY_REQUESTS {
                Sent::Retry(format!("HTTP {status}"))
            } else {
                Sent::GiveUp(format!("HTTP {status}"))
            }
        }
        // The error names the host, never the path.
        Err(err) => Sent::Retry(crate::error::chain(&err)),
    }
}

/// Whether a run is worth a message: a rule alerts (new findings, under its `alert-on`) or
/// failed.
pub fn worth_telling(observation: &RunObservation) -> bool {
    observation
        .rules
        .iter()
        .any(|r| r.alerting || r.error.is_some())
}

/// The message about `observation`: a Slack-compatible `text` and the same facts as fields.
/// `errors` gives a failed rule's message (by rule id), when known.
pub fn message(observation: &RunObservation, errors: &dyn Fn(&str) -> Option<String>) -> Value {
    let told: Vec<_> = observation
        .rules
        .iter()
        .filter(|r| r.alerting || r.error.is_some())
        .collect();
    let alerting = told.iter().filter(|r| r.alerting).count();
    let failed = told.iter().filter(|r| r.error.is_some()).count();
    let mut text = format!("trueup · {}", slack(&observation.schedule));
    if let Some(run) = observation.run {
        text.push_str(&format!(" · run {run}"));
    }
    let mut parts = Vec::new();
    if alerting > 0 {
        parts.push(format!("{alerting} rule(s) alerting"));
    }
    if failed > 0 {
        parts.push(format!("{failed} rule(s) failed"));
    }
    text.push_str(": ");
    text.push_str(&parts.join(", "));
    for rule in told.iter().take(TEXT_RULES) {
        text.push_str(&format!("\n• {} {}", rule.severity, slack(&rule.rule)));
        match (&rule.error, rule.new_findings) {
            (Some(cause), _) => text.push_str(&format!(" failed ({})", slack(cause))),
            (None, Some(new)) => {
                text.push_str(&format!(": {new} new of {} finding(s)", rule.findings));
            }
            (None, None) => text.push_str(&format!(": {} finding(s)", rule.findings)),
        }
    }
    if told.len() > TEXT_RULES {
        text.push_str(&format!("\n… and {} more", told.len() - TEXT_RULES));
    }
    let rules: Vec<Value> = told
        .iter()
        .map(|r| {
            json!({
                "rule": r.rule,
                "severity": r.severity.to_string(),
                "source": r.source,
                "findings": r.findings,
                "new_findings": r.new_findings,
                "alerting": r.alerting,
                "error": r.error,
                "error_message": r.error.as_ref().and_then(|_| errors(&r.rule)),
            })
        })
        .collect();
    let finished: jiff::Timestamp = observation
        .finished_at
        .try_into()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    json!({
        "text": text,
        "schedule": observation.schedule,
        "run": observation.run,
        "interrupted": observation.interrupted,
        "finished_at": format!("{finished:.0}"),
        "alerting": alerting,
        "failed": failed,
        "rules": rules,
    })
}

/// Text for Slack's `text`: its three control characters escaped as Slack asks, other
/// control characters shown escaped.
fn slack(text: &str) -> String {
    crate::text::escape(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_shows_its_host_only() {
        let hook = Webhook::new(
            "https://hooks.example.com/services/T0/B0/s3cret",
            Duration::from_secs(1),
            3,
        )
        .unwrap();
        assert_eq!(hook.shown, "https://hooks.example.com");
        assert!(!format!("{hook:?}").contains("s3cret"));
        assert!(Webhook::new("ftp://x/y", Duration::from_secs(1), 1).is_err());
    }

    #[test]
    fn slack_text_escapes_its_markup_and_control_characters() {
        assert_eq!(slack("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert!(!slack("x\u{1b}[2J").contains('\u{1b}'));
    }
}
