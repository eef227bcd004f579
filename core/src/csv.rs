//! CSV fields as RFC 4180 quotes them (`"a,b"`, `""` for a quote): what the traffic CSV and
//! the tick CSV (SPEC §6) share.

use std::borrow::Cow;

use crate::InputError;

/// Splits a CSV line into `fields` (cleared first), RFC 4180 quoting: `"a,b"`, `""` for a
/// quote; an unquoted field is borrowed.
pub fn split_fields<'a>(line: &'a str, fields: &mut Vec<Cow<'a, str>>) -> Result<(), InputError> {
    fields.clear();
    let mut rest = line;
    loop {
        if let Some(after) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if after[i + 1..].starts_with('"') {
                            value.push('"');
                            chars.next();
                        } else {
                            break i + 1;
                        }
                    }
                    Some((_, c)) => value.push(c),
                    None => return Err(InputError::Quoting("unterminated quoted field")),
                }
            };
            fields.push(Cow::Owned(value));
            rest = &after[end..];
            match rest.strip_prefix(',') {
                Some(r) => rest = r,
                None if rest.is_empty() => return Ok(()),
                None => {
                    return Err(InputError::Quoting("unexpected text after a quoted field"));
                }
            }
        } else {
            match rest.split_once(',') {
                Some((field, r)) => {
                    fields.push(Cow::Borrowed(field));
                    rest = r;
                }
                None => {
                    fields.push(Cow::Borrowed(rest));
                    return Ok(());
                }
            }
        }
    }
}

/// A field, quoted only if it holds a comma, quote or line break (RFC 4180).
pub fn write_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed_and_read_back() {
        let parts = ["plain", "a,b", "say \"hi\"", "two\nlines", ""];
        let mut line = String::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            write_field(&mut line, p);
        }
        assert_eq!(line, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",");
        let mut fields = Vec::new();
        split_fields(&line, &mut fields).unwrap();
        assert_eq!(fields, parts);
        assert!(
            matches!(fields[0], Cow::Borrowed(_)),
            "unquoted fields are borrowed"
        );
        assert_eq!(
            split_fields("\"a\"b", &mut fields).unwrap_err().to_string(),
            "unexpected text after a quoted field"
        );
        assert_eq!(
            split_fields("\"a", &mut fields).unwrap_err().to_string(),
            "unterminated quoted field"
        );
    }
}
