//! Notification channels (SPEC §12) at work: what sends an alarm to a webhook, a mailbox, a
//! Slack-compatible incoming webhook or a Kafka topic ([`send`]), the senders of the delivery
//! queue with their retries ([`delivery`]), and the operators' fallback e-mail when alarms
//! cannot reach NATS ([`ops`]).
//!
//! Which alarms a channel takes and what each message says are pure and live in
//! `flowwatch_core::channel`; the queue is kept in the store (`ChannelStore`), so a restart or a
//! `kill -9` loses no pending delivery.
//!
//! - [`http`]: one POST over HTTP/1.1 (TLS with the system's roots for `https://`).
//! - [`smtp`]: one e-mail over SMTP (STARTTLS and AUTH PLAIN when the URL asks for them).
//! - [`kafka`]: the SPEC §8 JSON to a topic, keyed by flow.

pub mod delivery;
pub mod http;
pub mod kafka;
pub mod ops;
pub mod send;
pub mod smtp;
mod tls;

/// Why a message was not delivered, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// What happened, as the deliveries list shows it.
    pub message: String,
    /// The receiver refused it for good (an HTTP 4xx, an SMTP 5xx): it is not tried again.
    pub permanent: bool,
}

impl SendError {
    /// A failure that a later attempt may not meet (a receiver away, a timeout).
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            permanent: false,
        }
    }

    /// A refusal that will not change.
    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            permanent: true,
        }
    }
}

/// The longest text of a receiver's answer kept with an attempt.
pub const RESPONSE_KEPT: usize = 300;

/// `text` cut to [`RESPONSE_KEPT`] characters, on one line.
pub fn clip(text: &str) -> String {
    let one_line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(RESPONSE_KEPT) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}
