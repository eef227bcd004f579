//! A minimal HTTP/1.1 client for flowwatch's own API, the one every caller of the API in this
//! tree uses (`flowwatch import`, the load drivers of `flowwatch-loadtest`, the process tests
//! of `flowwatch-cli`): keep-alive connections to an `http://host:port`, a request with its
//! whole body, the response framed by `Content-Length` (what the API answers with), chunked, or
//! ended by the server closing. Its own code so a driver spends its time on the load, and the
//! binary needs no HTTP client crate. It lives beside the API it speaks: it reads the API's
//! JSON error ([`Response::error_message`]).
//!
//! A failed request says whether the server can have acted on it ([`Error::NotSent`]) or may
//! have ([`Error::NoAnswer`]), so a caller knows when sending it again is safe.
//!
//! [`scripted`] (tests, feature `testkit`): a scripted server to test callers against.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[cfg(any(test, feature = "testkit"))]
pub mod scripted;

/// The `host:port` of an `http://host:port[/]` URL.
pub fn authority(url: &str) -> Result<&str, UrlError> {
    let bad = |why| UrlError {
        url: url.to_owned(),
        why,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// URLs are supported"))?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(bad("expected http://host:port"));
    }
    Ok(rest)
}

/// A response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// The server closes the connection after this response (`Connection: close`, or a body
    /// that ended with the connection): open a new one for the next request.
    pub close: bool,
}

impl Response {
    /// The message of the API's JSON error (`{"error": {"message"}}`), else the body as text.
    pub fn error_message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).trim().to_owned())
    }
}

/// A request that got no response.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request did not reach the server whole: it cannot have acted on it, and it may be
    /// sent again (on a new connection).
    #[error("cannot send the request: {0}")]
    NotSent(#[source] io::Error),
    /// The request was sent whole but no complete response came: the server may have acted on
    /// it.
    #[error("no answer to the request: {0}")]
    NoAnswer(#[source] io::Error),
}

/// A server URL this client cannot call.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {why}")]
pub struct UrlError {
    /// The URL.
    pub url: String,
    /// Why.
    pub why: &'static str,
}

/// One keep-alive connection.
pub struct Connection {
    stream: BufReader<TcpStream>,
    host: String,
    head: Vec<u8>,
}

impl Connection {
    /// Connects to `authority` (`host:port`).
    pub async fn open(authority: &str) -> io::Result<Connection> {
        let stream = TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::with_capacity(64 * 1024, stream),
            host: authority.to_owned(),
            head: Vec::new(),
        })
    }

    /// Sends a request (not `HEAD`) and reads its response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, Error> {
        use std::io::Write;
        self.head.clear();
        write!(
            self.head,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        )
        .expect("writing to a Vec does not fail");
        for (name, value) in headers {
            write!(self.head, "{name}: {value}\r\n").expect("writing to a Vec does not fail");
        }
        self.head.extend_from_slice(b"\r\n");
        let s = self.stream.get_mut();
        let sent = match s.write_all(&self.head).await {
            Ok(()) => s.write_all(body).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => self.read_response().await.map_err(Error::NoAnswer),
            // A server may answer before it has read the whole body (a refused key, a body too
            // large) and close the connection; its answer can still be read.
            Err(e) => self.read_response().await.map_err(|_| Error::NotSent(e)),
        }
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        loop {
            let (status, length, chunked, close) = self.read_head().await?;
            if (100..200).contains(&status) {
                continue; // an interim response (100 Continue): the real one follows
            }
            let mut body = Vec::new();
            let mut close = close;
            let bodiless = status == 204 || status == 304;
            if chunked && !bodiless {
                self.read_chunked(&mut body).await?;
            } else if let Some(length) = length.filter(|_| !bodiless) {
                body.resize(length, 0);
                self.stream.read_exact(&mut body).await?;
            } else if !bodiless {
                // Neither length nor chunks: the body ends with the connection.
                self.stream.read_to_end(&mut body).await?;
                close = true;
            }
            return Ok(Response {
                status,
                body,
                close,
            });
        }
    }

    /// The status line and headers: status, `Content-Length`, chunked, `Connection: close`.
    async fn read_head(&mut self) -> io::Result<(u16, Option<usize>, bool, bool)> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(bad("the connection closed before a response".into()));
        }
        let status = line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| line.strip_prefix("HTTP/1.0 "))
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("not an HTTP/1.1 status line: {line:?}")))?;
        let mut close = line.starts_with("HTTP/1.0 ");
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(bad("the connection closed in the headers".into()));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| bad(format!("bad Content-Length {value:?}")))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
                if !chunked {
                    return Err(bad(format!("unsupported Transfer-Encoding {value:?}")));
                }
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        Ok((status, length, chunked, close))
    }

    /// A chunked body: `size (hex)[;ext] CRLF data CRLF` … `0 CRLF` trailers `CRLF`.
    async fn read_chunked(&mut self, body: &mut Vec<u8>) -> io::Result<()> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(bad("the connection closed in a chunked body".into()));
            }
            let size = line.trim_end().split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| bad(format!("bad chunk size {size:?}")))?;
            if size == 0 {
                break;
            }
            let at = body.len();
            body.resize(at + size, 0);
            self.stream.read_exact(&mut body[at..]).await?;
            let mut crlf = [0; 2];
            self.stream.read_exact(&mut crlf).await?;
            if &crlf != b"\r\n" {
                return Err(bad("a chunk does not end with CRLF".into()));
            }
        }
        // Trailers, up to the empty line.
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
                return Ok(());
            }
        }
    }
}

