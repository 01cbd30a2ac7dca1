//! What verification reads off one HEAD (with checksum mode on) of either side: size,
//! version, checksums and their type, encryption, content headers, user metadata,
//! provenance, native replication status, Object Lock settings. No I/O: values are read off
//! S3's answer by [`ObjectFacts::from_head`] and compared by [`super::classify`].

use std::collections::BTreeMap;

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{ChecksumType, ServerSideEncryption};
use serde::Serialize;

pub use crate::facts::LockSettings;
use crate::facts::{normalize_version, provenance_keys, ContentHeaders, Provenance, SourceObject};

/// How a checksum covers the object: the whole object's bytes, or a checksum of the parts'
/// checksums (multipart uploads), which depends on where the parts were cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChecksumKind {
    FullObject,
    /// A composite of this many parts (when S3 says).
    Composite {
        parts: Option<u32>,
    },
}

/// One stored checksum, as HEAD with checksum mode reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checksum {
    /// `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1` or `SHA256`.
    pub algorithm: &'static str,
    pub kind: ChecksumKind,
    /// The base64 value, without a `-N` parts suffix.
    pub value: String,
}

impl Checksum {
    /// `CRC32C:base64` (full-object) or `CRC32C-COMPOSITE:base64` — the manifest's form.
    pub fn label(&self) -> String {
        match self.kind {
            ChecksumKind::FullObject => format!("{}:{}", self.algorithm, self.value),
            ChecksumKind::Composite { .. } => {
                format!("{}-COMPOSITE:{}", self.algorithm, self.value)
            }
        }
    }

    /// Whether the two checksums can be compared at all: same algorithm and type (and,
    /// for composites, the same number of parts where both sides say).
    pub fn comparable(&self, other: &Checksum) -> bool {
        self.algorithm == other.algorithm
            && match (&self.kind, &other.kind) {
                (ChecksumKind::FullObject, ChecksumKind::FullObject) => true,
                (ChecksumKind::Composite { parts: a }, ChecksumKind::Composite { parts: b }) => {
                    a.zip(*b).is_none_or(|(a, b)| a == b)
                }
                _ => false,
            }
    }
}

/// How an object is encrypted at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", content = "key", rename_all = "kebab-case")]
pub enum Encryption {
    None,
    /// SSE-S3 (AES256).
    S3,
    /// SSE-KMS with this key (ARN as S3 reports it).
    Kms(Option<String>),
    /// DSSE-KMS with this key.
    DsseKms(Option<String>),
    Other(String),
}

/// One side of a pair, as one HEAD describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectFacts {
    pub size: u64,
    pub version_id: Option<String>,
    pub etag: String,
    /// Seconds since the epoch.
    pub last_modified: i64,
    pub checksums: Vec<Checksum>,
    pub encryption: Option<Encryption>,
    pub headers: ContentHeaders,
    /// User metadata without this replicator's provenance keys.
    pub metadata: BTreeMap<String, String>,
    pub provenance: Option<Provenance>,
    /// `x-amz-replication-status` (`REPLICA` on a native replication replica).
    pub replication_status: Option<String>,
    pub lock: LockSettings,
    pub tag_count: i32,
}

impl ObjectFacts {
    pub fn from_head(out: &HeadObjectOutput) -> Self {
        let object = SourceObject::from_head(out);
        let provenance = out.metadata().and_then(Provenance::from_metadata);
        let metadata = object
            .metadata
            .into_iter()
            .filter(|(k, _)| !provenance_keys::ALL.contains(&k.as_str()))
            .collect();
        Self {
            size: object.size,
            version_id: normalize_version(out.version_id()),
            etag: object.etag,
            last_modified: object.last_modified,
            checksums: checksums(out),
            encryption: Some(encryption(out)),
            headers: object.headers,
            metadata,
            provenance,
            replication_status: out.replication_status().map(|s| s.as_str().to_owned()),
            lock: object.lock,
            tag_count: object.tag_count,
        }
    }
}

fn encryption(out: &HeadObjectOutput) -> Encryption {
    let key = out.ssekms_key_id().map(str::to_owned);
    match out.server_side_encryption() {
        None => Encryption::None,
        Some(ServerSideEncryption::Aes256) => Encryption::S3,
        Some(ServerSideEncryption::AwsKms) => Encryption::Kms(key),
        Some(ServerSideEncryption::AwsKmsDsse) => Encryption::DsseKms(key),
        Some(other) => Encryption::Other(other.as_str().to_owned()),
    }
}

