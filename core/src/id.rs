//! Flow identity.

use crate::InputError;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Whether a flow is an input of the mediation system or a forward to another system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowKind {
    // Declared in the order of their spellings, so flows sort the same as their text does.
    /// Data of an input forwarded to a target system; named `INPUT:TARGET`.
    Forward,
    /// Data entering the mediation system.
    Input,
}

impl FlowKind {
    /// The spelling used in files and APIs: `input` or `forward`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Input => "input",
            FlowKind::Forward => "forward",
        }
    }

    /// Parses `input` / `forward`, and the seed's plural `inputs` / `forwards`.
    pub fn parse(s: &str) -> Option<FlowKind> {
        match s {
            "input" | "inputs" => Some(FlowKind::Input),
            "forward" | "forwards" => Some(FlowKind::Forward),
            _ => None,
        }
    }
}

impl fmt::Display for FlowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FlowKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FlowKind::parse(s).ok_or_else(|| format!("invalid kind \"{s}\": expected input or forward"))
    }
}

/// One flow: `(country, lob, kind, name)`. Ordered by country, LoB, kind, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FlowId {
    /// Country code, e.g. `CZ`.
    pub country: String,
    /// Line of business, e.g. `GSM`.
    pub lob: String,
    /// Input or forward.
    pub kind: FlowKind,
    /// The flow's name; a forward's is `INPUT:TARGET`.
    pub name: String,
}

/// A hash map keyed by flow id with a fast non-cryptographic hash (the keys are not chosen
/// by an attacker who gains from collisions: a flow exists once it has traffic).
pub type FlowMap<V> = std::collections::HashMap<FlowId, V, crate::hash::FxBuildHasher>;

impl FlowId {
    /// Builds a flow id, checking the rules every path shares: no empty part, and a forward's
    /// name has the form `INPUT:TARGET` with both sides non-empty.
    pub fn new(country: &str, lob: &str, kind: FlowKind, name: &str) -> Result<FlowId, InputError> {
        validate_parts(country, lob, kind, name)?;
        Ok(FlowId {
            country: country.to_owned(),
            lob: lob.to_owned(),
            kind,
            name: name.to_owned(),
        })
    }

    /// For a forward `INPUT:TARGET`, the name of its input; `None` for an input.
    pub fn input_name(&self) -> Option<&str> {
        match self.kind {
            FlowKind::Input => None,
            FlowKind::Forward => forward_input(&self.name),
        }
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.country, self.lob, self.kind, self.name
        )
    }
}

/// A flow id part as one NATS subject token: ASCII letters, digits, `-`, `_` and `:` stay as
/// they are, every other byte (of the UTF-8 form) becomes `%XX` (upper-case hex), `%` included.
/// So any part is a valid single token (no `.`, `*`, `>` or white space), and distinct parts
/// give distinct tokens.
pub fn subject_token(part: &str) -> String {
    percent_encode(part, b"-_:")
}

/// `text` with every byte of its UTF-8 form but ASCII letters, digits and `keep` written as
/// `%XX` (upper-case hex).
pub fn percent_encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl FlowId {
    /// The flow's partition of `partitions` (at least 1): a stable hash (FNV-1a, 64 bits, of
    /// the four parts each followed by a 0xFF byte, which no UTF-8 text holds), so every
    /// process and every version agrees where a flow's traffic goes.
    pub fn partition(&self, partitions: u32) -> u32 {
        let mut h = FNV_OFFSET;
        for part in [&*self.country, &*self.lob, self.kind.as_str(), &*self.name] {
            h = fnv1a(fnv1a(h, part.as_bytes()), &[0xFF]);
        }
        (h % u64::from(partitions.max(1))) as u32
    }

    /// The flow's subject under `prefix`: `<prefix>.<country>.<lob>.<kind>.<flow>`, each part
    /// escaped by [`subject_token`].
    pub fn subject(&self, prefix: &str) -> String {
        format!(
            "{prefix}.{}.{}.{}.{}",
            subject_token(&self.country),
            subject_token(&self.lob),
            self.kind,
            subject_token(&self.name)
        )
    }
}

/// The input part of a forward's name `INPUT:TARGET`.
pub fn forward_input(name: &str) -> Option<&str> {
    name.split_once(':').map(|(input, _)| input)
}

/// Checks the parts of a flow id without allocating (the ingest hot path calls it per record).
pub fn validate_parts(
    country: &str,
    lob: &str,
    kind: FlowKind,
    name: &str,
) -> Result<(), InputError> {
    if country.is_empty() {
        return Err(InputError::Empty("country"));
    }
    if lob.is_empty() {
        return Err(InputError::Empty("lob"));
    }
    if name.is_empty() {
        return Err(InputError::Empty("flow name"));
    }
    if kind == FlowKind::Forward {
        match name.split_once(':') {
            Some((input, target)) if !input.is_empty() && !target.is_empty() => {}
            _ => return Err(InputError::ForwardName(name.to_owned())),
        }
    }
    Ok(())
}

