//! Prometheus sources: the HTTP API's instant query (`/api/v1/query`, POSTed as a form),
//! and nothing else of it, so that detection cannot change anything there.
//!
//! Each query is one connection, opened, used and dropped inside the query's own future:
//! a timeout or Ctrl-C drops the future and with it the socket, and Prometheus stops
//! evaluating a query whose client went away. The server is told the rule's timeout too
//! (`timeout=`), so it gives up on its own first. What is read of an answer is bounded
//! (`max-response` bytes, `max-series` series): past a bound the rule fails.
//!
//! URLs: `prometheus://[user:password@]host[:port][/prefix]` speaks `http` (port 9090 by
//! default), `prometheus+https://…` speaks `https` (port 443 by default). A user and
//! password are sent as basic auth.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use serde::Deserialize;

use super::{QueryError, RowSink};
use crate::compile::{PROMQL_LABELS, PROMQL_VALUE, PromqlCall};
use crate::value::Value;
use crate::{Error, Result};

/// A Prometheus HTTP API, ready to be asked.
#[derive(Clone)]
pub(super) struct Server {
    name: String,
    /// `http` or `https`.
    scheme: &'static str,
    /// `host:port`, as the errors show it.
    address: String,
    /// The path the API sits below (`/prometheus` behind a proxy), without its last `/`.
    prefix: String,
    /// `Basic …`, when the URL names a user.
    authorization: Option<hyper::header::HeaderValue>,
    connector: hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Reads the URL and asks the server the simplest query (`1`), so that a source that is
/// not there, or is not a Prometheus API, fails when it is opened, as a database does.
pub(super) async fn connect(name: &str, url: &str, connect_timeout: Duration) -> Result<Server> {
    let server = parse(name, url, connect_timeout)?;
    let limits = PromqlCall {
        query: "1".to_owned(),
        key: Vec::new(),
        max_series: 1,
        max_response: 64 * 1024,
    };
    match tokio::time::timeout(connect_timeout, server.ask(&limits, connect_timeout)).await {
        Ok(Ok(Data::Scalar(_))) => Ok(server),
        Ok(Ok(_)) => Err(server.error(
            true,
            "answered the query `1` with something other than a scalar: is it a Prometheus API?",
        )),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(Error::ConnectTimeout {
            source_name: name.to_owned(),
            address: server.address.clone(),
            limit: connect_timeout,
        }),
    }
}

/// The server a `prometheus://` URL names; an error that never quotes the URL's password.
fn parse(name: &str, url: &str, connect_timeout: Duration) -> Result<Server> {
    let bad = |why: &str| Error::UnsupportedUrl {
        source_name: name.to_owned(),
        url: format!("{} ({why})", crate::redact::redact(url)),
    };
    let parsed = url::Url::parse(url).map_err(|_| bad("not a URL"))?;
    let (scheme, default_port) = match parsed.scheme() {
        "prometheus" | "prometheus+http" => ("http", 9090),
        "prometheus+https" => ("https", 443),
        _ => return Err(bad("not a prometheus:// URL")),
    };
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a Prometheus source takes no `?` parameters"));
    }
    let address = format!("{host}:{}", parsed.port().unwrap_or(default_port));
    let authorization = match parsed.username() {
        "" => None,
        user => {
            let decode = |text: &str| {
                percent_encoding::percent_decode_str(text)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let password = decode(parsed.password().unwrap_or_default());
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{password}", decode(user)));
            let mut value = hyper::header::HeaderValue::try_from(format!("Basic {token}"))
                .map_err(|_| bad("a user or password that is not ASCII"))?;
            value.set_sensitive(true);
            Some(value)
        }
    };
    let connector =
        crate::http_client::connector(Some(connect_timeout)).map_err(|message| Error::Api {
            source_name: name.to_owned(),
            connection: true,
            message,
        })?;
    Ok(Server {
        name: name.to_owned(),
        scheme,
        address,
        prefix: parsed.path().trim_end_matches('/').to_owned(),
        authorization,
        connector,
        connect_timeout,
    })
}

/// What an answer's `data` holds.
#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Sample>),
    Scalar(serde::de::IgnoredAny),
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

/// One series of an instant vector: its labels, and its sample (`[time, "value"]`) or, for
/// a native histogram, `histogram`.
#[derive(Debug, Deserialize)]
struct Sample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(serde::de::IgnoredAny, String)>,
}

