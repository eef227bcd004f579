//! Notification channels (SPEC §12): where alarms go besides NATS — a webhook, e-mail, a
//! Slack-compatible incoming webhook, a Kafka topic — which alarms each takes, and what each
//! sends. Pure: the senders (HTTP, SMTP, Kafka) and the delivery queue live elsewhere.
//!
//! A channel takes the alarmed changes (SPEC §8: not revisions, not silenced, not held while a
//! flow flaps) of the flows in its scope whose new or previous status is at least its
//! `minStatus`: an `OUTAGE` channel hears a flow go to `OUTAGE` and hears it recover.

use serde::{Deserialize, Serialize};

use crate::detection::Status;
use crate::event::Event;
use crate::silence::FlowScope;
use crate::time::utc_string;

/// A channel's document, as `PUT /channels/{name}` takes it and `GET /channels` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Channel {
    /// Where it sends.
    #[serde(flatten)]
    pub target: Target,
    /// Which flows (every flow when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<FlowScope>,
    /// The least status a change must reach (or leave) to be sent.
    pub min_status: MinStatus,
}

/// Where a channel sends, by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "target", rename_all = "lowercase")]
pub enum Target {
    /// A POST of the SPEC §8 JSON, signed.
    Webhook(Webhook),
    /// An e-mail over SMTP.
    Email(Email),
    /// A Slack-compatible incoming webhook (`{"text": …}`).
    Slack(Slack),
    /// The SPEC §8 JSON to a Kafka topic (the seed system's outgoing message).
    Kafka(KafkaTopic),
}

/// A webhook's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http://` or `https://`.
    pub url: String,
    /// The key of the `X-Flowwatch-Signature` HMAC-SHA256.
    pub secret: String,
}

/// An e-mail channel's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    /// `smtp://[user:password@]host:port[?starttls=required]`.
    pub smtp: String,
    /// The sender's address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

/// A Slack channel's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slack {
    /// `http://` or `https://`.
    pub url: String,
}

/// A Kafka channel's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTopic {
    /// `host:port`, comma-separated.
    pub brokers: String,
    /// The topic.
    pub topic: String,
}

/// `minStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MinStatus {
    /// `WARNING` and `OUTAGE`.
    #[serde(rename = "WARNING")]
    Warning,
    /// `OUTAGE` only.
    #[serde(rename = "OUTAGE")]
    Outage,
}

/// Why a channel is refused: the field (as the API spells it) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct ChannelError {
    /// The field, e.g. `target.url`, `minStatus`.
    pub field: String,
    /// What is wrong with it.
    pub why: String,
}

fn refuse(field: &str, why: impl Into<String>) -> ChannelError {
    ChannelError {
        field: field.to_owned(),
        why: why.into(),
    }
}

/// A channel name: what `/channels/{name}` takes.
pub fn check_name(name: &str) -> Result<(), ChannelError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
        return Err(refuse("name", "1 to 64 letters, digits, '-', '_' or '.'"));
    }
    if name.chars().all(|c| c == '.') {
        return Err(refuse("name", "not only dots (a URL path cannot hold it)"));
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host.
fn check_url(field: &str, url: &str) -> Result<(), ChannelError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            refuse(
                field,
                format!("\"{url}\" is not an http:// or https:// URL"),
            )
        })?;
    if rest.split('/').next().unwrap_or("").is_empty() {
        return Err(refuse(field, format!("\"{url}\" has no host")));
    }
    Ok(())
}

/// An e-mail address: something, `@`, a domain, no spaces or angle brackets.
fn check_address(field: &str, address: &str) -> Result<(), ChannelError> {
    let bad = address
        .chars()
        .any(|c| c.is_whitespace() || "<>,;\"".contains(c));
    match address.split_once('@') {
        Some((local, domain)) if !bad && !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => Err(refuse(
            field,
            format!("\"{address}\" is not an e-mail address"),
        )),
    }
}

/// The parts of an `smtp://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    /// `host:port`.
    pub address: String,
    /// The user and password to log in with (AUTH PLAIN), if the URL has them.
    pub login: Option<(String, String)>,
    /// Whether the connection must be upgraded with STARTTLS (`?starttls=required`).
    pub starttls: bool,
}

