//! A minimal HTTP/1.1 client for the load drivers: keep-alive connections, bodies framed by
//! `Content-Length` (what flowwatch's API answers with). Its own code so a driver spends its
//! time on the load, and the crate stays light.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The `host:port` of an `http://host:port[/]` URL.
pub fn authority(url: &str) -> Result<&str, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(format!("{url}: expected http://host:port"));
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

    /// Sends a request and reads its response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        use std::io::Write;
        self.head.clear();
        write!(
            self.head,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        )?;
        for (name, value) in headers {
            write!(self.head, "{name}: {value}\r\n")?;
        }
        self.head.extend_from_slice(b"\r\n");
        let s = self.stream.get_mut();
        s.write_all(&self.head).await?;
        s.write_all(body).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status = line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("not an HTTP/1.1 status line: {line:?}")))?;
        let mut length = None;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(bad("connection closed in the headers".into()));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(
                        value
                            .trim()
                            .parse::<usize>()
                            .map_err(|_| bad(format!("bad Content-Length {value:?}")))?,
                    );
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(bad(format!("unsupported Transfer-Encoding {value:?}")));
                }
            }
        }
        let mut body = vec![0; length.unwrap_or(0)];
        self.stream.read_exact(&mut body).await?;
        Ok(Response { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_only_plain_http_authorities() {
        assert_eq!(authority("http://127.0.0.1:8080/"), Ok("127.0.0.1:8080"));
        assert_eq!(authority("http://localhost:1"), Ok("localhost:1"));
        assert!(authority("https://x:1").is_err());
        assert!(authority("http://x:1/api").is_err());
    }

    #[tokio::test]
    async fn keeps_the_connection_for_several_requests() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut s = BufReader::new(s);
            for i in 0..2 {
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    s.read_line(&mut line).await.unwrap();
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                s.read_exact(&mut body).await.unwrap();
                let reply = format!("{i}:{}", String::from_utf8(body).unwrap());
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{reply}",
                    reply.len()
                );
                s.get_mut().write_all(response.as_bytes()).await.unwrap();
            }
        });
        let mut c = Connection::open(&addr).await.unwrap();
        for (i, body) in ["a", "bc"].iter().enumerate() {
            let r = c.request("POST", "/x", &[], body.as_bytes()).await.unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.body, format!("{i}:{body}").into_bytes());
        }
        server.await.unwrap();
    }
}
