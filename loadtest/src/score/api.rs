//! The ticks of a running flowwatch, read over its API: the flows of `GET /api/v1/flows`, then
//! each flow's ticks from `GET /api/v1/flows/{country}/{lob}/{kind}/{flow}/ticks`, over the
//! gateway's own HTTP client.

use anyhow::{Context, Result, anyhow, bail};
use chrono::NaiveDate;
use flowwatch_core::detection::Status;
use flowwatch_core::time::parse_rfc3339;
use flowwatch_core::{FlowId, FlowKind};
use flowwatch_gateway::client::{Connection, Response, authority};
use serde::Deserialize;

use super::{Label, Report, Scorer, Tick};

/// `GET /api/v1/flows`, as far as the scorer reads it.
#[derive(Deserialize)]
struct Tree {
    countries: Vec<TreeCountry>,
}

#[derive(Deserialize)]
struct TreeCountry {
    code: String,
    lobs: Vec<TreeLob>,
}

#[derive(Deserialize)]
struct TreeLob {
    name: String,
    inputs: Vec<TreeInput>,
}

#[derive(Deserialize)]
struct TreeInput {
    name: String,
    #[serde(default)]
    forwards: Vec<TreeForward>,
}

#[derive(Deserialize)]
struct TreeForward {
    name: String,
}

/// A tick of `GET …/ticks`, as far as the scorer reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiTick {
    tick_start: String,
    tick_end: String,
    status: String,
}

#[derive(Deserialize)]
struct ApiTicks {
    ticks: Vec<ApiTick>,
}

/// A path segment with every byte but the unreserved ones (RFC 3986) percent-encoded.
fn encode_segment(s: &str) -> String {
    flowwatch_core::id::percent_encode(s, b"-._~")
}

/// A keep-alive connection to the API that reconnects when needed.
struct Api {
    host: String,
    key: String,
    connection: Option<Connection>,
}

impl Api {
    /// One GET; sent again once on a new connection if no answer came (a GET changes nothing).
    async fn get(&mut self, path: &str) -> Result<Response> {
        let mut tries = 0;
        loop {
            tries += 1;
            let c = match self.connection.as_mut() {
                Some(c) => c,
                None => self.connection.insert(
                    Connection::open(&self.host)
                        .await
                        .with_context(|| format!("cannot connect to {}", self.host))?,
                ),
            };
            match c
                .request("GET", path, &[("X-API-Key", self.key.as_str())], b"")
                .await
            {
                Ok(r) => {
                    if r.close {
                        self.connection = None;
                    }
                    return Ok(r);
                }
                Err(e) => {
                    self.connection = None;
                    if tries >= 2 {
                        return Err(anyhow!("GET {path}: {e}"));
                    }
                }
            }
        }
    }

    /// A GET answered 200 with JSON, parsed.
    async fn get_json<T: for<'de> Deserialize<'de>>(&mut self, path: &str) -> Result<Option<T>> {
        let r = self.get(path).await?;
        match r.status {
            200 => serde_json::from_slice(&r.body)
                .map(Some)
                .with_context(|| format!("GET {path}: unexpected answer")),
            404 => Ok(None),
            s => bail!("GET {path} answered {s}: {}", r.error_message()),
        }
    }
}

