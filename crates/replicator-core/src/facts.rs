//! The nouns the engine decides on: what the source version is ([`SourceObject`],
//! [`SourceFacts`]), what is at the replica key ([`ReplicaFacts`]), and what a replica says
//! about the source version it was made from ([`Provenance`]). No I/O here: values are read
//! off S3's answers by the functions below, and compared by [`crate::plan`].

use std::collections::HashMap;

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, StorageClass};

/// User-metadata names this replicator writes on every replica (`x-amz-meta-…`).
pub mod provenance_keys {
    pub const MARKER: &str = "replicator-source";
    pub const VERSION_ID: &str = "replicator-source-version-id";
    pub const ETAG: &str = "replicator-source-etag";
    pub const LAST_MODIFIED: &str = "replicator-source-last-modified";
    pub const SEQUENCER: &str = "replicator-source-sequencer";
    /// The source's full-object checksum the replica was written with (`CRC64NVME:…`).
    pub const CHECKSUM: &str = "replicator-source-checksum";
    pub const ALL: [&str; 6] = [MARKER, VERSION_ID, ETAG, LAST_MODIFIED, SEQUENCER, CHECKSUM];
}

/// What the replica says about the source object it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// `bucket/key` of the source.
    pub source: String,
    /// `None` for an unversioned source (S3 reports the version id `null`).
    pub version_id: Option<String>,
    pub etag: String,
    /// Seconds since the epoch (S3's Last-Modified has one-second resolution).
    pub last_modified: i64,
    pub sequencer: Option<String>,
    /// The source's full-object checksum, `ALGORITHM:base64`, when the replica was written
    /// with it (S3 checked the replica's bytes against it).
    pub checksum: Option<String>,
}

impl Provenance {
    pub fn to_metadata(&self) -> Vec<(&'static str, String)> {
        use provenance_keys::*;
        let mut m = vec![
            (MARKER, self.source.clone()),
            (ETAG, self.etag.trim_matches('"').to_owned()),
            (LAST_MODIFIED, self.last_modified.to_string()),
        ];
        if let Some(v) = &self.version_id {
            m.push((VERSION_ID, v.clone()));
        }
        if let Some(s) = &self.sequencer {
            m.push((SEQUENCER, s.clone()));
        }
        if let Some(c) = &self.checksum {
            m.push((CHECKSUM, c.clone()));
        }
        m
    }

    /// Reads provenance from a replica's user metadata; `None` if it was not written by us.
    pub fn from_metadata(metadata: &HashMap<String, String>) -> Option<Self> {
        use provenance_keys::*;
        let get = |k: &str| metadata.get(k).filter(|v| !v.is_empty()).cloned();
        Some(Self {
            source: get(MARKER)?,
            version_id: get(VERSION_ID),
            etag: get(ETAG)?,
            last_modified: get(LAST_MODIFIED)?.parse().ok()?,
            sequencer: get(SEQUENCER),
            checksum: get(CHECKSUM),
        })
    }
}

/// Normalises S3's version id: unversioned objects report `null`.
pub fn normalize_version(v: Option<&str>) -> Option<String> {
    v.filter(|v| !v.is_empty() && *v != "null")
        .map(str::to_owned)
}

/// What native S3 replication says about an object (`x-amz-replication-status`): on a
/// source, whether its rule replicated it yet; on a destination, that native replication
/// wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeStatus {
    Pending,
    Completed,
    Failed,
    /// A replica native replication wrote (it keeps the source's version id).
    Replica,
}

impl NativeStatus {
    fn from_sdk(status: Option<&aws_sdk_s3::types::ReplicationStatus>) -> Option<Self> {
        use aws_sdk_s3::types::ReplicationStatus as S;
        Some(match status? {
            S::Pending => Self::Pending,
            S::Completed | S::Complete => Self::Completed,
            S::Failed => Self::Failed,
            S::Replica => Self::Replica,
            _ => return None,
        })
    }

    /// As S3 writes it (and as S3 Inventory reports it).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "PENDING" => Self::Pending,
            "COMPLETED" | "COMPLETE" => Self::Completed,
            "FAILED" => Self::Failed,
            "REPLICA" => Self::Replica,
            _ => return None,
        })
    }
}