/// The API's envelope: `{"status": "success", "data": …}` or `{"status": "error", …}`.
#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl Server {
    fn error(&self, connection: bool, message: impl std::fmt::Display) -> Error {
        Error::Api {
            source_name: self.name.clone(),
            connection,
            message: format!("Prometheus at {}: {message}", self.address),
        }
    }

    /// Runs `call`'s query, its columns then each series (a row) to `sink`; gives up after
    /// `timeout`, dropping the connection.
    pub(super) async fn fetch<S: RowSink>(
        &self,
        call: &PromqlCall,
        timeout: Duration,
        sink: &mut S,
    ) -> Result<(), QueryError> {
        let data = match tokio::time::timeout(timeout, self.ask(call, timeout)).await {
            Ok(answer) => answer?,
            Err(_) => return Err(QueryError::Timeout(timeout)),
        };
        let series = match data {
            Data::Vector(series) => series,
            Data::Scalar(_) => return Err(self.shape_error("a scalar")),
            Data::Matrix(_) => return Err(self.shape_error("a range vector")),
            Data::String(_) => return Err(self.shape_error("a string")),
        };
        if series.len() > call.max_series {
            return Err(QueryError::Failed(self.error(
                false,
                format!(
                    "the query returned {} series, more than the rule's `max-series` ({}); \
                     narrow it (a higher threshold, `topk`) or raise `max-series`",
                    series.len(),
                    call.max_series
                ),
            )));
        }
        let (columns, named) = columns(call, &series).map_err(|m| self.error(false, m))?;
        sink.columns(columns.clone())?;
        for sample in series {
            let value = match &sample.value {
                Some((_, text)) => number(text),
                None => {
                    return Err(QueryError::Failed(self.error(
                        false,
                        "a series holds a native histogram, not a number: take one of it, e.g. \
                         `histogram_count(…)` or `histogram_quantile(0.99, …)`",
                    )));
                }
            };
            let mut row: Vec<Value> = columns
                .iter()
                .take(columns.len() - if named { 2 } else { 1 })
                .map(|label| Value::Text(sample.metric.get(label).cloned().unwrap_or_default()))
                .collect();
            row.push(value);
            if named {
                row.push(Value::Text(notation(&sample.metric, &call.key)));
            }
            sink.row(row).await?;
        }
        Ok(())
    }

    fn shape_error(&self, what: &str) -> QueryError {
        QueryError::Failed(self.error(
            false,
            format!("the query's value is {what}, not an instant vector"),
        ))
    }

    /// POSTs the query and reads the answer's `data`, within `call`'s bounds.
    async fn ask(&self, call: &PromqlCall, timeout: Duration) -> Result<Data> {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &call.query)
            .append_pair("timeout", &format!("{}ms", timeout.as_millis().max(1)))
            .finish();
        let path = format!("{}/api/v1/query", self.prefix);
        let uri: hyper::Uri = format!("{}://{}{path}", self.scheme, self.address)
            .parse()
            .map_err(|_| self.error(true, "its address is not a valid URL"))?;
        let mut request = hyper::Request::post(path.as_str())
            .header(hyper::header::HOST, self.address.as_str())
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(hyper::header::ACCEPT, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("trueup/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(authorization) = &self.authorization {
            request = request.header(hyper::header::AUTHORIZATION, authorization.clone());
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| self.error(false, e))?;

        let mut connector = self.connector.clone();
        let connecting = tower_service::Service::call(&mut connector, uri);
        let io = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(io)) => io,
            Ok(Err(err)) => {
                return Err(self.error(true, format!("cannot connect: {}", chain(&*err))));
            }
            Err(_) => {
                return Err(Error::ConnectTimeout {
                    source_name: self.name.clone(),
                    address: self.address.clone(),
                    limit: self.connect_timeout,
                });
            }
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| self.error(true, format!("cannot connect: {}", chain(&e))))?;
        let exchange = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| self.error(true, format!("no answer to the query: {}", chain(&e))))?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), bounded(call.max_response))
                .collect()
                .await
                .map_err(
                    |e| match e.downcast_ref::<http_body_util::LengthLimitError>() {
                        Some(_) => self.error(
                            false,
                            format!(
                                "the answer is larger than the rule's `max-response` ({}); narrow \
                             the query or raise `max-response`",
                                crate::size::ByteSize(call.max_response)
                            ),
                        ),
                        None => self.error(true, format!("the answer broke off: {}", chain(&*e))),
                    },
                )?
                .to_bytes();
            Ok::<_, Error>((status, bytes))
        };
        // The connection is driven here, not by a task of its own: dropping this future
        // closes it.
        let (exchanged, _) = tokio::join!(exchange, connection);
        let (status, bytes) = exchanged?;
        let answer: Answer = match serde_json::from_slice(&bytes) {
            Ok(answer) => answer,
            Err(_) if !status.is_success() => {
                return Err(self.error(!status.is_client_error(), format!("HTTP {status}")));
            }
            Err(err) => {
                return Err(self.error(false, format!("the answer is not the API's JSON: {err}")));
            }
        };
        match (answer.status.as_str(), answer.data) {
            ("success", Some(data)) if status.is_success() => Ok(data),
            _ => {
                let kind = answer.error_type.unwrap_or_else(|| "error".to_owned());
                let message = answer.error.unwrap_or_else(|| format!("HTTP {status}"));
                Err(self.error(false, format!("the query failed ({kind}): {message}")))
            }
        }
    }
}

