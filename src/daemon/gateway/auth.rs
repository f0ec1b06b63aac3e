//! The gateway's bearer token: read from its file, kept as a digest, and
//! compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Shortest token accepted: a guessable token is no guard.
const MIN_TOKEN_CHARS: usize = 16;

/// The token in `path` (surrounding whitespace ignored), as its digest.
pub fn read_token(path: &std::path::Path) -> Result<[u8; 32], String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("gateway token_file {}: {e}", path.display()))?;
    let token = text.trim();
    if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_whitespace) {
        return Err(format!(
            "gateway token_file {}: the token must be one word of at least {MIN_TOKEN_CHARS} characters",
            path.display()
        ));
    }
    Ok(digest(token))
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Whether an `Authorization` header value carries the token. Both sides
/// are hashed first, so neither the comparison's time nor the length of
/// the given value says anything about the token.
pub fn allows(expected: &[u8; 32], header: Option<&str>) -> bool {
    let given = header
        .and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .unwrap_or("");
    bool::from(digest(given).ct_eq(expected)) && !given.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let t = digest("s3cret-token-0123456789");
        assert!(allows(&t, Some("Bearer s3cret-token-0123456789")));
        assert!(allows(&t, Some("bearer s3cret-token-0123456789")));
        assert!(!allows(&t, Some("Bearer s3cret-token-012345678")));
        assert!(!allows(&t, Some("Basic s3cret-token-0123456789")));
        assert!(!allows(&t, Some("s3cret-token-0123456789")));
        assert!(!allows(&t, None));
    }

    #[test]
    fn a_short_token_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("token");
        std::fs::write(&f, "short\n").expect("write");
        assert!(read_token(&f).expect_err("short").contains("at least 16"));
        std::fs::write(&f, "  0123456789abcdef0123\n").expect("write");
        assert_eq!(read_token(&f).expect("ok"), digest("0123456789abcdef0123"));
    }
}
