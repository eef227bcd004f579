//! Byte encodings shared by the key-value backends: order-preserving keys and fixed-layout
//! values.

use flowwatch_core::detection::{Band, Status, TickValues};
use flowwatch_core::time::Instant;
use flowwatch_core::{FlowId, FlowKind};

use crate::error::{Error, Result};
use crate::model::{Bucket, Scope, StoredTick};

/// Appends `flow` as a key prefix: each part length-prefixed, so no flow's key is a prefix of
/// another's. Country first, then LoB: the flows of a country or a LoB share a prefix
/// ([`scope_key`]).
pub fn flow_key(flow: &FlowId, out: &mut Vec<u8>) {
    for part in [
        flow.country.as_str(),
        flow.lob.as_str(),
        flow.kind.as_str(),
        flow.name.as_str(),
    ] {
        key_part(part, out);
    }
}

/// Appends the prefix the keys of every flow in `scope` start with (and no other flow's).
pub fn scope_key(scope: Scope<'_>, out: &mut Vec<u8>) {
    for part in [Some(scope.country), scope.lob].into_iter().flatten() {
        key_part(part, out);
    }
}

fn key_part(part: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(part.len() as u16).to_be_bytes());
    out.extend_from_slice(part.as_bytes());
}

/// Reads a flow key from the start of `bytes`; returns the flow and the key's length.
pub fn decode_flow_key(bytes: &[u8]) -> Result<(FlowId, usize)> {
    let mut at = 0;
    let mut parts: [&str; 4] = [""; 4];
    for part in &mut parts {
        let len = bytes
            .get(at..at + 2)
            .ok_or_else(|| corrupt("short flow key"))?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let text = bytes
            .get(at + 2..at + 2 + len)
            .ok_or_else(|| corrupt("short flow key"))?;
        *part = std::str::from_utf8(text).map_err(|_| corrupt("flow key not UTF-8"))?;
        at += 2 + len;
    }
    let kind = FlowKind::parse(parts[2]).ok_or_else(|| corrupt("unknown flow kind"))?;
    let flow = FlowId {
        country: parts[0].into(),
        lob: parts[1].into(),
        kind,
        name: parts[3].into(),
    };
    Ok((flow, at))
}

/// An instant as 8 bytes that sort like the instant.
pub fn time(t: Instant) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// The inverse of [`time`].
pub fn decode_time(b: &[u8]) -> Result<Instant> {
    let b: [u8; 8] = b.try_into().map_err(|_| corrupt("time is not 8 bytes"))?;
    Ok((u64::from_be_bytes(b) ^ (1 << 63)) as Instant)
}

fn corrupt(detail: &str) -> Error {
    Error::Corrupt {
        place: "embedded store".into(),
        detail: detail.into(),
    }
}

/// The buckets of one flow in one minute, by second of the minute.
pub type Minute = [Option<(u64, u64)>; 60];

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(v: &[u8], at: &mut usize) -> Result<u64> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *v.get(*at).ok_or_else(|| corrupt("truncated varint"))?;
        *at += 1;
        x |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(x);
        }
    }
    Err(corrupt("varint longer than 64 bits"))
}

/// A minute's value: for each occupied second, its offset (one byte), bytes and records as
/// varints. A typical bucket takes 5–7 bytes.
pub fn minute_value(m: &Minute) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    for (offset, slot) in m.iter().enumerate() {
        if let Some((bytes, records)) = slot {
            v.push(offset as u8);
            put_varint(&mut v, *bytes);
            put_varint(&mut v, *records);
        }
    }
    v
}

/// Decodes a minute's value.
pub fn decode_minute(v: &[u8]) -> Result<Minute> {
    let mut m: Minute = [None; 60];
    let mut at = 0;
    while at < v.len() {
        let offset = v[at] as usize;
        at += 1;
        if offset >= 60 {
            return Err(corrupt("second offset beyond a minute"));
        }
        let bytes = get_varint(v, &mut at)?;
        let records = get_varint(v, &mut at)?;
        m[offset] = Some((bytes, records));
    }
    Ok(m)
}

/// The buckets of a decoded minute starting at `minute`, in time order.
pub fn minute_buckets(minute: Instant, m: &Minute) -> impl Iterator<Item = Bucket> + '_ {
    m.iter().enumerate().filter_map(move |(o, slot)| {
        slot.map(|(bytes, records)| Bucket {
            second: minute + o as Instant,
            bytes,
            records,
        })
    })
}