/// A byte count as the body limit takes it.
fn bounded(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// An error and its causes on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let next = inner.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = inner.source();
    }
    text
}

/// The result columns: the key labels (the rule's, or every label the series have but
/// `__name__`, in name order), the value, and with a named key the series' other labels;
/// and whether the key was named.
fn columns(call: &PromqlCall, series: &[Sample]) -> Result<(Vec<String>, bool), String> {
    if !call.key.is_empty() {
        let mut columns = call.key.clone();
        columns.extend([PROMQL_VALUE.to_owned(), PROMQL_LABELS.to_owned()]);
        return Ok((columns, true));
    }
    let labels: BTreeSet<&String> = series
        .iter()
        .flat_map(|s| s.metric.keys())
        .filter(|name| *name != "__name__")
        .collect();
    if labels.contains(&PROMQL_VALUE.to_owned()) {
        return Err(format!(
            "the series have a label `{PROMQL_VALUE}`, the name of the finding's value: name \
             the rule's `key` labels"
        ));
    }
    let mut columns: Vec<String> = labels.into_iter().cloned().collect();
    columns.push(PROMQL_VALUE.to_owned());
    Ok((columns, false))
}

/// A sample's value: a number, or `NaN`, `+Inf`, `-Inf` as text (JSON has no such numbers).
fn number(text: &str) -> Value {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Value::Float(x),
        _ => Value::Text(text.to_owned()),
    }
}

/// The labels not in `key`, as PromQL writes a series: `name{a="b", c="d"}`.
fn notation(labels: &BTreeMap<String, String>, key: &[String]) -> String {
    let name = labels.get("__name__").map_or("", String::as_str);
    let rest: Vec<String> = labels
        .iter()
        .filter(|(label, _)| *label != "__name__" && !key.contains(label))
        .map(|(label, value)| {
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{label}=\"{value}\"")
        })
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_scheme_address_prefix_and_user() {
        let server = parse(
            "m",
            "prometheus://u:p%40ss@prom.internal/prometheus/",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            (
                server.scheme,
                server.address.as_str(),
                server.prefix.as_str()
            ),
            ("http", "prom.internal:9090", "/prometheus")
        );
        assert!(server.authorization.as_ref().unwrap().is_sensitive());
        let tls = parse(
            "m",
            "prometheus+https://prom.example.com",
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            (tls.scheme, tls.address.as_str()),
            ("https", "prom.example.com:443")
        );
        for bad in [
            "prometheus://",
            "prometheus://h:9090?x=1",
            "postgres://h/db",
        ] {
            let err = parse("m", bad, Duration::from_secs(1))
                .unwrap_err()
                .to_string();
            assert!(err.contains("source `m`"), "{bad}: {err}");
        }
        let err = parse(
            "m",
            "prometheus://u:hunter2@h:9090?x=1",
            Duration::from_secs(1),
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn values_and_label_notation() {
        assert_eq!(number("12.5"), Value::Float(12.5));
        assert_eq!(number("NaN"), Value::Text("NaN".to_owned()));
        assert_eq!(number("+Inf"), Value::Text("+Inf".to_owned()));
        let labels: BTreeMap<String, String> =
            [("__name__", "lag"), ("group", "g"), ("topic", "a\"b")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(
            notation(&labels, &["group".to_owned()]),
            r#"lag{topic="a\"b"}"#
        );
    }
}
