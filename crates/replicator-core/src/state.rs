//! Small JSON objects the replicator keeps about its own work, in the destination bucket
//! under the reserved prefix `{DESTINATION_PREFIX}.s3-fallback-replicator/`: the sync
//! checkpoint, and a manifest per multipart copy in progress (so a copy stopped at a deadline
//! resumes from its uploaded parts). Written by the destination role with SSE-KMS.

use aws_sdk_s3::primitives::ByteStream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::copy::{lost_race, read_body, Replicator};
use crate::error::{classify, http_status, ReplicationError};

/// Reserved key prefix (after DESTINATION_PREFIX) for the replicator's own objects.
pub const RESERVED_PREFIX: &str = ".s3-fallback-replicator/";

/// A write's condition on the object it replaces.
pub(crate) enum Precondition<'a> {
    /// Whatever is there.
    None,
    /// Only if nothing is there.
    Absent,
    /// Only if it is still this version.
    Matches(&'a str),
}

/// Where the manifest of the multipart copy to `dest_key` lives. The key is hashed (FNV-1a,
/// two seeds: 128 bits) so any replica key fits; the manifest repeats the full key.
pub fn upload_manifest_key(destination_prefix: &str, dest_key: &str) -> String {
    let fnv = |seed: u64| {
        dest_key.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{destination_prefix}{RESERVED_PREFIX}uploads/{:016x}{:016x}.json",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x84222325_cbf29ce4)
    )
}

impl Replicator {
    /// Reads a state object: `None` when there is none; an unreadable one counts as none.
    pub(crate) async fn read_state<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, Option<String>)>, ReplicationError> {
        let got = self
            .clients
            .destination
            .get_object()
            .bucket(&self.config.destination_bucket)
            .key(key)
            .send()
            .await;
        match got {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_owned);
                let len = out.content_length().unwrap_or(0).max(0) as u64;
                let bytes = read_body(out.body, len, key).await?;
                Ok(serde_json::from_slice(&bytes).ok().map(|v| (v, etag)))
            }
            Err(e) if http_status(&e) == Some(404) => Ok(None),
            Err(e) => Err(classify(&self.dest_request("s3:GetObject", Some(key)), e)),
        }
    }

    /// Writes a state object; `Ok(None)` when the precondition did not hold.
    pub(crate) async fn write_state<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        precondition: Precondition<'_>,
    ) -> Result<Option<String>, ReplicationError> {
        let cfg = &self.config;
        let body = serde_json::to_vec_pretty(value).expect("state serialises");
        let mut put = self
            .clients
            .destination
            .put_object()
            .bucket(&cfg.destination_bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
            .ssekms_key_id(&cfg.destination_kms_key_id)
            .bucket_key_enabled(cfg.bucket_key_enabled);
        put = match precondition {
            Precondition::None => put,
            Precondition::Absent => put.if_none_match("*"),
            Precondition::Matches(etag) => put.if_match(etag),
        };
        match put.send().await {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_owned())),
            // A condition that failed may have failed on our own write: an attempt whose
            // answer was lost (a reset connection) landed, and the SDK's retry found it. The
            // object then holds exactly what we wrote (a lease owner, an upload id: nobody
            // else writes the same), and the write is ours.
            Err(e) if lost_race(&e) => match self.read_state::<serde_json::Value>(key).await? {
                Some((stored, etag))
                    if serde_json::to_value(value).ok().as_ref() == Some(&stored) =>
                {
                    Ok(etag)
                }
                _ => Ok(None),
            },
            Err(e) => Err(classify(&self.dest_request("s3:PutObject", Some(key)), e)),
        }
    }

    /// Removes a state object (a delete marker in a versioned bucket; the bucket's lifecycle
    /// rule expires what is left under the reserved prefix).
    pub(crate) async fn delete_state(&self, key: &str) -> Result<(), ReplicationError> {
        self.clients
            .destination
            .delete_object()
            .bucket(&self.config.destination_bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(&self.dest_request("s3:DeleteObject", Some(key)), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_keys_are_short_stable_and_distinct() {
        let a = upload_manifest_key("", &"k".repeat(1024));
        assert!(a.len() < 100, "{a}");
        assert_eq!(a, upload_manifest_key("", &"k".repeat(1024)));
        assert_ne!(upload_manifest_key("", "a"), upload_manifest_key("", "b"));
        assert!(upload_manifest_key("p/", "a").starts_with("p/.s3-fallback-replicator/uploads/"));
    }
}
