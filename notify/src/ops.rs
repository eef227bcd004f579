//! The seed's fallback (SPEC §12): `--ops-email smtp://host:port/ops@example.com` on `run`
//! and `worker`. When alarms cannot be published on NATS for [`AFTER`], one e-mail says so
//! (with how many wait in the outbox); when they are published again, one more says that. The
//! alarms themselves wait in the outbox and none is lost. A mail the server does not take is
//! tried again every [`RESEND`] until it is.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use flowwatch_core::channel::SmtpUrl;
use flowwatch_core::time::{Instant, utc_string};
use flowwatch_ports::clock::Clock;
use flowwatch_storage::Store;
use tokio_util::sync::CancellationToken;

use crate::smtp::{self, Mail};

/// How long publishing must fail before the operators are told.
pub const AFTER: Instant = 120;
/// How often a mail the server did not take is sent again.
const RESEND: Duration = Duration::from_secs(30);
/// How often the relay's health is looked at.
const LOOK: Duration = Duration::from_secs(1);

/// Where the operators' e-mail goes: `smtp://[user:password@]host:port/to[,to…][?from=…]`
/// (`&starttls=required` as for a channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsEmail {
    /// The server.
    pub smtp: SmtpUrl,
    /// The sender (`flowwatch@<the server's host>` unless `from=` says).
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

impl OpsEmail {
    /// Parses the `--ops-email` URL.
    pub fn parse(url: &str) -> Result<OpsEmail, String> {
        let rest = url
            .strip_prefix("smtp://")
            .ok_or_else(|| format!("\"{url}\" is not an smtp://host:port/recipient URL"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (server, to) = rest
            .split_once('/')
            .ok_or_else(|| format!("\"{url}\": no recipient after host:port/"))?;
        let to: Vec<String> = to
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        if to.is_empty() || to.iter().any(|t| !t.contains('@')) {
            return Err(format!(
                "\"{url}\": the recipients after host:port/ must be e-mail addresses"
            ));
        }
        let mut from = None;
        let mut options = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("from", v)) if v.contains('@') => from = Some(v.to_owned()),
                _ => options.push(pair),
            }
        }
        let smtp_url = match options.as_slice() {
            [] => format!("smtp://{server}"),
            options => format!("smtp://{server}?{}", options.join("&")),
        };
        let smtp = SmtpUrl::parse(&smtp_url)?;
        let host = smtp
            .address
            .rsplit_once(':')
            .map_or("localhost", |(h, _)| h);
        Ok(OpsEmail {
            from: from.unwrap_or_else(|| format!("flowwatch@{}", host.trim_matches(['[', ']']))),
            smtp,
            to,
        })
    }
}

/// What the operators are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tell {
    /// Publishing has failed since `since`.
    Down {
        /// When it began failing.
        since: Instant,
    },
    /// Publishing works again, after failing from `since` to `until`.
    Recovered {
        /// When it began failing.
        since: Instant,
        /// When it worked again.
        until: Instant,
    },
}

/// Watches the relay's health (pure): what to tell, and when.
#[derive(Debug, Default)]
pub struct OpsWatch {
    failing_since: Option<Instant>,
    told: bool,
}

impl OpsWatch {
    /// The relay was `healthy` (its last attempt published) at `now`: what to tell, if
    /// anything.
    pub fn observe(&mut self, healthy: bool, now: Instant) -> Option<Tell> {
        match (healthy, self.failing_since) {
            (false, None) => {
                self.failing_since = Some(now);
                None
            }
            (false, Some(since)) if !self.told && now - since >= AFTER => {
                self.told = true;
                Some(Tell::Down { since })
            }
            (true, Some(since)) => {
                self.failing_since = None;
                std::mem::take(&mut self.told).then_some(Tell::Recovered { since, until: now })
            }
            _ => None,
        }
    }
}

/// The mail of `tell`, with `waiting` alarms in the outbox.
pub fn mail(ops: &OpsEmail, tell: &Tell, waiting: Option<u64>, host: &str) -> Mail {
    let waiting = waiting.map_or("an unknown number of".to_owned(), |n| n.to_string());
    let (subject, text, id) = match tell {
        Tell::Down { since } => (
            format!("[flowwatch] alarms cannot be published on NATS ({host})"),
            format!(
                "flowwatch on {host} has not been able to publish alarms on NATS since {}.\r\n\r\n\
                 {waiting} alarms wait in the outbox; none is lost: they are published when NATS \
                 is reachable again, and another e-mail will say so.\r\n",
                utc_string(*since)
            ),
            format!("down.{since}"),
        ),
        Tell::Recovered { since, until } => (
            format!("[flowwatch] alarms are published on NATS again ({host})"),
            format!(
                "flowwatch on {host} publishes alarms on NATS again since {} (it could not from {}, {} s).\r\n\r\n\
                 {waiting} alarms still wait in the outbox and are being published.\r\n",
                utc_string(*until),
                utc_string(*since),
                until - since
            ),
            format!("recovered.{since}"),
        ),
    };
    Mail {
        from: ops.from.clone(),
        to: ops.to.clone(),
        subject,
        text,
        message_id: smtp::message_id(&["ops", host, &id]),
    }
}

