//! `hmac.compare_digest`.

/// Compares two byte strings in time that depends only on their lengths
/// (`hmac.compare_digest`, Django's `constant_time_compare`).
#[inline]
pub(crate) fn compare_digest(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    core::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_digest_is_equality() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(compare_digest(&a, &b));
        b[31] ^= 1;
        assert!(!compare_digest(&a, &b));
        assert!(!compare_digest(&a, &a[..31]));
        assert!(compare_digest(b"", b""));
    }
}
