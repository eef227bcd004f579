//! One e-mail over SMTP (RFC 5321): `EHLO`, `STARTTLS` when the URL says
//! `?starttls=required` (refused if the server does not offer it), `AUTH PLAIN` when the URL
//! has a login, then `MAIL FROM`, `RCPT TO` for each recipient and `DATA`. A 5xx reply is a
//! refusal for good; a 4xx, a connection that fails or no answer within [`TIMEOUT`] is tried
//! again later. The body is 8-bit UTF-8 when the server takes `8BITMIME`, base64 otherwise.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use flowwatch_core::channel::SmtpUrl;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::tls::{self, Io};
use crate::{SendError, clip};

/// How long a whole exchange may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// An e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The sender's address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The subject (any text: encoded when it is not ASCII).
    pub subject: String,
    /// The text (lines end with CRLF once sent).
    pub text: String,
    /// The `Message-ID` (without angle brackets): the same alarm to the same channel keeps it,
    /// so a mail client can drop a repeat.
    pub message_id: String,
}

/// Sends `mail` through the server of `url`: the server's final reply, or why it is not sent.
pub async fn send(url: &SmtpUrl, mail: &Mail) -> Result<String, SendError> {
    tokio::time::timeout(TIMEOUT, exchange(url, mail))
        .await
        .map_err(|_| {
            SendError::transient(format!(
                "no answer from {} within {} s",
                url.address,
                TIMEOUT.as_secs()
            ))
        })?
}

async fn exchange(url: &SmtpUrl, mail: &Mail) -> Result<String, SendError> {
    let tcp = TcpStream::connect(url.address.as_str())
        .await
        .map_err(|e| SendError::transient(format!("cannot connect to {}: {e}", url.address)))?;
    let mut s = Session {
        io: BufReader::new(Box::new(tcp)),
        address: url.address.clone(),
    };
    s.expect("greeting", 220).await?;
    let mut extensions = s.command("EHLO flowwatch", 250).await?;
    if url.starttls {
        if !offers(&extensions, "STARTTLS") {
            return Err(SendError::permanent(format!(
                "{} does not offer STARTTLS, which the URL requires",
                url.address
            )));
        }
        s.command("STARTTLS", 220).await?;
        let host = url.address.rsplit_once(':').map_or("", |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let plain = std::mem::replace(&mut s.io, BufReader::new(Box::new(tokio::io::empty())));
        s.io = BufReader::new(tls::connect(host, plain.into_inner()).await?);
        extensions = s.command("EHLO flowwatch", 250).await?;
    }
    if let Some((user, password)) = &url.login {
        let token = BASE64.encode(format!("\0{user}\0{password}"));
        s.command(&format!("AUTH PLAIN {token}"), 235).await?;
    }
    let eight_bit = offers(&extensions, "8BITMIME");
    let body = if eight_bit { " BODY=8BITMIME" } else { "" };
    s.command(&format!("MAIL FROM:<{}>{body}", mail.from), 250)
        .await?;
    for to in &mail.to {
        s.command(&format!("RCPT TO:<{to}>"), 250).await?;
    }
    s.command("DATA", 354).await?;
    s.write(&message(mail, eight_bit)).await?;
    let done = s.command(".", 250).await?;
    // The mail is accepted: a failed goodbye changes nothing.
    let _ = s.command("QUIT", 221).await;
    Ok(clip(&done.join(" ")))
}

/// Whether the EHLO reply lists `extension`.
fn offers(extensions: &[String], extension: &str) -> bool {
    extensions.iter().any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(extension))
    })
}

struct Session {
    io: BufReader<Box<dyn Io>>,
    address: String,
}