/// An event's place in time order: `time ‖ id`.
pub fn event_key(t: Instant, id: &str) -> Vec<u8> {
    let mut k = time(t).to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// The opaque page cursor of an event key (hex).
pub fn encode_cursor(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The event key of a cursor; [`Error::Invalid`] for anything a page did not return.
pub fn decode_cursor(c: &str) -> Result<(Instant, String)> {
    let bad = || Error::Invalid {
        what: format!("invalid event cursor \"{c}\": use the one a page returned"),
    };
    if !c.len().is_multiple_of(2) || c.len() < 16 {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..c.len() / 2)
        .map(|i| u8::from_str_radix(&c[2 * i..2 * i + 2], 16).map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let id = String::from_utf8(bytes[8..].to_vec()).map_err(|_| bad())?;
    Ok((decode_time(&bytes[..8])?, id))
}

/// A status as a small number (stored by every backend).
pub fn status_code(s: Status) -> u8 {
    match s {
        Status::Ok => 0,
        Status::Warning => 1,
        Status::Outage => 2,
        Status::NotAvailable => 3,
    }
}

/// The inverse of [`status_code`].
pub fn status_from(code: u8) -> Option<Status> {
    Some(match code {
        0 => Status::Ok,
        1 => Status::Warning,
        2 => Status::Outage,
        3 => Status::NotAvailable,
        _ => return None,
    })
}

const TICK_LEN: usize = 8 * 3 + 2 + 8 * 5 + 8 * 2;
/// The adaptive detector's band after a tick's fields (SPEC §10): four numbers. A value
/// without it (every tick of the seed mode, and every tick stored before it existed) is
/// [`TICK_LEN`] long.
const BAND_LEN: usize = 8 * 4;

/// A tick's value (the flow is in the key).
pub fn tick_value(t: &StoredTick) -> Vec<u8> {
    let mut v = Vec::with_capacity(TICK_LEN);
    v.extend_from_slice(&t.start.to_le_bytes());
    v.extend_from_slice(&t.end.to_le_bytes());
    v.extend_from_slice(&t.actual.to_le_bytes());
    v.push(status_code(t.status));
    v.push(t.values.is_some() as u8);
    let x = t.values.unwrap_or(TickValues {
        expected: 0.0,
        day_average: 0.0,
        tick_difference: 0.0,
        day_difference: 0.0,
        difference: 0.0,
        band: None,
    });
    for f in [
        x.expected,
        x.day_average,
        x.tick_difference,
        x.day_difference,
        x.difference,
    ] {
        v.extend_from_slice(&f.to_le_bytes());
    }
    v.extend_from_slice(&t.evaluated_at.to_le_bytes());
    v.extend_from_slice(&t.epoch.to_le_bytes());
    if let Some(b) = t.values.and_then(|v| v.band) {
        for f in [b.lower, b.outage_below, b.evidence, b.spread] {
            v.extend_from_slice(&f.to_le_bytes());
        }
    }
    v
}

/// Decodes a tick of `flow` from its value.
pub fn decode_tick(flow: FlowId, v: &[u8]) -> Result<StoredTick> {
    if v.len() != TICK_LEN && v.len() != TICK_LEN + BAND_LEN {
        return Err(corrupt("tick value has the wrong length"));
    }
    let w = |at: usize| -> [u8; 8] { v[at..at + 8].try_into().expect("8 bytes") };
    let status = status_from(v[24]).ok_or_else(|| corrupt("unknown tick status"))?;
    let f = |i: usize| f64::from_le_bytes(w(26 + 8 * i));
    let values = (v[25] == 1).then(|| TickValues {
        expected: f(0),
        day_average: f(1),
        tick_difference: f(2),
        day_difference: f(3),
        difference: f(4),
        band: (v.len() == TICK_LEN + BAND_LEN).then(|| Band {
            // After `evaluated_at` and `epoch` (the 6th and 7th numbers).
            lower: f(7),
            outage_below: f(8),
            evidence: f(9),
            spread: f(10),
        }),
    });
    Ok(StoredTick {
        flow,
        start: i64::from_le_bytes(w(0)),
        end: i64::from_le_bytes(w(8)),
        actual: u64::from_le_bytes(w(16)),
        status,
        values,
        evaluated_at: i64::from_le_bytes(w(66)),
        epoch: u64::from_le_bytes(w(74)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_like_their_values() {
        let mut times: Vec<Instant> = vec![-5, 0, 3, i64::MIN, i64::MAX, 1_500_000_000];
        let mut encoded: Vec<[u8; 8]> = times.iter().map(|&t| time(t)).collect();
        times.sort();
        encoded.sort();
        let decoded: Vec<Instant> = encoded.iter().map(|b| decode_time(b).unwrap()).collect();
        assert_eq!(decoded, times);
    }

    #[test]
    fn flow_keys_round_trip_and_never_prefix_each_other() {
        let a = FlowId::new("CZ", "GSM", FlowKind::Input, "A").unwrap();
        let ab = FlowId::new("CZ", "GSM", FlowKind::Input, "AB").unwrap();
        let (mut ka, mut kab) = (Vec::new(), Vec::new());
        flow_key(&a, &mut ka);
        flow_key(&ab, &mut kab);
        assert!(!kab.starts_with(&ka));
        assert_eq!(decode_flow_key(&kab).unwrap(), (ab, kab.len()));
        assert!(decode_flow_key(&ka[..5]).is_err());
    }

    #[test]
    fn a_scope_prefixes_the_keys_of_its_flows_only() {
        let key = |country, lob| {
            let mut k = Vec::new();
            flow_key(
                &FlowId::new(country, lob, FlowKind::Forward, "A:B").unwrap(),
                &mut k,
            );
            k
        };
        let prefix = |scope| {
            let mut p = Vec::new();
            scope_key(scope, &mut p);
            p
        };
        let cz = prefix(Scope::country("CZ"));
        let cz_gsm = prefix(Scope::lob("CZ", "GSM"));
        assert!(key("CZ", "GSM").starts_with(&cz) && key("CZ", "SMS").starts_with(&cz));
        assert!(key("CZ", "GSM").starts_with(&cz_gsm));
        for other in [key("CZE", "GSM"), key("C", "ZGSM"), key("DE", "GSM")] {
            assert!(!other.starts_with(&cz), "{other:?}");
        }
        for other in [key("CZ", "GSMX"), key("CZ", "SMS")] {
            assert!(!other.starts_with(&cz_gsm), "{other:?}");
        }
    }

    #[test]
    fn minutes_round_trip() {
        let mut m: Minute = [None; 60];
        m[0] = Some((0, 0));
        m[7] = Some((18_838_553, 3));
        m[59] = Some((u64::MAX, u64::MAX));
        assert_eq!(decode_minute(&minute_value(&m)).unwrap(), m);
        let b: Vec<Bucket> = minute_buckets(600, &m).collect();
        assert_eq!(
            b[1],
            Bucket {
                second: 607,
                bytes: 18_838_553,
                records: 3
            }
        );
        assert!(decode_minute(&[60, 1, 1]).is_err());
        assert!(decode_minute(&[3, 0x80]).is_err());
        assert_eq!(minute_value(&[None; 60]), Vec::<u8>::new());
    }

    #[test]
    fn ticks_round_trip() {
        let flow = FlowId::new("CZ", "GSM", FlowKind::Forward, "A:B").unwrap();
        for values in [
            None,
            Some(TickValues {
                expected: 1.5,
                day_average: 2.0,
                tick_difference: 0.3,
                day_difference: 0.9,
                difference: 0.9,
                band: None,
            }),
            Some(TickValues {
                expected: 1.5,
                day_average: 2.0,
                tick_difference: 0.3,
                day_difference: 0.9,
                difference: 0.3,
                band: Some(Band {
                    lower: 1.1,
                    outage_below: 0.7,
                    evidence: 4.25,
                    spread: 0.125,
                }),
            }),
        ] {
            let t = StoredTick {
                flow: flow.clone(),
                start: 100,
                end: 3700,
                actual: 7,
                status: if values.is_some() {
                    Status::Warning
                } else {
                    Status::NotAvailable
                },
                values,
                evaluated_at: 3820,
                epoch: 4,
            };
            assert_eq!(decode_tick(flow.clone(), &tick_value(&t)).unwrap(), t);
        }
        assert!(decode_tick(flow, &[1, 2, 3]).is_err());
    }
}