fn bad(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

#[cfg(test)]
mod tests {
    use super::scripted::{Reply, Served, serve};
    use super::*;

    #[test]
    fn takes_only_plain_http_authorities() {
        assert_eq!(
            authority("http://127.0.0.1:8080/").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(authority("http://localhost:1").unwrap(), "localhost:1");
        assert!(authority("https://x:1").is_err());
        assert!(authority("http://x:1/api").is_err());
    }

    #[tokio::test]
    async fn keeps_the_connection_for_several_requests() {
        let (addr, server) = serve(vec![Reply::json(200, "0"), Reply::json(200, "1")]).await;
        let mut c = Connection::open(&addr).await.unwrap();
        for (i, body) in ["a", "bc"].iter().enumerate() {
            let r = c.request("POST", "/x", &[], body.as_bytes()).await.unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.body, i.to_string().into_bytes());
            assert!(!r.close);
        }
        drop(c);
        let served = server.await.unwrap();
        let expected = Served {
            bodies: vec![b"a".to_vec(), b"bc".to_vec()],
            connections: 1,
        };
        assert_eq!(served, expected);
    }

    #[tokio::test]
    async fn reads_chunked_bodies_and_connection_close() {
        let json = r#"{"error":{"code":"x","message":"store is down"}}"#;
        let (addr, server) = serve(vec![
            Reply::Raw(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5;ext=1\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\nX-Trailer: t\r\n\r\n"
                    .to_vec(),
            ),
            Reply::Raw(
                format!(
                    "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
                     Content-Length: {}\r\n\r\n{json}",
                    json.len()
                )
                .into_bytes(),
            ),
        ])
        .await;
        let mut c = Connection::open(&addr).await.unwrap();
        let r = c.request("GET", "/a", &[], b"").await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{\"a\": 1}"[..]));
        let r = c.request("GET", "/b", &[], b"").await.unwrap();
        assert_eq!(r.status, 503);
        assert!(r.close);
        assert_eq!(r.error_message(), "store is down");
        // The script is over: the server reads the next request and closes. What was sent
        // may have reached it, or not.
        match c.request("POST", "/c", &[], b"x").await {
            Err(Error::NoAnswer(_) | Error::NotSent(_)) => {}
            Ok(r) => panic!("a response from a closed connection: {r:?}"),
        }
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_answer_before_the_whole_body_is_read() {
        // The server refuses on the head alone and closes without reading a large body, as
        // an API server does for a bad key: the client still reads the answer.
        let body = r#"{"error":{"code":"unauthenticated","message":"unknown API key"}}"#;
        let answer = format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let (addr, server) = serve(vec![Reply::BeforeBody(answer.into_bytes())]).await;
        let mut c = Connection::open(&addr).await.unwrap();
        let big = vec![b'x'; 32 << 20];
        let r = c.request("POST", "/ingest", &[], &big).await.unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.error_message(), "unknown API key");
        assert_eq!(server.await.unwrap().bodies, Vec::<Vec<u8>>::new());
    }
}