/// The content headers S3 keeps with an object, which a replica carries unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<DateTime>,
    /// `x-amz-website-redirect-location`: where a website endpoint redirects this key.
    pub website_redirect_location: Option<String>,
}

/// A full-object checksum S3 keeps for an object version: of all its bytes, whatever the
/// parts it was uploaded in (`x-amz-checksum-type: FULL_OBJECT`, or no type on an object
/// uploaded in one part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullChecksum {
    pub algorithm: ChecksumAlgorithm,
    /// Base64, as S3 reports it.
    pub value: String,
}

impl FullChecksum {
    /// `ALGORITHM:base64`, as provenance records it.
    pub fn label(&self) -> String {
        format!("{}:{}", self.algorithm.as_str(), self.value)
    }

    /// The full-object checksum among what a HEAD or GET answered, if it has one: the
    /// strongest CRC first (CRC64NVME, CRC32C, CRC32), then SHA-256, SHA-1. A composite
    /// checksum (of the parts' checksums, `…-N`) is none.
    pub fn from_answer(
        etag: Option<&str>,
        kind: Option<&ChecksumType>,
        values: [(ChecksumAlgorithm, Option<&str>); 5],
    ) -> Option<Self> {
        let multipart_etag = etag
            .and_then(|e| e.trim_matches('"').rsplit_once('-'))
            .is_some_and(|(_, n)| n.parse::<u32>().is_ok());
        let full = match kind {
            Some(ChecksumType::FullObject) => true,
            Some(_) => false,
            None => !multipart_etag,
        };
        if !full {
            return None;
        }
        values.into_iter().find_map(|(algorithm, value)| {
            let value = value.filter(|v| !v.is_empty())?;
            let composite = value
                .rsplit_once('-')
                .is_some_and(|(_, n)| n.parse::<u32>().is_ok());
            (!composite).then(|| FullChecksum {
                algorithm,
                value: value.to_owned(),
            })
        })
    }
}

macro_rules! full_checksum {
    ($out:expr) => {{
        let out = $out;
        FullChecksum::from_answer(
            out.e_tag(),
            out.checksum_type(),
            [
                (ChecksumAlgorithm::Crc64Nvme, out.checksum_crc64_nvme()),
                (ChecksumAlgorithm::Crc32C, out.checksum_crc32_c()),
                (ChecksumAlgorithm::Crc32, out.checksum_crc32()),
                (ChecksumAlgorithm::Sha256, out.checksum_sha256()),
                (ChecksumAlgorithm::Sha1, out.checksum_sha1()),
            ],
        )
    }};
}

/// Object Lock settings of one object version, as HEAD shows them to a caller allowed
/// `s3:GetObjectRetention` and `s3:GetObjectLegalHold` (to others S3 shows none).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LockSettings {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub mode: Option<String>,
    /// Milliseconds since the epoch.
    pub retain_until_ms: Option<i64>,
    pub legal_hold: bool,
}

impl LockSettings {
    pub fn is_set(&self) -> bool {
        self.mode.is_some() || self.retain_until_ms.is_some() || self.legal_hold
    }
}

/// The source version as S3 describes it: what the replica must keep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceObject {
    pub size: u64,
    pub version_id: Option<String>,
    pub etag: String,
    /// Seconds since the epoch.
    pub last_modified: i64,
    pub tag_count: i32,
    pub metadata: HashMap<String, String>,
    pub headers: ContentHeaders,
    /// Native replication's status of this version, when a rule covers it.
    pub native: Option<NativeStatus>,
    /// `None` for STANDARD (S3 names no class for it).
    pub storage_class: Option<StorageClass>,
    pub lock: LockSettings,
    /// Its full-object checksum, when S3 keeps one and the read asked for checksums.
    pub checksum: Option<FullChecksum>,
}

/// GetObject and HeadObject answer with the same headers under the same accessor names.
macro_rules! lock_settings {
    ($out:expr) => {{
        let out = $out;
        LockSettings {
            mode: out.object_lock_mode().map(|m| m.as_str().to_owned()),
            retain_until_ms: out
                .object_lock_retain_until_date()
                .and_then(|d| d.to_millis().ok()),
            legal_hold: out
                .object_lock_legal_hold_status()
                .is_some_and(|s| s.as_str() == "ON"),
        }
    }};
}

