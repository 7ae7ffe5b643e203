//! How Kubernetes reads YAML: go-yaml v2 scalar resolution (YAML 1.1) and the JSON
//! conversion of sigs.k8s.io/yaml, which kubectl (and KubeRay, for `runtimeEnvYAML`) apply
//! before anything reaches the API server.
//!
//! A scanner that reads YAML 1.2 sees `privileged: yes` as the string "yes"; Kubernetes sees
//! `true`. So the loader resolves every scalar here, once, and stores the form Kubernetes
//! would produce (`true`, `16`, `1000`), and converts every mapping key to the JSON string
//! key Kubernetes would produce (`n:` is the key "false"). Merge keys are applied in key
//! order, later keys overwriting earlier ones, as go-yaml v2 does; duplicate keys keep the
//! last. What Kubernetes refuses (NaN or infinite values, null or collection keys, integer
//! keys past `i64`, a tagged value that does not fit its tag) is an error here too.
//!
//! `tests/kubectl_differential.rs` holds this module to `kubectl`'s own reading.

use crate::node::{Node, Pos, Value};
use compact_str::CompactString;
use std::collections::HashMap;

/// What a plain scalar means to go-yaml v2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    /// A non-negative integer past `i64::MAX` (a JSON number, but not a valid map key).
    Uint(u64),
    Float(f64),
    Str,
}

