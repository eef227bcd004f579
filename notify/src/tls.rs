//! TLS for `https://` webhooks and SMTP STARTTLS: rustls (ring) with the system's roots
//! (`SSL_CERT_FILE` / `SSL_CERT_DIR` name others).

use std::sync::{Arc, LazyLock};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::SendError;

/// A byte stream: a TCP connection, or TLS over one.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

static CONNECTOR: LazyLock<TlsConnector> = LazyLock::new(|| {
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("TLS roots: {e}");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("TLS roots: none found: https:// and STARTTLS receivers will be refused");
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
});

/// TLS over `stream` to `host`, its certificate checked.
pub(crate) async fn connect(host: &str, stream: Box<dyn Io>) -> Result<Box<dyn Io>, SendError> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| SendError::permanent(format!("\"{host}\" is not a TLS server name")))?;
    let tls = CONNECTOR
        .connect(name, stream)
        .await
        .map_err(|e| SendError::transient(format!("TLS with {host}: {e}")))?;
    Ok(Box::new(tls))
}
