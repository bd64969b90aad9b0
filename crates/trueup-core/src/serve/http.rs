//! The service's HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` and
//! `/runs` (JSON: the schedules, their next due times and the newest scheduled runs of the
//! store, every replica's).

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;

use super::log::{Level, Record};
use super::{Schedule, Service, next_due};

/// How many scheduled runs `/runs` lists unless `?limit=` says (at most [`MAX_RUNS`]).
const DEFAULT_RUNS: i64 = 50;
const MAX_RUNS: i64 = 1000;

/// How long a client may take to send its request's head.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts connections until the task is aborted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    schedules: Vec<Arc<Schedule>>,
) {
    let schedules = Arc::new(schedules);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                service.log.log(Record::new(
                    Level::Warn,
                    "http.accept",
                    format!("a connection could not be accepted: {err}"),
                ));
                // Out of file descriptors, say: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (service, schedules) = (Arc::clone(&service), Arc::clone(&schedules));
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |request| {
                let (service, schedules) = (Arc::clone(&service), Arc::clone(&schedules));
                async move { Ok::<_, Infallible>(respond(&request, &service, &schedules).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let _ = builder
                .serve_connection(TokioIo::new(stream), handler)
                .await;
        });
    }
}

async fn respond(
    request: &Request<Incoming>,
    service: &Service,
    schedules: &[Arc<Schedule>],
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/runs") {
        return text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /runs\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match path {
        "/metrics" => {
            let mut body = String::with_capacity(64 * 1024);
            match service.metrics.lock() {
                Ok(metrics) => metrics.render(&mut body),
                Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable\n"),
            }
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        _ => runs(request, service, schedules).await,
    }
}

/// `/runs`: the schedules and the newest scheduled runs.
async fn runs(
    request: &Request<Incoming>,
    service: &Service,
    schedules: &[Arc<Schedule>],
) -> Response<Full<Bytes>> {
    let limit = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("limit=")))
        .and_then(|n| n.parse::<i64>().ok())
        .unwrap_or(DEFAULT_RUNS)
        .clamp(1, MAX_RUNS);
    let runs = match service.store.scheduled_runs(limit).await {
        Ok(runs) => runs,
        Err(err) => {
            let body = json!({ "error": crate::error::chain(&err) });
            return json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
        }
    };
    let now = jiff::Timestamp::now();
    let listed: Vec<_> = schedules
        .iter()
        .map(|schedule| {
            let config = &service.project.schedules[schedule.index];
            json!({
                "name": schedule.name,
                "cron": config.cron.text,
                "time_zone": config.time_zone.as_ref().map_or("UTC", |z| z.name.as_str()),
                "next_due": next_due(config, now).map(|t| format!("{t:.0}")),
                "webhook": schedule.notifier.is_some(),
            })
        })
        .collect();
    let body = json!({
        "replica": service.replica,
        "schedules": listed,
        "runs": runs,
    });
    json_response(StatusCode::OK, &body)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