impl SmtpUrl {
    /// Parses `smtp://[user:password@]host:port[?starttls=required]` (user and password
    /// percent-encoded).
    pub fn parse(url: &str) -> Result<SmtpUrl, String> {
        let rest = url
            .strip_prefix("smtp://")
            .ok_or_else(|| format!("\"{url}\" is not an smtp:// URL"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let rest = rest.trim_end_matches('/');
        let (login, address) = match rest.rsplit_once('@') {
            Some((login, address)) => {
                let (user, password) = login
                    .split_once(':')
                    .ok_or_else(|| format!("\"{url}\": a login is user:password"))?;
                (
                    Some((percent_decode(user)?, percent_decode(password)?)),
                    address,
                )
            }
            None => (None, rest),
        };
        let port = address
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()));
        match port {
            Some((host, Ok(_))) if !host.is_empty() => {}
            _ => return Err(format!("\"{url}\" has no host:port")),
        }
        let starttls = match query {
            "" => false,
            "starttls=required" => true,
            other => {
                return Err(format!(
                    "\"{url}\": unknown option \"{other}\" (starttls=required)"
                ));
            }
        };
        Ok(SmtpUrl {
            address: address.to_owned(),
            login,
            starttls,
        })
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in \"{text}\""))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("\"{text}\" is not UTF-8"))
}

impl Channel {
    /// A channel from its JSON document; an unknown or missing field, or a value that cannot
    /// work, is refused naming its path (`type`, `target.url`, `minStatus`).
    pub fn parse(document: &serde_json::Value) -> Result<Channel, ChannelError> {
        /// The document's frame; the target is read by its type.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Doc {
            r#type: String,
            target: serde_json::Value,
            #[serde(default)]
            scope: Option<FlowScope>,
            min_status: MinStatus,
        }
        /// `value` read, an error naming its path under `at` (`channel` for the document).
        fn read<T: serde::de::DeserializeOwned>(
            value: serde_json::Value,
            at: &str,
        ) -> Result<T, ChannelError> {
            serde_path_to_error::deserialize(value).map_err(|e| {
                let field = match (e.path().to_string().as_str(), at) {
                    (".", at) => at.to_owned(),
                    (path, "channel") => path.to_owned(),
                    (path, at) => format!("{at}.{path}"),
                };
                refuse(&field, e.inner().to_string())
            })
        }
        let doc: Doc = read(document.clone(), "channel")?;
        let target = match doc.r#type.as_str() {
            "webhook" => Target::Webhook(read(doc.target, "target")?),
            "email" => Target::Email(read(doc.target, "target")?),
            "slack" => Target::Slack(read(doc.target, "target")?),
            "kafka" => Target::Kafka(read(doc.target, "target")?),
            other => {
                return Err(refuse(
                    "type",
                    format!("\"{other}\" is not webhook, email, slack or kafka"),
                ));
            }
        };
        let channel = Channel {
            target,
            scope: doc.scope,
            min_status: doc.min_status,
        };
        channel.validate()?;
        Ok(channel)
    }

    /// Checks what serde cannot: URLs, addresses, brokers, the scope.
    pub fn validate(&self) -> Result<(), ChannelError> {
        if let Some(scope) = &self.scope {
            scope.validate().map_err(|e| refuse(e.field, e.why))?;
        }
        match &self.target {
            Target::Webhook(Webhook { url, secret }) => {
                check_url("target.url", url)?;
                if secret.is_empty() {
                    return Err(refuse("target.secret", "empty"));
                }
            }
            Target::Slack(Slack { url }) => check_url("target.url", url)?,
            Target::Email(Email { smtp, from, to }) => {
                SmtpUrl::parse(smtp).map_err(|why| refuse("target.smtp", why))?;
                check_address("target.from", from)?;
                if to.is_empty() {
                    return Err(refuse("target.to", "no recipient"));
                }
                for (i, address) in to.iter().enumerate() {
                    check_address(&format!("target.to[{i}]"), address)?;
                }
            }
            Target::Kafka(KafkaTopic { brokers, topic }) => {
                if self::brokers(brokers).is_empty() {
                    return Err(refuse("target.brokers", "no host:port"));
                }
                for b in self::brokers(brokers) {
                    if !b
                        .rsplit_once(':')
                        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                    {
                        return Err(refuse(
                            "target.brokers",
                            format!("\"{b}\" is not host:port"),
                        ));
                    }
                }
                if topic.trim().is_empty() {
                    return Err(refuse("target.topic", "empty"));
                }
            }
        }
        Ok(())
    }

    /// The `type` (`webhook`, `email`, `slack`, `kafka`).
    pub fn kind(&self) -> &'static str {
        match self.target {
            Target::Webhook(_) => "webhook",
            Target::Email(_) => "email",
            Target::Slack(_) => "slack",
            Target::Kafka(_) => "kafka",
        }
    }

    /// Whether this channel sends `event`: an alarmed change of a flow in its scope that
    /// reaches or leaves its minimum status.
    pub fn wants(&self, event: &Event) -> bool {
        let reaches = |s: Status| match s {
            Status::Outage => true,
            Status::Warning => self.min_status == MinStatus::Warning,
            Status::Ok | Status::NotAvailable => false,
        };
        event.alarmed()
            && self.scope.as_ref().is_none_or(|s| s.covers(&event.flow))
            && (reaches(event.new_status) || reaches(event.previous_status))
    }

    /// The same channel with its secrets hidden (a webhook's secret, an SMTP password), as
    /// `GET /channels` shows them: [`HIDDEN`].
    pub fn redacted(&self) -> Channel {
        let mut c = self.clone();
        match &mut c.target {
            Target::Webhook(w) => w.secret = HIDDEN.into(),
            Target::Email(Email { smtp, .. }) => {
                if let Some(at) = smtp_password(smtp) {
                    smtp.replace_range(at, HIDDEN);
                }
            }
            Target::Slack(_) | Target::Kafka(_) => {}
        }
        c
    }
}