/// Watches `healthy` (the outbox relay's last attempt) and mails the operators, until `stop`.
pub async fn watch(
    ops: OpsEmail,
    healthy: impl Fn() -> bool + Send + 'static,
    store: Arc<dyn Store>,
    clock: Clock,
    stop: CancellationToken,
) {
    let host = hostname();
    let mut watch = OpsWatch::default();
    let mut unsent: VecDeque<Tell> = VecDeque::new();
    let mut next_try = tokio::time::Instant::now();
    loop {
        if let Some(tell) = watch.observe(healthy(), clock.now()) {
            unsent.push_back(tell);
            next_try = tokio::time::Instant::now();
        }
        if let Some(tell) = unsent.front()
            && tokio::time::Instant::now() >= next_try
        {
            let waiting = store.outbox_len().await.ok();
            let m = mail(&ops, tell, waiting, &host);
            match smtp::send(&ops.smtp, &m).await {
                Ok(reply) => {
                    tracing::info!(to = %ops.to.join(","), "ops e-mail sent: {}: {reply}", m.subject);
                    unsent.pop_front();
                }
                Err(e) => {
                    tracing::error!(server = %ops.smtp.address, "ops e-mail not sent, retrying in {} s: {e}", RESEND.as_secs());
                    next_try = tokio::time::Instant::now() + RESEND;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(LOOK) => {}
        }
    }
}

/// This machine's name (what the mails say), `flowwatch` if it has none.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "flowwatch".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_server_recipients_and_sender() {
        let o = OpsEmail::parse("smtp://127.0.0.1:2525/ops@example.com").unwrap();
        assert_eq!(o.smtp.address, "127.0.0.1:2525");
        assert_eq!(o.to, ["ops@example.com"]);
        assert_eq!(o.from, "flowwatch@127.0.0.1");
        let o =
            OpsEmail::parse("smtp://u:p@mail:587/a@x.org,b@x.org?starttls=required&from=fw@x.org")
                .unwrap();
        assert_eq!(o.to, ["a@x.org", "b@x.org"]);
        assert_eq!(o.from, "fw@x.org");
        assert!(o.smtp.starttls);
        assert_eq!(o.smtp.login, Some(("u".into(), "p".into())));
        for bad in [
            "smtp://mail:25",
            "smtp://mail:25/",
            "smtp://mail:25/nobody",
            "http://mail:25/a@x.org",
            "smtp://mail/a@x.org",
            "smtp://mail:25/a@x.org?tls=yes",
        ] {
            assert!(OpsEmail::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_mail_after_two_minutes_of_failure_and_one_when_it_works_again() {
        let mut w = OpsWatch::default();
        assert_eq!(w.observe(true, 0), None);
        assert_eq!(w.observe(false, 10), None);
        assert_eq!(w.observe(false, 129), None);
        assert_eq!(w.observe(false, 130), Some(Tell::Down { since: 10 }));
        assert_eq!(w.observe(false, 500), None, "told once");
        assert_eq!(
            w.observe(true, 600),
            Some(Tell::Recovered {
                since: 10,
                until: 600
            })
        );
        assert_eq!(w.observe(true, 601), None);
        // A failure shorter than two minutes is not told, nor its end.
        assert_eq!(w.observe(false, 700), None);
        assert_eq!(w.observe(false, 819), None);
        assert_eq!(w.observe(true, 820), None);
        assert_eq!(w.observe(false, 900), None);
        assert_eq!(w.observe(false, 1019), None, "counted from the new failure");
    }

    #[test]
    fn the_mails_say_what_happened_and_how_many_wait() {
        let o = OpsEmail::parse("smtp://127.0.0.1:2525/ops@example.com").unwrap();
        let down = mail(
            &o,
            &Tell::Down {
                since: 1_485_900_000,
            },
            Some(7),
            "node1",
        );
        assert_eq!(
            down.subject,
            "[flowwatch] alarms cannot be published on NATS (node1)"
        );
        assert!(
            down.text.contains("since 2017-01-31T22:00:00Z"),
            "{}",
            down.text
        );
        assert!(down.text.contains("7 alarms wait in the outbox"));
        let up = mail(
            &o,
            &Tell::Recovered {
                since: 1_485_900_000,
                until: 1_485_900_300,
            },
            None,
            "node1",
        );
        assert!(up.subject.contains("published on NATS again"));
        assert!(up.text.contains("300 s"));
        assert_ne!(down.message_id, up.message_id);
    }
}