/// Every checksum the HEAD reports, with its type: `x-amz-checksum-type` where S3 sends it;
/// otherwise a `-N` suffix on the value or on the ETag means a composite of N parts (S3's
/// older answers, and emulators), and no suffix a single PUT's full-object checksum.
fn checksums(out: &HeadObjectOutput) -> Vec<Checksum> {
    let multipart_parts = out
        .e_tag()
        .and_then(|e| e.trim_matches('"').rsplit_once('-'))
        .and_then(|(_, n)| n.parse::<u32>().ok());
    [
        ("CRC32", out.checksum_crc32()),
        ("CRC32C", out.checksum_crc32_c()),
        ("CRC64NVME", out.checksum_crc64_nvme()),
        ("SHA1", out.checksum_sha1()),
        ("SHA256", out.checksum_sha256()),
    ]
    .into_iter()
    .filter_map(|(algorithm, value)| {
        let value = value.filter(|v| !v.is_empty())?;
        let (value, suffix_parts) = match value.rsplit_once('-') {
            Some((v, n)) if n.parse::<u32>().is_ok() => (v, n.parse::<u32>().ok()),
            _ => (value, None),
        };
        let kind = match out.checksum_type() {
            Some(ChecksumType::FullObject) => ChecksumKind::FullObject,
            Some(_) => ChecksumKind::Composite {
                parts: suffix_parts.or(multipart_parts),
            },
            None if suffix_parts.is_some() || multipart_parts.is_some() => {
                ChecksumKind::Composite {
                    parts: suffix_parts.or(multipart_parts),
                }
            }
            None => ChecksumKind::FullObject,
        };
        Some(Checksum {
            algorithm,
            kind,
            value: value.to_owned(),
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::types::ReplicationStatus;

    #[test]
    fn checksum_types_from_the_header_or_the_suffixes() {
        let single = HeadObjectOutput::builder()
            .e_tag("\"abc\"")
            .checksum_crc32_c("AAAAAA==")
            .build();
        assert_eq!(
            checksums(&single),
            vec![Checksum {
                algorithm: "CRC32C",
                kind: ChecksumKind::FullObject,
                value: "AAAAAA==".into()
            }]
        );
        let multipart = HeadObjectOutput::builder()
            .e_tag("\"abc-3\"")
            .checksum_crc32_c("BBBBBB==")
            .build();
        assert_eq!(
            checksums(&multipart)[0].kind,
            ChecksumKind::Composite { parts: Some(3) }
        );
        let suffixed = HeadObjectOutput::builder()
            .checksum_sha256("CCCC-2")
            .checksum_type(ChecksumType::Composite)
            .build();
        let c = &checksums(&suffixed)[0];
        assert_eq!(
            (c.value.as_str(), &c.kind),
            ("CCCC", &ChecksumKind::Composite { parts: Some(2) })
        );
        // A multipart upload with a full-object checksum (CRC64NVME, or asked for).
        let full = HeadObjectOutput::builder()
            .e_tag("\"abc-3\"")
            .checksum_crc64_nvme("DDDD")
            .checksum_type(ChecksumType::FullObject)
            .build();
        assert_eq!(checksums(&full)[0].kind, ChecksumKind::FullObject);
        assert!(!checksums(&full)[0].comparable(&checksums(&multipart)[0]));
    }

    #[test]
    fn heads_are_read_whole() {
        let out = HeadObjectOutput::builder()
            .content_length(5)
            .version_id("v1")
            .e_tag("\"e\"")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id("arn:k")
            .replication_status(ReplicationStatus::Replica)
            .metadata("owner", "a")
            .metadata(provenance_keys::MARKER, "b/k")
            .object_lock_legal_hold_status(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On)
            .build();
        let f = ObjectFacts::from_head(&out);
        assert_eq!(f.size, 5);
        assert_eq!(f.encryption, Some(Encryption::Kms(Some("arn:k".into()))));
        assert_eq!(f.replication_status.as_deref(), Some("REPLICA"));
        assert_eq!(f.metadata.len(), 1, "provenance is not user metadata");
        assert!(f.lock.legal_hold && f.lock.is_set());
    }
}
