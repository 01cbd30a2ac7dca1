//! The pure classifier: from what both sides' HEADs say (and, where read, both sides' tags
//! and a deep comparison of the bytes) to one [`Class`] per object and every finding behind
//! it. Nothing here talks to AWS, so every rule is unit- and property-tested.
//!
//! A replica is *made from* the current source version when its provenance names it (the
//! version id; for an unversioned source the ETag and Last-Modified), or when it is a native
//! replication replica (`x-amz-replication-status: REPLICA`) keeping the source's version
//! id. Bytes are *proven* equal by a deep comparison, or by a checksum of the same
//! algorithm and type on both sides (a full-object checksum; a composite only when equal,
//! since composites of differently cut parts differ for equal bytes).

use serde::{Deserialize, Serialize};

use super::class::Class;
use super::facts::{ChecksumKind, Encryption, ObjectFacts};

/// What the objects are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// `SOURCE_BUCKET/key`, as provenance names the source.
    pub source: String,
    /// The destination KMS key as S3 reports it on replicas (a key ARN).
    pub kms_key_arn: String,
}

/// The bytes of both sides, compared by reading them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Deep {
    /// Equal; the digest of either side (SHA-256 over the ranges' SHA-256s).
    Equal { digest: String },
    /// The first range whose bytes differ starts here.
    Differs { offset: u64 },
}

/// Both sides' tags, sorted, when they were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPair {
    pub source: Vec<(String, String)>,
    pub replica: Vec<(String, String)>,
}

/// One thing found wrong (or unprovable) about an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub class: Class,
    pub detail: String,
}

/// An object's class, the findings behind it, and the checksum that proved it (if any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub class: Class,
    pub findings: Vec<Finding>,
    /// What proved the bytes equal: `CRC32C:…`, `CRC32C-COMPOSITE:…` or `SHA256-RANGES:…`.
    pub proof: Option<String>,
}

impl Verdict {
    fn of(findings: Vec<Finding>, proof: Option<String>) -> Self {
        let class = findings
            .iter()
            .map(|f| f.class)
            .min_by_key(|c| c.rank())
            .unwrap_or(Class::Ok);
        Self {
            class,
            findings,
            proof,
        }
    }

    fn one(class: Class, detail: impl Into<String>) -> Self {
        Self::of(
            vec![Finding {
                class,
                detail: detail.into(),
            }],
            None,
        )
    }
}

/// Classifies one key of the merge-join. `source` is the current source object (`None`:
/// the key exists only at the destination); `replica` what is at the replica key.
pub fn classify(
    source: Option<&ObjectFacts>,
    replica: Option<&ObjectFacts>,
    tags: Option<&TagPair>,
    deep: Option<&Deep>,
    expected: &Expected,
) -> Verdict {
    let (source, replica) = match (source, replica) {
        (None, None) => return Verdict::one(Class::Missing, "neither side has the key"),
        (Some(_), None) => return Verdict::one(Class::Missing, "no replica"),
        (None, Some(r)) => {
            return match &r.provenance {
                Some(p) => Verdict::one(
                    Class::Extra,
                    format!("replica of {} whose source is gone", p.source),
                ),
                None => Verdict::one(Class::Foreign, "not written by this replicator"),
            }
        }
        (Some(s), Some(r)) => (s, r),
    };
    let mut findings = Vec::new();
    let mut note = |class, detail: String| findings.push(Finding { class, detail });
    if let Some(detail) = wrong_key(replica, &expected.kms_key_arn) {
        note(Class::WrongKey, detail);
    }
    if let Some(detail) = not_made_from(source, replica, &expected.source) {
        note(Class::Stale, detail);
        return Verdict::of(findings, None);
    }
    let proof = match content(source, replica, deep) {
        Content::Proven(proof) => Some(proof),
        Content::Corrupt(detail) => {
            note(Class::Corrupt, detail);
            None
        }
        Content::Unproven(detail) => {
            note(Class::Unverifiable, detail);
            None
        }
    };
    if source.lock.is_set() && source.lock != replica.lock {
        note(
            Class::LockDrift,
            format!(
                "Object Lock: source {:?}, replica {:?}",
                source.lock, replica.lock
            ),
        );
    }
    if source.headers != replica.headers {
        note(Class::MetadataDrift, "content headers differ".into());
    } else if source.metadata != replica.metadata {
        note(Class::MetadataDrift, "user metadata differs".into());
    }
    if let Some(t) = tags.filter(|t| t.source != t.replica) {
        let mut keys: Vec<&str> = t
            .source
            .iter()
            .filter(|kv| !t.replica.contains(kv))
            .chain(t.replica.iter().filter(|kv| !t.source.contains(kv)))
            .map(|(k, _)| k.as_str())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        note(
            Class::TagDrift,
            format!(
                "tags differ on {} (source has {}, replica {})",
                keys.join(", "),
                t.source.len(),
                t.replica.len()
            ),
        );
    }
    Verdict::of(findings, proof)
}

