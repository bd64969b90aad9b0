//! The HTTP(S) connector trueup's clients share (webhooks, Prometheus sources): rustls with
//! ring, the provider sqlx uses, and the system's root certificates (none found: `http`
//! works, `https` fails with a clear error). Redis sources over TLS use the same
//! [`tls_config`].

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

/// A connector for `http` and `https` URLs; connecting (TCP) gives up after
/// `connect_timeout` when one is given.
pub fn connector(
    connect_timeout: Option<Duration>,
) -> Result<HttpsConnector<HttpConnector>, String> {
    let config = tls_config()?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(connect_timeout);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// A TLS client configuration: rustls with ring and the system's root certificates.
pub fn tls_config() -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