impl Session {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        let io = self.io.get_mut();
        let lost = |e: std::io::Error| SendError::transient(format!("{}: {e}", self.address));
        io.write_all(bytes).await.map_err(lost)?;
        io.flush().await.map_err(lost)
    }

    /// Sends `line` and reads the reply, which must be `code`: its lines without the code.
    async fn command(&mut self, line: &str, code: u16) -> Result<Vec<String>, SendError> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        let verb = line.split([' ', ':']).next().unwrap_or(line);
        let verb = if verb == "." { "end of DATA" } else { verb };
        self.expect(verb, code).await
    }

    /// Reads a reply (its lines `NNN-…` then `NNN …`), which must be `code`.
    async fn expect(&mut self, what: &str, code: u16) -> Result<Vec<String>, SendError> {
        let mut lines = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = (self.io.read_line(&mut line).await)
                .map_err(|e| SendError::transient(format!("{} after {what}: {e}", self.address)))?;
            if n == 0 {
                return Err(SendError::transient(format!(
                    "{} closed the connection after {what}",
                    self.address
                )));
            }
            let text = line.trim_end();
            let got: u16 = text.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| {
                SendError::transient(format!("{}: not an SMTP reply: {text:?}", self.address))
            })?;
            lines.push(text.get(4..).unwrap_or("").to_owned());
            if text.as_bytes().get(3) == Some(&b'-') {
                continue;
            }
            if got == code || (code == 250 && got == 251) {
                return Ok(lines);
            }
            let said = format!("{what}: {got} {}", lines.join(" "));
            return Err(if got >= 500 {
                SendError::permanent(clip(&said))
            } else {
                SendError::transient(clip(&said))
            });
        }
    }
}

/// The message as sent after `DATA`: headers, body, dot-stuffed, ending with CRLF.
fn message(mail: &Mail, eight_bit: bool) -> Vec<u8> {
    let mut out = String::new();
    let date = chrono::Utc::now().to_rfc2822();
    out.push_str(&format!("From: <{}>\r\n", mail.from));
    let to: Vec<String> = mail.to.iter().map(|t| format!("<{t}>")).collect();
    out.push_str(&format!("To: {}\r\n", to.join(", ")));
    out.push_str(&format!("Subject: {}\r\n", encode_header(&mail.subject)));
    out.push_str(&format!("Date: {date}\r\n"));
    out.push_str(&format!("Message-ID: <{}>\r\n", mail.message_id));
    out.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
    let text = mail.text.replace("\r\n", "\n").replace('\n', "\r\n");
    if eight_bit {
        out.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
        for line in text.split("\r\n") {
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
    } else {
        out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        let encoded = BASE64.encode(text.as_bytes());
        for chunk in encoded.as_bytes().chunks(76) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push_str("\r\n");
        }
    }
    out.into_bytes()
}

/// A header value: as it is when ASCII, else RFC 2047 encoded words (UTF-8, base64) of at
/// most 45 bytes of text each, folded.
fn encode_header(text: &str) -> String {
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.is_ascii() {
        return text;
    }
    let mut words = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if word.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", BASE64.encode(&word)));
            word.clear();
        }
        word.push(c);
    }
    words.push(format!("=?UTF-8?B?{}?=", BASE64.encode(&word)));
    words.join("\r\n ")
}