pub(super) fn wrong_key(replica: &ObjectFacts, expected: &str) -> Option<String> {
    match &replica.encryption {
        Some(Encryption::Kms(Some(key))) if key == expected => None,
        Some(Encryption::Kms(key)) => Some(format!(
            "SSE-KMS with {}, not {expected}",
            key.as_deref().unwrap_or("an unnamed key")
        )),
        Some(other) => Some(format!(
            "encrypted as {other:?}, not SSE-KMS with {expected}"
        )),
        None => Some(format!(
            "no encryption reported, not SSE-KMS with {expected}"
        )),
    }
}

/// Why the replica is not made from the current source version, if it is not.
fn not_made_from(source: &ObjectFacts, replica: &ObjectFacts, expected: &str) -> Option<String> {
    if let Some(p) = &replica.provenance {
        if p.source != expected {
            return Some(format!("a replica of {}, not of {expected}", p.source));
        }
        let same = match (&source.version_id, &p.version_id) {
            (Some(s), Some(r)) => s == r,
            (None, None) => {
                p.etag.trim_matches('"') == source.etag.trim_matches('"')
                    && p.last_modified == source.last_modified
            }
            _ => false,
        };
        return (!same).then(|| {
            format!(
                "made from source version {}, the current one is {}",
                p.version_id.as_deref().unwrap_or("null"),
                source.version_id.as_deref().unwrap_or("null")
            )
        });
    }
    if replica.replication_status.as_deref() == Some("REPLICA") {
        return match (&source.version_id, &replica.version_id) {
            (Some(s), Some(r)) if s == r => None,
            _ => Some(format!(
                "a native replica of version {}, the current one is {}",
                replica.version_id.as_deref().unwrap_or("null"),
                source.version_id.as_deref().unwrap_or("null")
            )),
        };
    }
    Some("not written by this replicator (no provenance, not a native replica)".into())
}

enum Content {
    Proven(String),
    Corrupt(String),
    Unproven(String),
}

fn content(source: &ObjectFacts, replica: &ObjectFacts, deep: Option<&Deep>) -> Content {
    if source.size != replica.size {
        return Content::Corrupt(format!(
            "size {} bytes, the source has {}",
            replica.size, source.size
        ));
    }
    match deep {
        Some(Deep::Equal { digest }) => return Content::Proven(format!("SHA256-RANGES:{digest}")),
        Some(Deep::Differs { offset }) => {
            return Content::Corrupt(format!("bytes differ in the range from offset {offset}"))
        }
        None => {}
    }
    let mut composite_differs = false;
    for s in &source.checksums {
        for r in replica.checksums.iter().filter(|r| s.comparable(r)) {
            match (&s.kind, s.value == r.value) {
                (_, true) => return Content::Proven(s.label()),
                (ChecksumKind::FullObject, false) => {
                    return Content::Corrupt(format!(
                        "{} checksum {} differs from the source's {}",
                        s.algorithm, r.value, s.value
                    ))
                }
                (ChecksumKind::Composite { .. }, false) => composite_differs = true,
            }
        }
    }
    let algorithms = |f: &ObjectFacts| {
        let names: Vec<String> = f
            .checksums
            .iter()
            .map(|c| match c.kind {
                ChecksumKind::FullObject => c.algorithm.to_owned(),
                ChecksumKind::Composite { .. } => format!("{} (composite)", c.algorithm),
            })
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    Content::Unproven(if composite_differs {
        "composite checksums differ (parts cut differently); use --deep".to_owned()
    } else {
        format!(
            "no comparable checksum (source: {}; replica: {}); use --deep",
            algorithms(source),
            algorithms(replica)
        )
    })
}

#[cfg(test)]
mod tests;
