//! Object keys as they arrive in events, and as they must be sent back to S3.
//!
//! S3 event notifications (direct, through SQS or SNS) carry keys form-URL-encoded: `+` is a
//! space and `%2B` is a plus. Getting this wrong silently replicates the wrong object, so
//! decoding is strict: a malformed escape or bytes that are not UTF-8 are errors.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use thiserror::Error;

/// S3's limit on the length of a key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    #[error("object key {key:?} has an invalid percent-encoding at byte {position}")]
    InvalidEscape { key: String, position: usize },
    #[error("object key {key:?} does not decode to UTF-8")]
    NotUtf8 { key: String },
    #[error("object key is empty")]
    Empty,
    #[error("object key is {len} bytes long; S3 allows at most {MAX_KEY_BYTES}")]
    TooLong { len: usize },
    /// S3 stores such keys literally, but HTTP clients, proxies and consoles that normalise
    /// paths turn `a/../b` into `b` and `/a` into `a`, so the replica could land at, or be
    /// read back from, another key. Refused rather than guessed at; the error is reported.
    #[error("object key {key:?} {problem}; replicating it could address a different key on clients that normalise paths, so it is refused (rename the source object)")]
    AmbiguousPath { key: String, problem: &'static str },
}

/// Decodes a key from an S3 event notification (`application/x-www-form-urlencoded`).
pub fn decode_event_key(encoded: &str) -> Result<String, KeyError> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16)
                        .ok()
                        .filter(|_| h.chars().all(|c| c.is_ascii_hexdigit()))
                });
                match hex {
                    Some(b) => out.push(b),
                    None => {
                        return Err(KeyError::InvalidEscape {
                            key: truncate_for_message(encoded),
                            position: i,
                        })
                    }
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let key = String::from_utf8(out).map_err(|_| KeyError::NotUtf8 {
        key: truncate_for_message(encoded),
    })?;
    validate_key(&key)?;
    Ok(key)
}

/// Encodes a key the way S3 does in event notifications (the inverse of
/// [`decode_event_key`]): `+` for space, percent-escapes for everything but
/// `A-Za-z0-9-_.*/`.
pub fn encode_event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Checks a decoded key against S3's rules.
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong { len: key.len() });
    }
    let problem = if key.starts_with('/') {
        Some("starts with '/'")
    } else if key.split('/').any(|segment| segment == "..") {
        Some("has a '..' path segment")
    } else if key.split('/').any(|segment| segment == ".") {
        Some("has a '.' path segment")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(KeyError::AmbiguousPath {
            key: truncate_for_message(key),
            problem,
        }),
        None => Ok(()),
    }
}

/// Characters left as they are in an `x-amz-copy-source` value: RFC 3986 unreserved plus `/`.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// The `x-amz-copy-source` value for CopyObject / UploadPartCopy. The Rust SDK sends this
/// string as it is (awslabs/aws-sdk-rust#1357), so the key must be percent-encoded here.
pub fn copy_source(bucket: &str, key: &str, version_id: Option<&str>) -> String {
    let mut s = format!("{bucket}/{}", utf8_percent_encode(key, COPY_SOURCE));
    if let Some(v) = version_id {
        s.push_str("?versionId=");
        s.push_str(&utf8_percent_encode(v, COPY_SOURCE).to_string());
    }
    s
}

/// Keys go into error messages and logs; keep those bounded.
fn truncate_for_message(s: &str) -> String {
    const LIMIT: usize = 200;
    if s.len() <= LIMIT {
        return s.to_owned();
    }
    let mut end = LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use super::encode_event_key as form_encode;

    #[test]
    fn plus_is_space_and_escaped_plus_is_plus() {
        assert_eq!(decode_event_key("a+b%2Bc").unwrap(), "a b+c");
        assert_eq!(
            decode_event_key("dir%2Ffile%3D1%3A2%25").unwrap(),
            "dir/file=1:2%"
        );
        assert_eq!(decode_event_key("caf%C3%A9+%E2%9C%93").unwrap(), "café ✓");
        // S3 leaves some characters unescaped; they pass through.
        assert_eq!(decode_event_key("a=b:c").unwrap(), "a=b:c");
    }

    #[test]
    fn malformed_keys_are_errors() {
        assert!(matches!(
            decode_event_key("abc%"),
            Err(KeyError::InvalidEscape { position: 3, .. })
        ));
        assert!(matches!(
            decode_event_key("abc%4"),
            Err(KeyError::InvalidEscape { .. })
        ));
        assert!(matches!(
            decode_event_key("abc%zz"),
            Err(KeyError::InvalidEscape { .. })
        ));
        assert!(matches!(
            decode_event_key("a%+1"),
            Err(KeyError::InvalidEscape { .. })
        ));
        assert!(matches!(
            decode_event_key("%FF%FE"),
            Err(KeyError::NotUtf8 { .. })
        ));
        assert!(matches!(decode_event_key(""), Err(KeyError::Empty)));
        assert!(matches!(
            decode_event_key(&"a".repeat(1025)),
            Err(KeyError::TooLong { len: 1025 })
        ));
        assert_eq!(decode_event_key(&"a".repeat(1024)).unwrap().len(), 1024);
        for key in [
            "..%2Fetc%2Fpasswd",
            "%2Fetc%2Fpasswd",
            "a/../b",
            "a/./b",
            ".",
            "x/..",
        ] {
            assert!(
                matches!(decode_event_key(key), Err(KeyError::AmbiguousPath { .. })),
                "{key}"
            );
        }
        // Dots inside a segment are ordinary characters.
        for key in ["...", "a/..b/c", "a/.hidden", "a./b", "dir/"] {
            assert!(decode_event_key(key).is_ok(), "{key}");
        }
        // A multi-byte character at the limit of the message truncation must not panic.
        let long = "é".repeat(600);
        assert!(decode_event_key(&format!("{long}%")).is_err());
    }

    #[test]
    fn copy_source_encodes_everything_but_unreserved_and_slash() {
        assert_eq!(copy_source("b", "a b+c/%é", None), "b/a%20b%2Bc/%25%C3%A9");
        assert_eq!(
            copy_source("b", "k", Some("3/L4k+q")),
            "b/k?versionId=3/L4k%2Bq"
        );
    }

    proptest! {
        #[test]
        fn decoding_inverts_form_encoding(key in "\\PC{1,300}") {
            prop_assume!(validate_key(&key).is_ok());
            prop_assert_eq!(decode_event_key(&form_encode(&key)).unwrap(), key);
        }

        #[test]
        fn decoding_never_panics(input in any::<Vec<u8>>()) {
            let s = String::from_utf8_lossy(&input);
            let _ = decode_event_key(&s);
        }
    }
}