/// FNV-1a's 64-bit offset basis: the hash of nothing.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a (64 bits) of `bytes` continued from `h`: stable across processes, platforms and
/// versions (flow partitions, placement weights).
pub(crate) fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_map_hashes_spread_names_that_differ_only_at_their_end() {
        use std::hash::BuildHasher;
        // Hash maps index by the low bits: 100 000 generated names over 2^17 slots should
        // land about as a random function puts them (~70 000 distinct slots).
        let hasher = <FlowMap<()>>::default().hasher().clone();
        let slots: std::collections::HashSet<u64> = (0..100_000)
            .map(|i| {
                let f = FlowId::new("CZ", "LOAD", FlowKind::Input, &format!("L{i:06}")).unwrap();
                hasher.hash_one(&f) & ((1 << 17) - 1)
            })
            .collect();
        assert!(slots.len() > 60_000, "{} distinct slots", slots.len());
    }

    #[test]
    fn forward_names_its_input() {
        let f = FlowId::new("CZ", "GSM", FlowKind::Forward, "DARE2FEE:CZFOX-DARAMXFEE").unwrap();
        assert_eq!(f.input_name(), Some("DARE2FEE"));
        let i = FlowId::new("CZ", "GSM", FlowKind::Input, "DARE2FEE").unwrap();
        assert_eq!(i.input_name(), None);
    }

    #[test]
    fn subject_tokens_are_single_valid_tokens() {
        assert_eq!(subject_token("MSSBRN1A:CZFOX-GSM"), "MSSBRN1A:CZFOX-GSM");
        assert_eq!(subject_token("a.b *>%"), "a%2Eb%20%2A%3E%25");
        assert_eq!(subject_token("Plzeň"), "Plze%C5%88");
        let f = FlowId::new("CZ", "Paid SMS", FlowKind::Forward, "IN.1:OUT>2").unwrap();
        assert_eq!(
            f.subject("flowwatch.alarms"),
            "flowwatch.alarms.CZ.Paid%20SMS.forward.IN%2E1:OUT%3E2"
        );
        // Distinct parts stay distinct: "%2E" literally is escaped itself.
        assert_ne!(subject_token("a.b"), subject_token("a%2Eb"));
        for part in ["a.b", "x y", "*", ">", "tab\t", "%"] {
            let t = subject_token(part);
            assert!(
                !t.is_empty() && !t.contains(['.', '*', '>', ' ', '\t']),
                "{part} -> {t}"
            );
        }
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        let f = |name: &str| FlowId::new("CZ", "GSM", FlowKind::Input, name).unwrap();
        // Fixed values: a change here moves every flow's traffic to another partition.
        // (Computed independently: FNV-1a of b"CZ\xffGSM\xffinput\xffA\xff" is
        // 13072362699731711122.)
        assert_eq!(
            ["A", "B", "MSSBRN1A"].map(|n| f(n).partition(16)),
            [2, 13, 10]
        );
        assert_eq!(
            f("A").partition(u32::MAX),
            (13072362699731711122u64 % 4294967295) as u32
        );
        assert_eq!(f("A").partition(1), 0);
        assert_eq!(f("A").partition(0), 0);
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            counts[f(&format!("F{i}")).partition(8) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn rejects_bad_parts() {
        assert!(FlowId::new("", "GSM", FlowKind::Input, "A").is_err());
        assert!(FlowId::new("CZ", "", FlowKind::Input, "A").is_err());
        assert!(FlowId::new("CZ", "GSM", FlowKind::Input, "").is_err());
        let e = FlowId::new("CZ", "GSM", FlowKind::Forward, "NOCOLON").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid forward name \"NOCOLON\": expected INPUT:TARGET"
        );
        assert!(FlowId::new("CZ", "GSM", FlowKind::Forward, ":X").is_err());
        assert!(FlowId::new("CZ", "GSM", FlowKind::Forward, "X:").is_err());
    }

    #[test]
    fn kinds_parse_both_spellings() {
        assert_eq!(FlowKind::parse("inputs"), Some(FlowKind::Input));
        assert_eq!(FlowKind::parse("forward"), Some(FlowKind::Forward));
        assert_eq!(FlowKind::parse("Input"), None);
    }

    #[test]
    fn order_is_country_lob_kind_name_as_text() {
        let a = FlowId::new("CZ", "GSM", FlowKind::Input, "A").unwrap();
        let b = FlowId::new("CZ", "GSM", FlowKind::Forward, "Z:B").unwrap();
        assert!(b < a, "\"forward\" sorts before \"input\"");
        let c = FlowId::new("CZ", "SMS", FlowKind::Forward, "A:B").unwrap();
        assert!(a < c, "lob before kind");
    }
}
