//! One POST against a receiver on loopback: what goes out (path, headers, body), what comes
//! back, and which failures are for good.

mod common;

use flowwatch_notify::SendError;
use flowwatch_notify::http::post;
use tokio::io::AsyncWriteExt;

/// Answers one request with `reply` and hands back what it read.
async fn receiver(reply: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let read = common::read_request(&mut s).await;
        s.write_all(reply.as_bytes()).await.unwrap();
        read
    });
    (format!("http://{address}/hook?a=1"), task)
}

#[tokio::test]
async fn posts_the_body_with_its_headers_and_reads_the_answer() {
    let (url, task) = receiver("HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok").await;
    let reply = post(
        &url,
        "application/json",
        &[("x-flowwatch-signature", "sha256=ab".into())],
        b"{\"a\":1}".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 202);
    assert_eq!(reply.text, "HTTP 202 ok");
    let request = task.await.unwrap();
    assert!(
        request.starts_with("POST /hook?a=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("content-type: application/json\r\n"));
    assert!(request.contains("x-flowwatch-signature: sha256=ab\r\n"));
    assert!(request.ends_with("\r\n\r\n{\"a\":1}"));
}

#[tokio::test]
async fn a_client_error_is_for_good_a_server_error_or_no_receiver_is_not() {
    let (url, _t) = receiver("HTTP/1.1 400 Bad Request\r\nContent-Length: 7\r\n\r\nbad sig").await;
    let e = post(&url, "text/plain", &[], b"x".to_vec())
        .await
        .unwrap_err();
    assert_eq!(e, SendError::permanent("HTTP 400 bad sig"));
    let (url, _t) = receiver("HTTP/1.1 429 Too Many\r\nContent-Length: 0\r\n\r\n").await;
    assert!(
        !post(&url, "text/plain", &[], vec![])
            .await
            .unwrap_err()
            .permanent
    );
    let (url, _t) = receiver("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n").await;
    assert!(
        !post(&url, "text/plain", &[], vec![])
            .await
            .unwrap_err()
            .permanent
    );
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let e = post(&url, "text/plain", &[], vec![]).await.unwrap_err();
    assert!(!e.permanent);
    assert!(e.message.starts_with("cannot connect to 127.0.0.1:"), "{e}");
}