/// Resolves a plain (untagged, unquoted) scalar as go-yaml v2 does.
pub fn resolve_plain(s: &str) -> Resolved {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false)
        }
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match s.as_bytes()[0] {
        b'.' => {
            // strconv.ParseFloat on the text as written (no underscores allowed).
            if is_decimal_float(s) {
                if let Some(f) = parse_finite(s) {
                    return Resolved::Float(f);
                }
            }
            Resolved::Str
        }
        b'+' | b'-' | b'0'..=b'9' => {
            if looks_like_timestamp(s) {
                // go-yaml v2 keeps timestamps as their text when decoding into interface{}.
                return Resolved::Str;
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            if let Some(i) = go_parse_int(&plain) {
                return Resolved::Int(i);
            }
            if let Some(u) = go_parse_uint(&plain) {
                return Resolved::Uint(u);
            }
            if is_decimal_float(&plain) {
                if let Some(f) = parse_finite(&plain) {
                    return Resolved::Float(f);
                }
            }
            Resolved::Str
        }
        _ => Resolved::Str,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`, go-yaml v2's float syntax.
fn is_decimal_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's ParseFloat fails on overflow (±Inf); underflow gives zero without error.
fn parse_finite(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// go-yaml v2's quick check and layouts: `YYYY-M-D`, optionally with a time.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && {
        let rest = &s[5..];
        let date_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len());
        let mut parts = rest[..date_end].split('-');
        let ok = |p: Option<&str>| p.is_some_and(|p| (1..=2).contains(&p.len()));
        let (m, d) = (parts.next(), parts.next());
        if !(ok(m) && ok(d) && parts.next().is_none()) {
            return false;
        }
        let (m, d): (u32, u32) = (m.unwrap().parse().unwrap(), d.unwrap().parse().unwrap());
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return false;
        }
        // A time part, when present, must start with T, t or a space and a digit.
        let time = &rest[date_end..];
        time.is_empty()
            || (time.len() > 1
                && matches!(time.as_bytes()[0], b'T' | b't' | b' ')
                && time.as_bytes()[1].is_ascii_digit())
    }
}

/// strconv.ParseUint(s, 0, 64): `0x`, `0o`, `0b` prefixes, a leading `0` for octal.
fn go_parse_uint(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let (radix, digits) =
        if b[0] == b'0' && b.len() >= 3 && matches!(b[1] | 0x20, b'x' | b'o' | b'b') {
            let r = match b[1] | 0x20 {
                b'x' => 16,
                b'o' => 8,
                _ => 2,
            };
            (r, &s[2..])
        } else if b[0] == b'0' {
            (8, &s[1..])
        } else {
            (10, s)
        };
    if digits.is_empty() {
        return (radix == 8).then_some(0);
    }
    if !digits.bytes().all(|c| (c as char).is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// strconv.ParseInt(s, 0, 64).
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let u = go_parse_uint(rest)?;
    if neg {
        if u <= 1 << 63 {
            Some((u as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

/// A float as Go's encoding/json writes it and kubectl reads it back: integral values
/// below 1e21 as integers, others in the shortest form.
pub fn float_text(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        format!("{f:e}")
    } else if f == 0.0 {
        "0".to_string()
    } else {
        format!("{f}")
    }
}

/// A float map key as sigs.k8s.io/yaml writes it: `strconv.FormatFloat(f, 'g', -1, 32)`.
fn float_key(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let f32v = f as f32;
    if f32v == 0.0 {
        return if f32v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // The shortest digits of the float32, then Go's 'g' choice: %e when the exponent is
    // below -4 or at least 6 (the precision Go assumes for the shortest form).
    let e = format!("{f32v:e}"); // e.g. "1.234567e6", "-1e-5"
    let (mant, exp) = e.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let nd = digits.len() as i32;
    let dp = exp + 1; // decimal point position relative to the digits
    let eprec = 6;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if dp <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-dp) as usize));
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        out.push_str(&"0".repeat((dp - nd) as usize));
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
    out
}

/// Why Kubernetes would refuse a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub pos: Pos,
    pub message: String,
}

fn refuse(pos: Pos, message: impl Into<String>) -> Refusal {
    Refusal {
        pos,
        message: message.into(),
    }
}

/// The text and plainness a plain scalar takes after resolution: typed values in their
/// canonical form (`yes` → `true`, `0x10` → `16`), strings as written.
pub fn canonical_plain(text: &str, pos: Pos) -> Result<Option<CompactString>, Refusal> {
    Ok(match resolve_plain(text) {
        Resolved::Null | Resolved::Str => None,
        Resolved::Bool(b) => {
            let t = if b { "true" } else { "false" };
            (text != t).then(|| t.into())
        }
        Resolved::Int(i) => {
            let t = i.to_string();
            (text != t).then(|| t.into())
        }
        Resolved::Uint(u) => {
            let t = u.to_string();
            (text != t).then(|| t.into())
        }
        Resolved::Float(f) => {
            if !f.is_finite() {
                return Err(refuse(
                    pos,
                    format!(
                        "`{text}` is not a JSON number (Kubernetes refuses NaN and infinities)"
                    ),
                ));
            }
            let t = float_text(f);
            (text != t).then(|| t.into())
        }
    })
}

const CORE: &str = "tag:yaml.org,2002:";

/// Resolves a tagged scalar (`!!bool "yes"`, `!!binary …`, `!custom x`) to the text and
/// plainness the loader stores. `tag` is the full tag (`tag:yaml.org,2002:bool`, `!`,
/// `!custom`); `quoted` says the scalar was not plain.
pub fn resolve_tagged(tag: &str, text: &str, pos: Pos) -> Result<(CompactString, bool), Refusal> {
    let Some(short) = tag.strip_prefix(CORE) else {
        // `!`, local and foreign tags: go-yaml v2 keeps the text as a string.
        return Ok((text.into(), false));
    };
    match short {
        "str" => Ok((text.into(), false)),
        // `!!merge <<` is a merge key like a plain `<<`.
        "merge" => Ok((text.into(), text == "<<")),
        "binary" => {
            let cleaned: String = text.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
            let bytes = base64_std(&cleaned)
                .ok_or_else(|| refuse(pos, "!!binary value contains invalid base64 data"))?;
            Ok((go_string(&bytes).into(), false))
        }
        "bool" | "int" | "float" | "null" | "timestamp" => {
            let r = resolve_plain(text);
            let name = |r: &Resolved| match r {
                Resolved::Null => "null",
                Resolved::Bool(_) => "bool",
                Resolved::Int(_) | Resolved::Uint(_) => "int",
                Resolved::Float(_) => "float",
                Resolved::Str => {
                    if looks_like_timestamp(text) {
                        "timestamp"
                    } else {
                        "str"
                    }
                }
            };
            let got = name(&r);
            let fits = got == short || (short == "float" && got == "int");
            if !fits {
                return Err(refuse(
                    pos,
                    format!("cannot decode !!{got} `{text}` as a !!{short}"),
                ));
            }
            if short == "timestamp" {
                return Ok((text.into(), false));
            }
            let r = match (short, r) {
                ("float", Resolved::Int(i)) => Resolved::Float(i as f64),
                // go-yaml v2 turns only `int` and `int64` into a float, not `uint64`.
                ("float", Resolved::Uint(_)) => {
                    return Err(refuse(
                        pos,
                        format!("cannot decode !!int `{text}` as a !!float"),
                    ))
                }
                (_, r) => r,
            };
            let t = match r {
                Resolved::Null => "null".to_string(),
                Resolved::Bool(b) => b.to_string(),
                Resolved::Int(i) => i.to_string(),
                Resolved::Uint(u) => u.to_string(),
                Resolved::Float(f) if f.is_finite() => float_text(f),
                Resolved::Float(_) => {
                    return Err(refuse(
                        pos,
                        format!(
                            "`{text}` is not a JSON number (Kubernetes refuses NaN and infinities)"
                        ),
                    ))
                }
                Resolved::Str => unreachable!("checked above"),
            };
            Ok((t.into(), true))
        }
        // `!!map`, `!!seq`, `!!merge`, … on a scalar: go-yaml v2 keeps the text.
        _ => Ok((text.into(), false)),
    }
}

/// Go's `string(bytes)` as encoding/json writes it: each invalid UTF-8 byte becomes U+FFFD.
fn go_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (ok, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(ok).unwrap_or_default());
                out.push('\u{fffd}');
                rest = &bad[1..];
            }
        }
    }
    out
}

/// Standard base64 with padding, as Go's `base64.StdEncoding.DecodeString` (after it
/// drops line breaks) accepts it.
fn base64_std(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (n, chunk) in b.chunks(4).enumerate() {
        let last = n + 1 == b.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &chunk[..4 - pad] {
            acc = acc << 6 | val(c)?;
        }
        acc <<= 6 * pad as u32;
        let bytes = acc.to_be_bytes();
        // Go is strict about the unused bits of a padded quantum.
        match pad {
            0 => out.extend_from_slice(&bytes[1..4]),
            1 => {
                if bytes[3] != 0 {
                    return None;
                }
                out.extend_from_slice(&bytes[1..3]);
            }
            _ => {
                if bytes[2] != 0 || bytes[3] != 0 {
                    return None;
                }
                out.push(bytes[1]);
            }
        }
    }
    Some(out)
}

/// The JSON key sigs.k8s.io/yaml makes of a mapping key (already resolved by the loader).
fn json_key(key: &Node) -> Result<CompactString, Refusal> {
    let Value::Scalar { text, plain } = &key.value else {
        return Err(refuse(
            key.pos,
            "a mapping or sequence as a mapping key (Kubernetes refuses it)",
        ));
    };
    if !plain {
        return Ok(text.clone());
    }
    Ok(match resolve_plain(text) {
        Resolved::Null => {
            return Err(refuse(
                key.pos,
                "a null mapping key (Kubernetes refuses it)",
            ));
        }
        Resolved::Uint(_) => {
            return Err(refuse(
                key.pos,
                format!("mapping key `{text}` is past the int64 range (Kubernetes refuses it)"),
            ));
        }
        Resolved::Float(f) => float_key(f).into(),
        Resolved::Bool(b) => if b { "true" } else { "false" }.into(),
        Resolved::Int(i) => i.to_string().into(),
        Resolved::Str => text.clone(),
    })
}

/// Is this key node a merge key (`<<` plain, or tagged `!!merge`)?
pub fn is_merge_key(key: &Node) -> bool {
    matches!(&key.value, Value::Scalar { text, plain: true } if text == "<<")
}

/// Finishes a mapping as Kubernetes reads it: keys become JSON string keys, merge keys
/// are applied where they stand (a later key overwrites an earlier one, whichever came
/// from a merge), and each key appears once, holding its last value. Linear in the
/// entries plus the merged entries.
pub fn finish_map(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, Refusal> {
    let mut out: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
    let mut index: HashMap<CompactString, usize> = HashMap::new();
    let mut set = |out: &mut Vec<(Node, Node)>, k: Node, v: Node| {
        let text = k.scalar_text().unwrap_or_default();
        match index.get(text) {
            Some(&i) => out[i] = (k, v),
            None => {
                index.insert(text.into(), out.len());
                out.push((k, v));
            }
        }
    };
    let simple = entries.len() < 2;
    for (mut k, v) in entries {
        if is_merge_key(&k) {
            let merge_err = || {
                refuse(
                    k.pos,
                    "map merge requires a map or a sequence of maps as the value",
                )
            };
            let sources = match v.value {
                Value::Map(m) => vec![m],
                Value::Seq(items) => {
                    let mut maps = Vec::with_capacity(items.len());
                    for it in items {
                        match it.value {
                            Value::Map(m) => maps.push(m),
                            _ => return Err(merge_err()),
                        }
                    }
                    // Earlier maps take precedence: apply them last.
                    maps.reverse();
                    maps
                }
                Value::Scalar { .. } => return Err(merge_err()),
            };
            for m in sources {
                for (mk, mv) in m {
                    set(&mut out, mk, mv);
                }
            }
            continue;
        }
        let key = json_key(&k)?;
        if let Value::Scalar { text, plain } = &mut k.value {
            if *text != key {
                *text = key;
                *plain = false;
            }
        }
        if simple {
            out.push((k, v));
        } else {
            set(&mut out, k, v);
        }
    }
    Ok(out)
}

/// Resolves a whole tree whose scalars are untagged (the fast path's output): plain
/// scalars to their canonical form, mappings finished by [`finish_map`].
pub fn resolve_tree(node: &mut Node) -> Result<(), Refusal> {
    match &mut node.value {
        Value::Scalar { text, plain: true } => {
            if let Some(t) = canonical_plain(text, node.pos)? {
                *text = t;
            }
        }
        Value::Scalar { .. } => {}
        Value::Seq(items) => {
            for it in items {
                resolve_tree(it)?;
            }
        }
        Value::Map(entries) => {
            // Keys are converted from their text by `finish_map` (a float key has its own
            // format), so only collections under keys and the values are resolved here.
            for (k, v) in entries.iter_mut() {
                if !matches!(k.value, Value::Scalar { .. }) {
                    resolve_tree(k)?;
                }
                resolve_tree(v)?;
            }
            let taken = std::mem::take(entries);
            *entries = finish_map(taken)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_scalars() {
        use Resolved::*;
        for (s, want) in [
            ("yes", Bool(true)),
            ("On", Bool(true)),
            ("N", Bool(false)),
            ("0x10", Int(16)),
            ("017", Int(15)),
            ("0o17", Int(15)),
            ("08", Float(8.0)),
            ("1_000", Int(1000)),
            ("-0b11", Int(-3)),
            ("+12", Int(12)),
            (".5", Float(0.5)),
            ("1e3", Float(1000.0)),
            ("1e400", Str),
            ("_1", Str),
            ("1:20", Str),
            ("2001-12-14", Str),
            ("9223372036854775808", Uint(9223372036854775808)),
            ("-9223372036854775808", Int(i64::MIN)),
            ("0x10000000000000000", Str),
            ("64Mi", Str),
            ("NaN", Str),
        ] {
            let got = resolve_plain(s);
            match (got, want) {
                (Float(a), Float(b)) => assert_eq!(a, b, "{s}"),
                _ => assert_eq!(got, want, "{s}"),
            }
        }
    }

    #[test]
    fn float_keys_as_go_writes_them() {
        for (f, want) in [
            (1234567.0, "1.234567e+06"),
            (0.00001, "1e-05"),
            (1.23456789, "1.2345679"),
            (1e6, "1e+06"),
            (1e3, "1000"),
            (1e21, "1e+21"),
            (0.1, "0.1"),
            (1.5, "1.5"),
        ] {
            assert_eq!(float_key(f), want, "{f}");
        }
    }

    #[test]
    fn binary_decodes_like_go() {
        assert_eq!(base64_std("aGVsbG8=").unwrap(), b"hello");
        assert!(base64_std("aGV sbG8=").is_none());
        assert_eq!(go_string(&base64_std("/w==").unwrap()), "\u{fffd}");
    }
}