/// Scores the ticks a running flowwatch at `url` holds for the local days `[from, to)`: every
/// flow of `GET /api/v1/flows`, each flow's ticks from `GET /api/v1/flows/…/ticks`.
pub async fn score_api(
    labels: Vec<Label>,
    url: &str,
    api_key: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Report> {
    let mut api = Api {
        host: authority(url)?.to_owned(),
        key: api_key.to_owned(),
        connection: None,
    };
    let tree: Tree = api
        .get_json("/api/v1/flows")
        .await?
        .context("GET /api/v1/flows: not found")?;
    let mut flows = Vec::new();
    for country in &tree.countries {
        for lob in &country.lobs {
            for input in &lob.inputs {
                let names = std::iter::once((FlowKind::Input, &input.name))
                    .chain(input.forwards.iter().map(|f| (FlowKind::Forward, &f.name)));
                for (kind, name) in names {
                    match FlowId::new(&country.code, &lob.name, kind, name) {
                        Ok(id) => flows.push(id),
                        Err(e) => bail!("GET /api/v1/flows: {e}"),
                    }
                }
            }
        }
    }
    let (from, to) = (from.format("%Y-%m-%d"), to.format("%Y-%m-%d"));
    let mut scorer = Scorer::new(labels);
    for flow in flows {
        let path = format!(
            "/api/v1/flows/{}/{}/{}/{}/ticks?from={from}&to={to}",
            encode_segment(&flow.country),
            encode_segment(&flow.lob),
            flow.kind,
            encode_segment(&flow.name)
        );
        // Not found: a listed input without traffic of its own, or a flow gone since.
        let Some(answer) = api.get_json::<ApiTicks>(&path).await? else {
            continue;
        };
        let mut ticks = answer
            .ticks
            .iter()
            .map(|t| {
                let status = Status::parse(&t.status)
                    .ok_or_else(|| anyhow!("invalid status \"{}\"", t.status))?;
                let start = parse_rfc3339(&t.tick_start)?;
                let end = parse_rfc3339(&t.tick_end)?;
                Ok(Tick { start, end, status })
            })
            .collect::<Result<Vec<Tick>>>()
            .map_err(|e| anyhow!("GET {path}: {e}"))?;
        if ticks.is_empty() {
            continue;
        }
        ticks.sort_by_key(|t| t.start);
        scorer
            .begin_flow(flow)
            .map_err(|e| anyhow!("GET {path}: {e}"))?;
        for t in ticks {
            scorer.tick(t).map_err(|e| anyhow!("GET {path}: {e}"))?;
        }
    }
    Ok(scorer.finish())
}

#[cfg(test)]
mod tests {
    use super::super::parse_labels;
    use super::super::tests::{A, HOUR, T0, labels};
    use super::*;
    use flowwatch_core::time::utc_string;
    use serde_json::json;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("A:CZ-FOX"), "A%3ACZ-FOX");
        assert_eq!(encode_segment("a b/ü"), "a%20b%2F%C3%BC");
    }

    /// A fake flowwatch API on one keep-alive connection: the flow tree, two flows' ticks, and
    /// 404 for a listed input without traffic. Checks the key.
    async fn fake_api() -> String {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut s = BufReader::new(s);
            let tick = |h: i64, status: &str| {
                json!({"tickStart": utc_string(T0 + h * HOUR),
                       "tickEnd": utc_string(T0 + (h + 1) * HOUR),
                       "actual": 0, "expected": 1.0, "status": status})
            };
            loop {
                let mut request = String::new();
                if s.read_line(&mut request).await.unwrap() == 0 {
                    return;
                }
                let mut key_ok = false;
                loop {
                    let mut line = String::new();
                    s.read_line(&mut line).await.unwrap();
                    key_ok |= line.trim_end() == "X-API-Key: k";
                    if line == "\r\n" {
                        break;
                    }
                }
                let path = request.split(' ').nth(1).unwrap_or("");
                let q = "ticks?from=2017-02-01&to=2017-02-02";
                let (status, body) = if !key_ok {
                    (401, json!({"error": {"message": "unknown API key"}}))
                } else if path == "/api/v1/flows" {
                    (
                        200,
                        json!({"countries": [{"code": "CZ", "counts": {}, "lobs": [{
                        "name": "GSM", "counts": {},
                        "inputs": [
                            {"name": "A", "forwards": [{"name": "A:T"}]},
                            {"name": "B C", "forwards": []},
                        ]}]}]}),
                    )
                } else if path == format!("/api/v1/flows/CZ/GSM/input/A/{q}") {
                    // Out of order on purpose: the scorer sorts a flow's ticks.
                    (
                        200,
                        json!({"ticks": [tick(1, "OUTAGE"), tick(0, "OK"), tick(2, "OK")]}),
                    )
                } else if path == format!("/api/v1/flows/CZ/GSM/forward/A%3AT/{q}") {
                    (
                        200,
                        json!({"ticks": [tick(0, "OUTAGE"), tick(1, "OUTAGE"), tick(2, "N_A")]}),
                    )
                } else {
                    (404, json!({"error": {"message": format!("no {path}")}}))
                };
                let body = body.to_string();
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.get_mut().write_all(answer.as_bytes()).await.unwrap();
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn scores_the_ticks_of_a_running_flowwatch() {
        let url = fake_api().await;
        let outages = labels(&[
            (A, 1800, 2 * HOUR, "stop"),
            ("CZ,GSM,input,B C", 0, HOUR, "stop"),
        ]);
        let labels = parse_labels(&outages, "outages.json").unwrap();
        let day = |d| NaiveDate::from_ymd_opt(2017, 2, d).unwrap();
        let r = score_api(labels.clone(), &url, "k", day(1), day(2))
            .await
            .unwrap();
        assert_eq!((r.flows, r.ticks, r.outage_ticks), (2, 6, 3));
        assert_eq!((r.events, r.evaluated), (2, 1));
        assert_eq!(r.delays, vec![2 * HOUR - 1800]);
        // The forward's episode [0, 2 h) overlaps its input's window.
        assert_eq!(r.false_alarms, 0);
        let url = fake_api().await;
        let e = score_api(labels, &url, "wrong", day(1), day(2))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "GET /api/v1/flows answered 401: unknown API key"
        );
    }
}
