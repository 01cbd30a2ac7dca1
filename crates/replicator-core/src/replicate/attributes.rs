//! What a replica carries besides its bytes: the source's content headers, user metadata and
//! tags, this replicator's provenance, SSE-KMS with the destination key, the storage class
//! and the additional checksum. Pure, except for reading the source's tags (only when it
//! has some).

use std::collections::HashMap;

use super::{Job, Replicator};
use crate::error::ReplicationError;
use crate::facts::{provenance_keys, Provenance, SourceObject};
use crate::plan::checksum::ReplicaChecksum;
use crate::request::ObjectRequest;
use crate::s3::{Attributes, CopySource};

/// The exact source version (pinned by version and ETag) for CopyObject and UploadPartCopy.
pub(super) fn copy_source<'a>(r: &'a Replicator, job: &'a Job<'_>) -> CopySource<'a> {
    CopySource {
        bucket: &job.req.bucket,
        key: &job.req.key,
        version_id: job.source.version_id.as_deref(),
        etag: &job.source.etag,
        expected_owner: r.config.source.account_id.as_deref(),
    }
}

/// S3's limit on user metadata (keys and values, UTF-8 bytes).
const MAX_USER_METADATA_BYTES: usize = 2048;

/// What the replica will say about the source version it is made from.
pub(super) fn provenance(
    req: &ObjectRequest,
    source: &SourceObject,
    checksum: &ReplicaChecksum,
) -> Provenance {
    Provenance {
        source: format!("{}/{}", req.bucket, req.key),
        version_id: source.version_id.clone(),
        etag: source.etag.clone(),
        last_modified: source.last_modified,
        sequencer: req.sequencer.clone(),
        checksum: checksum.full.as_ref().map(|c| c.label()),
    }
}

/// Everything a replica write carries; reads the source's tags when it has any.
pub(super) async fn for_replica(
    r: &Replicator,
    job: &Job<'_>,
) -> Result<Attributes, ReplicationError> {
    let (req, source) = (job.req, job.source);
    let tagging = if source.tag_count > 0 {
        let tags = r
            .source
            .tags(&req.key, source.version_id.as_deref())
            .await?;
        Some(encode_tagging(
            tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ))
    } else {
        None
    };
    if source.lock.is_set() {
        lock_possible(r, job).await?;
    }
    let dest = &r.config.destination;
    Ok(Attributes {
        headers: source.headers.clone(),
        metadata: metadata(
            source,
            &job.provenance,
            &r.destination.bucket.resource(job.dest_key),
        )?,
        tagging,
        kms_key_id: dest.kms_key_id.clone(),
        bucket_key_enabled: dest.bucket_key_enabled,
        storage_class: dest.storage_class.for_source(source.storage_class.as_ref()),
        lock: source.lock.clone(),
        checksum: Some(job.checksum.algorithm.clone()),
        full_checksum: job.checksum.full.clone(),
    })
}

/// A source version with Object Lock settings is replicated only into a bucket with Object
/// Lock, never as an unlocked replica.
async fn lock_possible(r: &Replicator, job: &Job<'_>) -> Result<(), ReplicationError> {
    if r.destination_has_object_lock().await? {
        return Ok(());
    }
    let lock = &job.source.lock;
    let mut settings = Vec::new();
    if let (Some(mode), Some(until)) = (&lock.mode, lock.retain_until_ms) {
        let until = aws_sdk_s3::primitives::DateTime::from_millis(until);
        settings.push(format!("retention {mode} until {until}"));
    }
    if lock.legal_hold {
        settings.push("legal hold".to_owned());
    }
    Err(ReplicationError::ObjectLockConfigMissing {
        resource: r.source.resource(&job.req.key),
        bucket: r.destination.bucket.name().to_owned(),
        settings: settings.join(", "),
    })
}

/// The replica's user metadata: the source's, plus provenance (which replaces any
/// provenance the source itself carried, e.g. when it is itself a replica).
fn metadata(
    source: &SourceObject,
    provenance: &Provenance,
    resource: &str,
) -> Result<HashMap<String, String>, ReplicationError> {
    let mut m: HashMap<String, String> = source
        .metadata
        .iter()
        .filter(|(k, _)| !provenance_keys::ALL.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in provenance.to_metadata() {
        m.insert(k.to_owned(), v);
    }
    let size: usize = m.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA_BYTES {
        return Err(ReplicationError::Rejected {
            resource: resource.to_owned(),
            message: format!(
                "the source's user metadata plus this replicator's provenance is {size} bytes; \
                 S3 allows {MAX_USER_METADATA_BYTES}. Shorten the source object's metadata."
            ),
        });
    }
    Ok(m)
}

/// Tags as the `x-amz-tagging` header wants them: a URL query string.
pub(crate) fn encode_tagging<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    const SET: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    tags.map(|(k, v)| {
        format!(
            "{}={}",
            utf8_percent_encode(k, SET),
            utf8_percent_encode(v, SET)
        )
    })
    .collect::<Vec<_>>()
    .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_is_url_encoded() {
        let s = encode_tagging([("a b", "x+y"), ("k", "é=1&")].into_iter());
        assert_eq!(s, "a%20b=x%2By&k=%C3%A9%3D1%26");
    }

    #[test]
    fn metadata_keeps_source_and_adds_provenance() {
        let source = SourceObject {
            metadata: HashMap::from([
                ("owner".to_owned(), "team-a".to_owned()),
                ("replicator-source".to_owned(), "other/bucket".to_owned()),
            ]),
            ..Default::default()
        };
        let p = Provenance {
            source: "src/key".into(),
            version_id: Some("v1".into()),
            etag: "\"e\"".into(),
            last_modified: 5,
            sequencer: None,
            checksum: None,
        };
        let m = metadata(&source, &p, "s3://d/k").unwrap();
        assert_eq!(m["owner"], "team-a");
        assert_eq!(m["replicator-source"], "src/key");
        assert_eq!(m["replicator-source-version-id"], "v1");
    }

    #[test]
    fn oversized_metadata_is_rejected_not_truncated() {
        let source = SourceObject {
            metadata: HashMap::from([("big".to_owned(), "x".repeat(2040))]),
            ..Default::default()
        };
        let p = Provenance {
            source: "s/k".into(),
            version_id: None,
            etag: "e".into(),
            last_modified: 0,
            sequencer: None,
            checksum: None,
        };
        assert!(matches!(
            metadata(&source, &p, "r"),
            Err(ReplicationError::Rejected { .. })
        ));
    }
}
