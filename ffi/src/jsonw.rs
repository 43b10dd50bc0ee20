//! A tiny JSON writer for the hot paths: appending to a `Vec<u8>` costs far
//! less than building `serde_json::Value` trees.

use std::io::Write as _;

/// Appends `s` as a JSON string literal (RFC 8259 escapes; non-ASCII kept as UTF-8).
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// Appends an integer.
pub(crate) fn push_int(out: &mut Vec<u8>, n: i64) {
    let _ = write!(out, "{n}");
}

/// Appends `true` / `false`.
pub(crate) fn push_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// Appends `{"valid":false,"error":{"kind":…,"message":…}}`.
pub(crate) fn push_invalid(out: &mut Vec<u8>, kind: &str, message: &str) {
    out.extend_from_slice(b"{\"valid\":false,\"error\":{\"kind\":");
    push_str(out, kind);
    out.extend_from_slice(b",\"message\":");
    push_str(out, message);
    out.extend_from_slice(b"}}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_a_json_parser() {
        let cases = [
            "",
            "plain",
            "quote\"back\\slash",
            "ctl\u{1}\u{1f}\u{7f}",
            "tab\tnl\ncr\r",
            "Zoë ☃ 𝄞",
        ];
        for case in cases {
            let mut out = Vec::new();
            push_str(&mut out, case);
            let parsed: String = serde_json::from_slice(&out).expect("valid JSON string");
            assert_eq!(parsed, case);
        }
    }

    #[test]
    fn invalid_shape_parses() {
        let mut out = Vec::new();
        push_invalid(&mut out, "expired", "Token is expired");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["valid"], false);
        assert_eq!(v["error"]["kind"], "expired");
        assert_eq!(v["error"]["message"], "Token is expired");
    }
}