/// What a hidden secret reads as.
pub const HIDDEN: &str = "…";

/// Where the password of an `smtp://user:password@host:port…` URL is written (percent-encoded),
/// if it has one.
pub fn smtp_password(url: &str) -> Option<std::ops::Range<usize>> {
    let start = "smtp://".len();
    let rest = url.strip_prefix("smtp://")?;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let (login, _) = authority.rsplit_once('@')?;
    let colon = login.find(':')?;
    Some(start + colon + 1..start + login.len())
}

/// The brokers of a `brokers` string.
pub fn brokers(brokers: &str) -> Vec<String> {
    brokers
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `X-Flowwatch-Signature` header of a webhook's `body`: `sha256=` and the hex HMAC-SHA256
/// (RFC 2104) of the body with the channel's secret.
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    let hex: String = hmac_sha256(secret.as_bytes(), body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// HMAC-SHA256 (RFC 2104) of `message` with `key`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// How a change reads in a line: `CZ / GSM / input MSSBRN1A: OK → OUTAGE`.
pub fn headline(e: &Event) -> String {
    format!(
        "{} / {} / {} {}: {} → {}",
        e.flow.country,
        e.flow.lob,
        e.flow.kind.as_str(),
        e.flow.name,
        e.previous_status.as_str(),
        e.new_status.as_str()
    )
}

/// An e-mail's subject: the new status, the country, LoB and flow (SPEC §12), and the status
/// left — plain ASCII where the names are, so every mail client shows it as it is.
pub fn email_subject(e: &Event) -> String {
    format!(
        "[flowwatch] {} {} / {} / {} {} (was {})",
        e.new_status.as_str(),
        e.flow.country,
        e.flow.lob,
        e.flow.kind.as_str(),
        e.flow.name,
        e.previous_status.as_str()
    )
}

/// An e-mail's text: the change, its tick, the traffic against what was expected, its id.
pub fn email_text(e: &Event) -> String {
    let number = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.0}"));
    format!(
        "{}\r\n\r\ntick: {}\r\ndetected: {}\r\nbytes in the tick: {}\r\nexpected: {}\r\ndifference: {}\r\nid: {}\r\n",
        headline(e),
        utc_string(e.tick_time),
        utc_string(e.time),
        e.actual,
        number(e.expected),
        number(e.difference),
        e.id
    )
}

/// A Slack-compatible incoming-webhook body: `{"text": …}`.
pub fn slack_body(e: &Event) -> Vec<u8> {
    let mark = match e.new_status {
        Status::Outage => ":red_circle:",
        Status::Warning => ":large_orange_circle:",
        Status::Ok => ":large_green_circle:",
        Status::NotAvailable => ":white_circle:",
    };
    let text = format!(
        "{mark} *{}* {} (tick {}, {} bytes, id `{}`)",
        e.new_status.as_str(),
        headline(e),
        utc_string(e.tick_time),
        e.actual,
        e.id
    );
    serde_json::to_vec(&serde_json::json!({ "text": text })).expect("a JSON object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{FlowId, FlowKind};
    use serde_json::json;

    fn event(kind: FlowKind, name: &str, from: Status, to: Status) -> Event {
        Event {
            id: "e1".into(),
            flow: FlowId::new("CZ", "GSM", kind, name).unwrap(),
            tick_time: 1_486_335_600,
            time: 1_486_339_260,
            previous_status: from,
            new_status: to,
            actual: 12,
            expected: Some(1000.4),
            difference: Some(-988.4),
            revision: false,
            silenced: false,
            flapping: false,
            acknowledged: None,
        }
    }

    #[test]
    fn a_channel_takes_what_reaches_or_leaves_its_minimum_in_its_scope() {
        let doc = json!({"type": "webhook", "target": {"url": "http://h:1/x", "secret": "s"},
            "scope": {"country": "CZ", "lob": "GSM", "kind": "input", "flow": "A"},
            "minStatus": "OUTAGE"});
        let c = Channel::parse(&doc).unwrap();
        let (i, f) = (FlowKind::Input, FlowKind::Forward);
        assert!(c.wants(&event(i, "A", Status::Ok, Status::Outage)));
        assert!(
            c.wants(&event(i, "A", Status::Outage, Status::Ok)),
            "the recovery"
        );
        assert!(
            c.wants(&event(f, "A:X", Status::Warning, Status::Outage)),
            "a forward of A"
        );
        assert!(
            !c.wants(&event(i, "A", Status::Ok, Status::Warning)),
            "below OUTAGE"
        );
        assert!(
            !c.wants(&event(i, "B", Status::Ok, Status::Outage)),
            "out of scope"
        );
        let mut silenced = event(i, "A", Status::Ok, Status::Outage);
        silenced.silenced = true;
        assert!(!c.wants(&silenced));
        let mut revision = event(i, "A", Status::Ok, Status::Outage);
        revision.revision = true;
        assert!(!c.wants(&revision));

        let every = Channel::parse(
            &json!({"type": "slack", "target": {"url": "https://hooks/x"},
            "minStatus": "WARNING"}),
        )
        .unwrap();
        assert!(every.wants(&event(i, "B", Status::Ok, Status::Warning)));
        assert!(!every.wants(&event(i, "B", Status::NotAvailable, Status::Ok)));
        assert_eq!(serde_json::to_value(&every).unwrap()["type"], "slack");
        // Kept as its JSON and read back as it was.
        for channel in [&c, &every] {
            let stored = serde_json::to_value(channel).unwrap();
            assert_eq!(&Channel::parse(&stored).unwrap(), channel);
        }
    }

    #[test]
    fn a_bad_document_is_refused_naming_the_field() {
        let field = |doc: serde_json::Value| Channel::parse(&doc).unwrap_err().field;
        let hook = |target: serde_json::Value| json!({"type": "webhook", "target": target, "minStatus": "WARNING"});
        assert_eq!(
            field(hook(json!({"url": "ftp://x", "secret": "s"}))),
            "target.url"
        );
        assert_eq!(
            field(hook(json!({"url": "http://x", "secret": ""}))),
            "target.secret"
        );
        assert_eq!(
            field(json!({"type": "pager", "target": {}, "minStatus": "WARNING"})),
            "type"
        );
        assert_eq!(
            field(json!({"type": "slack", "target": {"url": "http://x"}, "minStatus": "OK"})),
            "minStatus"
        );
        assert_eq!(
            field(
                json!({"type": "slack", "target": {"url": "http://x"}, "minStatus": "OUTAGE", "extra": 1})
            ),
            "extra"
        );
        assert_eq!(field(hook(json!({"url": "http://x"}))), "target");
        assert_eq!(
            field(hook(json!({"url": "http://x", "secret": 5}))),
            "target.secret"
        );
        assert_eq!(
            field(json!({"type": "slack", "target": {"url": "http://x"}})),
            "channel"
        );
        let mail = |target: serde_json::Value| json!({"type": "email", "target": target, "minStatus": "OUTAGE"});
        assert_eq!(
            field(mail(
                json!({"smtp": "smtp://h", "from": "a@b", "to": ["c@d"]})
            )),
            "target.smtp"
        );
        assert_eq!(
            field(mail(
                json!({"smtp": "smtp://h:25", "from": "ab", "to": ["c@d"]})
            )),
            "target.from"
        );
        assert_eq!(
            field(mail(
                json!({"smtp": "smtp://h:25", "from": "a@b", "to": []})
            )),
            "target.to"
        );
        assert_eq!(
            field(mail(
                json!({"smtp": "smtp://h:25", "from": "a@b", "to": ["c@d", "x y@z"]})
            )),
            "target.to[1]"
        );
        let kafka = |target: serde_json::Value| json!({"type": "kafka", "target": target, "minStatus": "OUTAGE"});
        assert_eq!(
            field(kafka(json!({"brokers": "h", "topic": "t"}))),
            "target.brokers"
        );
        assert_eq!(
            field(kafka(json!({"brokers": "h:9092", "topic": " "}))),
            "target.topic"
        );
        assert_eq!(
            field(
                json!({"type": "slack", "target": {"url": "http://x"}, "minStatus": "OUTAGE",
                "scope": {"country": "CZ", "flow": "A"}})
            ),
            "scope.lob"
        );
        assert!(check_name("ops-mail_1.eu").is_ok());
        assert_eq!(check_name("a/b").unwrap_err().field, "name");
        assert!(check_name("..").is_err() && check_name(".").is_err());
    }

    #[test]
    fn the_webhook_signature_is_the_hmac_sha256_of_the_body() {
        // RFC 4231, test cases 2 and 6 (a key longer than the block).
        assert_eq!(
            webhook_signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let long = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        let hex: String = long.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn smtp_urls_carry_a_login_and_starttls() {
        let u = SmtpUrl::parse("smtp://ops%40x:p%3Ass@mail.example:587?starttls=required").unwrap();
        assert_eq!(u.address, "mail.example:587");
        assert_eq!(u.login, Some(("ops@x".into(), "p:ss".into())));
        assert!(u.starttls);
        let plain = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((plain.login, plain.starttls), (None, false));
        assert!(SmtpUrl::parse("smtp://h:25?tls=yes").is_err());
        let c = Channel::parse(&json!({"type": "email", "minStatus": "OUTAGE", "target":
            {"smtp": "smtp://u:secret@h:25", "from": "a@b", "to": ["c@d"]}}))
        .unwrap();
        let shown = serde_json::to_string(&c.redacted()).unwrap();
        assert!(
            !shown.contains("secret") && shown.contains("smtp://u:…@h:25"),
            "{shown}"
        );
    }

    #[test]
    fn messages_name_the_flow_and_the_new_status() {
        let e = event(FlowKind::Input, "MSSBRN1A", Status::Ok, Status::Outage);
        let subject = email_subject(&e);
        for part in ["CZ", "GSM", "MSSBRN1A", "OUTAGE"] {
            assert!(subject.contains(part), "{subject}");
        }
        assert!(subject.is_ascii(), "{subject}");
        assert!(email_text(&e).contains("expected: 1000"));
        let slack: serde_json::Value = serde_json::from_slice(&slack_body(&e)).unwrap();
        assert!(
            slack["text"]
                .as_str()
                .unwrap()
                .contains("*OUTAGE* CZ / GSM / input MSSBRN1A")
        );
    }
}
