//! What the notification tests' HTTP receivers share.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Reads one HTTP request from `s`: its head, then as many body bytes as its `content-length`
/// says; the whole request as text.
pub async fn read_request(s: &mut TcpStream) -> String {
    let mut read = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        read.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&read).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.parse().unwrap());
            if body.len() >= length {
                return text;
            }
        }
    }
}