macro_rules! source_object {
    ($out:expr) => {{
        let out = $out;
        SourceObject {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            version_id: normalize_version(out.version_id()),
            etag: out.e_tag().unwrap_or_default().to_owned(),
            last_modified: out.last_modified().map(|t| t.secs()).unwrap_or(0),
            tag_count: out.tag_count().unwrap_or(0),
            metadata: out.metadata().cloned().unwrap_or_default(),
            native: NativeStatus::from_sdk(out.replication_status()),
            headers: ContentHeaders {
                content_type: out.content_type().map(str::to_owned),
                content_encoding: out.content_encoding().map(str::to_owned),
                content_disposition: out.content_disposition().map(str::to_owned),
                content_language: out.content_language().map(str::to_owned),
                cache_control: out.cache_control().map(str::to_owned),
                expires: out
                    .expires_string()
                    .and_then(|s| DateTime::from_str(s, DateTimeFormat::HttpDate).ok()),
                website_redirect_location: out.website_redirect_location().map(str::to_owned),
            },
            storage_class: out.storage_class().cloned(),
            lock: lock_settings!(out),
            checksum: full_checksum!(out),
        }
    }};
}

impl SourceObject {
    pub fn from_head(out: &HeadObjectOutput) -> Self {
        source_object!(out)
    }

    /// A GET of the whole object answers with its headers too.
    pub fn from_get(out: &GetObjectOutput) -> Self {
        source_object!(out)
    }

    /// What [`crate::plan::decide`] compares, with the event's sequencer.
    pub fn facts(&self, sequencer: Option<String>) -> SourceFacts {
        SourceFacts {
            version_id: self.version_id.clone(),
            etag: self.etag.clone(),
            last_modified: self.last_modified,
            sequencer,
        }
    }
}

/// The source version about to be replicated, as far as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFacts {
    pub version_id: Option<String>,
    pub etag: String,
    pub last_modified: i64,
    pub sequencer: Option<String>,
}

/// The destination object currently at the replica key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaFacts {
    /// The replica's own ETag, used for If-Match.
    pub etag: String,
    pub provenance: Option<Provenance>,
    /// The replica's own version id.
    pub version_id: Option<String>,
    /// Native replication wrote it (`x-amz-replication-status: REPLICA`): it keeps the
    /// source version's id as its own.
    pub native: bool,
    /// Its Object Lock, as HEAD shows it (to a role allowed to read it).
    pub lock: LockSettings,
}

impl ReplicaFacts {
    pub fn from_head(out: &HeadObjectOutput) -> Self {
        Self {
            etag: out.e_tag().unwrap_or_default().to_owned(),
            provenance: out.metadata().and_then(Provenance::from_metadata),
            version_id: normalize_version(out.version_id()),
            native: NativeStatus::from_sdk(out.replication_status()) == Some(NativeStatus::Replica),
            lock: lock_settings!(out),
        }
    }

    /// A replica of ours, made from `provenance`.
    pub fn ours(etag: impl Into<String>, provenance: Provenance) -> Self {
        Self {
            etag: etag.into(),
            provenance: Some(provenance),
            ..Self::default()
        }
    }

    /// Whether native replication wrote it.
    pub fn is_native(&self) -> bool {
        self.native && self.provenance.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_round_trips_through_metadata() {
        let p = Provenance {
            source: "b/k".into(),
            version_id: Some("v".into()),
            etag: "\"abc\"".into(),
            last_modified: 1_700_000_000,
            sequencer: Some("00AB".into()),
            checksum: None,
        };
        let m: HashMap<String, String> = p
            .to_metadata()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let back = Provenance::from_metadata(&m).unwrap();
        assert_eq!(back.etag, "abc");
        assert_eq!(back.version_id.as_deref(), Some("v"));
        assert_eq!(back.last_modified, 1_700_000_000);
        assert!(Provenance::from_metadata(&HashMap::new()).is_none());
    }

    #[test]
    fn null_versions_are_none() {
        assert_eq!(normalize_version(Some("null")), None);
        assert_eq!(normalize_version(Some("")), None);
        assert_eq!(normalize_version(Some("v1")).as_deref(), Some("v1"));
    }
}
