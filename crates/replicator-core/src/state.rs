//! Small JSON objects the replicator keeps about its own work, in the destination bucket
//! under the reserved prefix `{DESTINATION_PREFIX}.s3-fallback-replicator/`, written by the
//! destination role with SSE-KMS: one [`StateStore`] for all of them, and typed stores over
//! it — [`uploads`] (a manifest per multipart copy in progress, so a copy stopped at a
//! deadline resumes from its uploaded parts) and [`checkpoint`] (where a sync pass stands).

pub mod checkpoint;
pub mod uploads;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ReplicationError;
use crate::s3::{body, Attributes, Bucket, Condition, Write};

/// The reserved key segment: the replicator's own objects live under
/// `{DESTINATION_PREFIX}.s3-fallback-replicator/`, and no key with this segment anywhere is
/// ever replicated or listed as a replica (another deployment sharing the bucket under
/// another prefix keeps its state there too).
pub const RESERVED_SEGMENT: &str = ".s3-fallback-replicator";

/// Reserved key prefix (after DESTINATION_PREFIX) for the replicator's own objects.
pub const RESERVED_PREFIX: &str = ".s3-fallback-replicator/";

/// The largest state object the replicator reads: its own are a few KiB (a checkpoint with
/// its carried failures stays under half of this); anything larger is not its own.
pub const MAX_STATE_BYTES: u64 = 1024 * 1024;

/// Whether `key` has the reserved segment anywhere (`a/.s3-fallback-replicator/b`).
pub fn is_reserved(key: &str) -> bool {
    key.split('/').any(|segment| segment == RESERVED_SEGMENT)
}

/// Attempts at reading a state object whose answer failed on the way.
const READ_ATTEMPTS: u32 = 3;

/// A state object as read, with the ETag the next write is conditional on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    pub value: T,
    pub etag: String,
}

/// JSON objects under `{DESTINATION_PREFIX}.s3-fallback-replicator/`.
#[derive(Debug, Clone)]
pub struct StateStore {
    bucket: Bucket,
    root: String,
    attributes: Attributes,
}

impl StateStore {
    pub fn new(
        bucket: Bucket,
        destination_prefix: &str,
        kms_key_id: &str,
        bucket_key_enabled: bool,
    ) -> Self {
        Self {
            bucket,
            root: format!("{destination_prefix}{RESERVED_PREFIX}"),
            attributes: Attributes::json(kms_key_id, bucket_key_enabled),
        }
    }

    /// `{DESTINATION_PREFIX}.s3-fallback-replicator/`.
    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// Reads a state object: `None` when there is none. One that is not what this
    /// replicator writes — too large, or not its JSON — is an error
    /// ([`ReplicationError::StateUnreadable`]), never taken for none: something else wrote
    /// there, and an operator must look. A read that failed on the way (a body cut short, a reset) is read again: an ambiguous
    /// answer is never taken for what the object says.
    pub async fn read<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Stored<T>>, ReplicationError> {
        let mut attempt = 1;
        loop {
            match self.read_once(key).await {
                Err(e) if e.is_retryable() && attempt < READ_ATTEMPTS => {
                    crate::clock::backoff(attempt).await;
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    async fn read_once<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Stored<T>>, ReplicationError> {
        let Some(out) = self.bucket.get(key, None, None, None).await? else {
            return Ok(None);
        };
        let resource = self.bucket.resource(key);
        let unreadable = |reason: String| ReplicationError::StateUnreadable {
            resource: resource.clone(),
            reason,
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let len = out.content_length().unwrap_or(0).max(0) as u64;
        if len > MAX_STATE_BYTES {
            return Err(unreadable(format!(
                "it is {len} bytes; the replicator's own state objects are at most {MAX_STATE_BYTES}"
            )));
        }
        let bytes = body::read_whole(out.body, len, &resource).await?;
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Some(Stored { value, etag })),
            Err(e) => Err(unreadable(format!("it is not the replicator's JSON: {e}"))),
        }
    }

    /// Writes a state object under `condition`; its new ETag, or `None` when the condition
    /// did not hold.
    ///
    /// A condition that failed may have failed on our own write: an attempt whose answer
    /// was lost (a reset connection) landed, and the SDK's retry found it. The object then
    /// holds exactly what we wrote (a lease owner, an upload id: nobody else writes the
    /// same), and the write is ours.
    pub async fn write<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        condition: &Condition,
    ) -> Result<Option<String>, ReplicationError> {
        let body = serde_json::to_vec_pretty(value).expect("state serialises");
        match self
            .bucket
            .put(key, &self.attributes, body.into(), condition)
            .await?
        {
            Write::Done(answer) => Ok(Some(answer.etag)),
            Write::LostRace => match self.read::<serde_json::Value>(key).await? {
                Some(stored)
                    if serde_json::to_value(value).ok().as_ref() == Some(&stored.value) =>
                {
                    Ok(Some(stored.etag))
                }
                _ => Ok(None),
            },
        }
    }

    /// Removes a state object (a delete marker in a versioned bucket; the bucket's lifecycle
    /// rule expires what is left under the reserved prefix).
    pub async fn delete(&self, key: &str) -> Result<(), ReplicationError> {
        self.bucket
            .delete(key, None, &Condition::None)
            .await
            .map(|_| ())
    }

    /// Removes a state object only if it is still the one with `etag` (S3's conditional
    /// delete): `false` when it changed since. One already gone counts as removed.
    pub async fn delete_if(&self, key: &str, etag: &str) -> Result<bool, ReplicationError> {
        let condition = Condition::Matches(etag.to_owned());
        Ok(matches!(
            self.bucket.delete(key, None, &condition).await?,
            Write::Done(_)
        ))
    }

    /// The keys of every state object under `{root}{relative}`.
    pub async fn list(&self, relative: &str) -> Result<Vec<String>, ReplicationError> {
        let prefix = format!("{}{relative}", self.root);
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let (objects, next) = self.bucket.list_page(&prefix, None, token).await?;
            keys.extend(objects.iter().filter_map(|o| o.key().map(str::to_owned)));
            match next {
                Some(t) => token = Some(t),
                None => return Ok(keys),
            }
        }
    }
}

/// A store on a client that is never called (unit tests of key layouts).
#[cfg(test)]
pub(crate) fn test_store(destination_prefix: &str) -> StateStore {
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build(),
    );
    let bucket = Bucket::new(client, "b", crate::error::Principal::Function, None);
    StateStore::new(bucket, destination_prefix, "k", true)
}
