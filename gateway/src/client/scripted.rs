//! A scripted HTTP/1.1 server for the tests of this client and of its callers (`flowwatch
//! import`): on a free port, it reads each request (head and `Content-Length` body) and does
//! the next [`Reply`] of its script: answers, answers before reading the body, or closes
//! without answering.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long the server waits for a next connection before it ends.
const IDLE: Duration = Duration::from_millis(300);

/// What the server does with the request it is reading.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Reads the request, writes these bytes (a whole response), reads the next request on
    /// the same connection.
    Raw(Vec<u8>),
    /// Reads the request's head only, writes these bytes and closes the connection (as a
    /// server that refuses on the head does, e.g. for a bad key).
    BeforeBody(Vec<u8>),
    /// Reads the request and closes the connection without answering.
    Close,
}

impl Reply {
    /// A response with `status` and a JSON body.
    pub fn json(status: u16, json: &str) -> Reply {
        Reply::Raw(
            format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{json}",
                json.len()
            )
            .into_bytes(),
        )
    }
}

/// What the server saw.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// The bodies of the requests it read whole, in order.
    pub bodies: Vec<Vec<u8>>,
    /// The connections it accepted.
    pub connections: usize,
}

/// Serves `script` on a free port: its address, and what it saw once it ends. It ends when
/// the script does (a request read with no reply left gets none), or when no connection comes
/// for 300 ms while none is open.
///
/// # Panics
///
/// The task panics on a request it cannot read (a test's client sent something else than a
/// request with a `Content-Length`, or none).
pub async fn serve(script: Vec<Reply>) -> (String, JoinHandle<Served>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on the loopback");
    let addr = listener.local_addr().expect("a bound address").to_string();
    let task = tokio::spawn(async move {
        let mut served = Served::default();
        let mut script = script.into_iter();
        loop {
            let Ok(Ok((s, _))) = tokio::time::timeout(IDLE, listener.accept()).await else {
                return served;
            };
            served.connections += 1;
            let mut s = BufReader::new(s);
            loop {
                let Some(length) = read_head(&mut s).await else {
                    break; // the client closed the connection
                };
                let reply = script.next();
                if !matches!(reply, Some(Reply::BeforeBody(_))) {
                    let mut body = vec![0; length];
                    s.read_exact(&mut body)
                        .await
                        .expect("the body the head announced");
                    served.bodies.push(body);
                }
                match reply {
                    Some(Reply::Raw(bytes)) => {
                        let _ = s.get_mut().write_all(&bytes).await;
                    }
                    Some(Reply::BeforeBody(bytes)) => {
                        let _ = s.get_mut().write_all(&bytes).await;
                        let _ = s.get_mut().shutdown().await;
                        break;
                    }
                    Some(Reply::Close) => break,
                    None => return served,
                }
            }
        }
    });
    (addr, task)
}

/// Reads a request's head: its `Content-Length` (0 when none), `None` when the connection
/// closed before a request.
async fn read_head(s: &mut BufReader<TcpStream>) -> Option<usize> {
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if s.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            return Some(length);
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("a numeric Content-Length");
        }
    }
}
