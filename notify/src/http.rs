//! One POST over HTTP/1.1 to a receiver's URL (`http://` or `https://`), on a connection of its
//! own: hyper's client connection over TCP, or TLS over TCP. A 2xx is a delivery; a 4xx other
//! than 408 and 429 is a refusal for good (the same message would be refused again); anything
//! else, or no answer within [`TIMEOUT`], is tried again later.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::tls::{self, Io};
use crate::{SendError, clip};

/// How long a whole exchange may take (connecting included).
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The most of a response body read.
const BODY_READ: usize = 64 * 1024;

/// The parts of an `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https://`.
    pub tls: bool,
    /// The host (an IPv6 address without its brackets).
    pub host: String,
    /// The port (80 or 443 when the URL names none).
    pub port: u16,
    /// `host[:port]` as the URL writes it (the `Host` header).
    pub authority: String,
    /// The path and query (`/` when the URL has none).
    pub path: String,
}

impl Url {
    /// Parses `http[s]://host[:port][/path][?query]`.
    pub fn parse(url: &str) -> Result<Url, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("\"{url}\" is not an http:// or https:// URL"));
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("\"{url}\": unclosed [ in the host"))?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() || host.contains('@') {
            return Err(format!("\"{url}\" has no host (or has a login)"));
        }
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => p
                .parse()
                .map_err(|_| format!("\"{url}\": invalid port \"{p}\""))?,
        };
        Ok(Url {
            tls,
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path,
        })
    }
}

/// A receiver's answer: its status and the start of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// `HTTP <status>` and the start of the body, as the deliveries list shows it.
    pub text: String,
}

/// POSTs `body` (of `content_type`, with `headers`) to `url`: the receiver's 2xx reply, or why
/// it is not delivered.
pub async fn post(
    url: &str,
    content_type: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<Reply, SendError> {
    let url = Url::parse(url).map_err(SendError::permanent)?;
    let exchange = exchange(&url, content_type, headers, body);
    let reply = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| {
            SendError::transient(format!(
                "no answer from {} within {} s",
                url.authority,
                TIMEOUT.as_secs()
            ))
        })??;
    match reply.status {
        200..=299 => Ok(reply),
        408 | 429 => Err(SendError::transient(reply.text)),
        400..=499 => Err(SendError::permanent(reply.text)),
        _ => Err(SendError::transient(reply.text)),
    }
}

async fn exchange(
    url: &Url,
    content_type: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<Reply, SendError> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| SendError::transient(format!("cannot connect to {}: {e}", url.authority)))?;
    let _ = tcp.set_nodelay(true);
    let mut io: Box<dyn Io> = Box::new(tcp);
    if url.tls {
        io = tls::connect(&url.host, io).await?;
    }
    let failed = |e: hyper::Error| SendError::transient(format!("{}: {e}", url.authority));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(failed)?;
    let driver = tokio::spawn(connection);
    let mut request = hyper::Request::post(url.path.as_str())
        .header(HOST, url.authority.as_str())
        .header(USER_AGENT, concat!("flowwatch/", env!("CARGO_PKG_VERSION")))
        .header(CONTENT_TYPE, content_type);
    for (name, value) in headers {
        let name = HeaderName::try_from(*name).expect("header names are ours");
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|_| SendError::permanent(format!("header {name} cannot hold {value:?}")))?;
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| SendError::permanent(format!("{}: {e}", url.authority)))?;
    let response = sender.send_request(request).await.map_err(failed)?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), BODY_READ)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    driver.abort();
    let body = String::from_utf8_lossy(&body);
    Ok(Reply {
        status,
        text: clip(&format!("HTTP {status} {}", body.trim())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_say_scheme_host_port_and_path() {
        let u = Url::parse("https://hooks.example.com/services/T0/B0?x=1").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "hooks.example.com", 443, "/services/T0/B0?x=1")
        );
        let u = Url::parse("http://127.0.0.1:8081").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 8081, "/")
        );
        assert_eq!(u.authority, "127.0.0.1:8081");
        let u = Url::parse("http://[::1]:9/hook").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 9, "/hook")
        );
        assert_eq!(Url::parse("http://h?q").unwrap().path, "/?q");
        for bad in [
            "ftp://h/",
            "http://",
            "http://h:x/",
            "http://u:p@h/",
            "http://[::1/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_https_receiver_without_a_trusted_certificate_is_refused() {
        // A plain-text server on an https:// URL: the TLS handshake fails, to be tried again.
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/", listener.local_addr().unwrap());
        let _t = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let e = post(&url, "text/plain", &[], vec![]).await.unwrap_err();
        assert!(e.message.starts_with("TLS with 127.0.0.1"), "{e}");
    }
}
