//! The audit's evidence: for each pass, manifest parts (one JSON line per object: key,
//! source version, replica version, checksum, class) and, when the pass completes, a
//! summary naming every part. Written by the destination role with SSE-KMS under the
//! destination key and an S3-verified SHA-256, below
//! `{DESTINATION_PREFIX}.s3-fallback-replicator/audit/{SOURCE_BUCKET}/{pass}/` — in the destination bucket,
//! or in AUDIT_BUCKET (with Object Lock, so the versions written cannot be altered).
//!
//! The parts are chained: the summary's `chain` is SHA-256 over each part's SHA-256 in
//! order, starting from the pass id, so an auditor who recomputes it from the parts' current
//! bytes knows no part was replaced, dropped or reordered.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::deep::hex;
use super::Checked;
use crate::error::ReplicationError;
use crate::facts::ContentHeaders;
use crate::s3::{Attributes, Bucket, Condition, Write};

/// Objects per manifest part (a part is held in memory until written: a few MiB).
pub const PART_ENTRIES: usize = 10_000;

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    pub class: super::Class,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<super::Class>,
}

impl From<&Checked> for Entry {
    fn from(c: &Checked) -> Self {
        Self {
            key: c.key.clone(),
            source_version: c.source_version.clone(),
            replica_version: c.replica_version.clone(),
            checksum: c.checksum.clone(),
            class: c.class,
            found: c.found,
        }
    }
}

/// Where a pass's evidence goes, and how it is written.
#[derive(Debug, Clone)]
pub struct Evidence {
    bucket: Bucket,
    root: String,
    kms_key_id: String,
    bucket_key_enabled: bool,
}

/// A written evidence object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub key: String,
    pub version_id: Option<String>,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

impl Evidence {
    /// Evidence under `root` (`{DESTINATION_PREFIX}.s3-fallback-replicator/audit/{SOURCE_BUCKET}/`)
    /// of `bucket`.
    pub fn new(bucket: Bucket, root: &str, kms_key_id: &str, bucket_key_enabled: bool) -> Self {
        Self {
            bucket,
            root: root.to_owned(),
            kms_key_id: kms_key_id.to_owned(),
            bucket_key_enabled,
        }
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// `{DESTINATION_PREFIX}.s3-fallback-replicator/audit/{SOURCE_BUCKET}/{pass}/`.
    pub fn pass_prefix(&self, pass: &str) -> String {
        format!("{}{pass}/", self.root)
    }

    pub fn part_key(&self, pass: &str, n: u64) -> String {
        format!("{}manifest-{n:06}.jsonl", self.pass_prefix(pass))
    }

    pub fn summary_key(&self, pass: &str) -> String {
        format!("{}summary.json", self.pass_prefix(pass))
    }

    /// Writes manifest part `n` of `pass` (again, if a run stopped before recording it).
    pub async fn write_part(
        &self,
        pass: &str,
        n: u64,
        entries: &[Entry],
    ) -> Result<Written, ReplicationError> {
        let mut body = Vec::with_capacity(entries.len() * 160);
        for e in entries {
            serde_json::to_writer(&mut body, e).expect("entries serialise");
            body.push(b'\n');
        }
        self.write(&self.part_key(pass, n), body, "application/x-ndjson")
            .await
    }

    pub async fn write_summary<T: Serialize>(
        &self,
        pass: &str,
        summary: &T,
    ) -> Result<Written, ReplicationError> {
        let body = serde_json::to_vec_pretty(summary).expect("summary serialises");
        self.write(&self.summary_key(pass), body, "application/json")
            .await
    }

    async fn write(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Written, ReplicationError> {
        let sha256 = hex(&Sha256::digest(&body));
        let attributes = Attributes {
            headers: ContentHeaders {
                content_type: Some(content_type.to_owned()),
                ..ContentHeaders::default()
            },
            kms_key_id: self.kms_key_id.clone(),
            bucket_key_enabled: self.bucket_key_enabled,
            // S3 checks it on arrival and keeps it: the auditor's HEAD shows it.
            checksum: Some(aws_sdk_s3::types::ChecksumAlgorithm::Sha256),
            ..Attributes::default()
        };
        match self
            .bucket
            .put(key, &attributes, body.into(), &Condition::None)
            .await?
        {
            Write::Done(answer) => Ok(Written {
                key: key.to_owned(),
                version_id: answer.version_id,
                sha256,
            }),
            Write::LostRace => Err(ReplicationError::Contended {
                resource: self.bucket.resource(key),
                attempts: 1,
            }),
        }
    }
}

/// The chain after one more part: SHA-256(previous chain ‖ part's SHA-256), hex.
pub fn chain(previous: &str, part_sha256: &str) -> String {
    let mut h = Sha256::new();
    h.update(previous.as_bytes());
    h.update(part_sha256.as_bytes());
    hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_depend_on_every_part_and_their_order() {
        let a = chain(&chain("pass", "x"), "y");
        let b = chain(&chain("pass", "y"), "x");
        assert_ne!(a, b);
        assert_eq!(a, chain(&chain("pass", "x"), "y"));
        let store = crate::state::test_store("replica/");
        let root = format!("replica/{}audit/src/", crate::state::RESERVED_PREFIX);
        let e = Evidence::new(store.bucket().clone(), &root, "k", true);
        assert_eq!(
            e.part_key("p", 3),
            "replica/.s3-fallback-replicator/audit/src/p/manifest-000003.jsonl"
        );
        assert_eq!(
            e.summary_key("p"),
            "replica/.s3-fallback-replicator/audit/src/p/summary.json"
        );
    }
}