/// A `Message-ID` of letters, digits, `.`, `-` and `_` from `parts`, `@flowwatch`.
pub fn message_id(parts: &[&str]) -> String {
    let safe: Vec<String> = parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                        c
                    } else {
                        '.'
                    }
                })
                .collect()
        })
        .collect();
    format!("{}@flowwatch", safe.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Mail {
        Mail {
            from: "flowwatch@example.com".into(),
            to: vec!["ops@example.com".into(), "noc@example.com".into()],
            subject: "[flowwatch] OUTAGE CZ / GSM / input A: OK → OUTAGE".into(),
            text: "first\r\n.dot line\nlast".into(),
            message_id: message_id(&["CZ:GSM:input:A@1", "ops"]),
        }
    }

    #[test]
    fn a_message_has_its_headers_and_a_dot_stuffed_body() {
        let m = String::from_utf8(message(&mail(), true)).unwrap();
        assert!(m.starts_with("From: <flowwatch@example.com>\r\nTo: <ops@example.com>, <noc@example.com>\r\nSubject: =?UTF-8?B?"));
        assert!(m.contains("Message-ID: <CZ.GSM.input.A.1.ops@flowwatch>\r\n"));
        assert!(
            m.ends_with("\r\n\r\nfirst\r\n..dot line\r\nlast\r\n"),
            "{m}"
        );
        let m = String::from_utf8(message(&mail(), false)).unwrap();
        let body = m.split("\r\n\r\n").nth(1).unwrap().replace("\r\n", "");
        assert_eq!(
            BASE64.decode(body).unwrap(),
            b"first\r\n.dot line\r\nlast".to_vec()
        );
    }

    #[test]
    fn a_subject_that_is_not_ascii_is_encoded_in_words() {
        assert_eq!(encode_header("plain subject"), "plain subject");
        let long = "é".repeat(40);
        let encoded = encode_header(&long);
        let words: Vec<&str> = encoded.split("\r\n ").collect();
        assert_eq!(words.len(), 2);
        let decoded: String = words
            .iter()
            .map(|w| {
                let b64 = w
                    .strip_prefix("=?UTF-8?B?")
                    .unwrap()
                    .strip_suffix("?=")
                    .unwrap();
                String::from_utf8(BASE64.decode(b64).unwrap()).unwrap()
            })
            .collect();
        assert_eq!(decoded, long);
    }

    /// A scripted SMTP server: answers each command with the next reply, records what it got.
    async fn server(replies: Vec<&'static str>) -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let mut replies = replies.into_iter();
            s.write_all(b"220 test ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                let complete = if in_data {
                    text.ends_with("\r\n.\r\n")
                } else {
                    text.ends_with("\r\n")
                };
                if !complete {
                    continue;
                }
                in_data = false;
                let Some(reply) = replies.next() else { break };
                if reply.starts_with("354") {
                    in_data = true;
                }
                s.write_all(reply.as_bytes()).await.unwrap();
            }
            String::from_utf8(got).unwrap()
        });
        (address, task)
    }

    #[tokio::test]
    async fn sends_with_a_login_to_each_recipient() {
        let (address, task) = server(vec![
            "250-test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n",
            "235 ok\r\n",
            "250 sender ok\r\n",
            "250 ok\r\n",
            "251 forwarded\r\n",
            "354 go\r\n",
            "250 queued as 42\r\n",
            "221 bye\r\n",
        ])
        .await;
        let url = SmtpUrl::parse(&format!("smtp://ops:p%40ss@{address}")).unwrap();
        assert_eq!(send(&url, &mail()).await.unwrap(), "queued as 42");
        let got = task.await.unwrap();
        let commands: Vec<&str> = got.lines().take(5).collect();
        assert_eq!(
            commands,
            [
                "EHLO flowwatch",
                &format!("AUTH PLAIN {}", BASE64.encode("\0ops\0p@ss")),
                "MAIL FROM:<flowwatch@example.com> BODY=8BITMIME",
                "RCPT TO:<ops@example.com>",
                "RCPT TO:<noc@example.com>",
            ]
        );
        assert!(got.contains("DATA\r\nFrom: <flowwatch@example.com>"));
        assert!(got.ends_with("last\r\n.\r\nQUIT\r\n"));
    }

    #[tokio::test]
    async fn a_refused_recipient_is_for_good_a_busy_server_is_not() {
        let (address, _t) = server(vec![
            "250 test\r\n",
            "250 ok\r\n",
            "550 5.1.1 no such user\r\n",
        ])
        .await;
        let url = SmtpUrl::parse(&format!("smtp://{address}")).unwrap();
        let e = send(&url, &mail()).await.unwrap_err();
        assert_eq!(e, SendError::permanent("RCPT: 550 5.1.1 no such user"));
        let (address, _t) = server(vec!["250 test\r\n", "451 try later\r\n"]).await;
        let url = SmtpUrl::parse(&format!("smtp://{address}")).unwrap();
        let e = send(&url, &mail()).await.unwrap_err();
        assert_eq!(e, SendError::transient("MAIL: 451 try later"));
    }

    #[tokio::test]
    async fn starttls_is_required_when_the_url_says_so() {
        let (address, _t) = server(vec!["250 test\r\n"]).await;
        let url = SmtpUrl::parse(&format!("smtp://{address}?starttls=required")).unwrap();
        let e = send(&url, &mail()).await.unwrap_err();
        assert!(e.permanent);
        assert!(
            e.message
                .ends_with("does not offer STARTTLS, which the URL requires")
        );
    }
}
