//! Upload manifests: what a multipart upload in progress was started for, one record per
//! upload under `{DESTINATION_PREFIX}.s3-fallback-replicator/uploads/{key hash}/`, so that a
//! copy stopped at its deadline is resumed — only for exactly the same source version — and
//! an upload nobody will finish is found and aborted.
//!
//! A record is a lease: while a copy holds it (`held_until_ms`) no other copy resumes or
//! aborts its upload. Every write after the first is conditional on the ETag its writer
//! read, and every delete on the ETag its writer holds, so a copy that lost a race can never
//! overwrite or remove another's record; several uploads of one key each have their own.

use serde::{Deserialize, Serialize};

use super::{StateStore, Stored};
use crate::error::ReplicationError;
use crate::s3::Condition;

/// Where upload manifests live, below the reserved prefix.
pub const UPLOADS: &str = "uploads/";

pub use crate::clock::UPLOAD_LEASE_MS;

/// What an upload in progress was started for; it is resumed only for exactly that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadManifest {
    pub dest_key: String,
    pub upload_id: String,
    pub source_etag: String,
    pub source_version_id: Option<String>,
    pub size: u64,
    pub part_size: u64,
    /// The source version's Last-Modified (seconds): tells the sweep whether a replica is
    /// newer than what this upload would write. 0 in manifests from before it was recorded.
    #[serde(default)]
    pub source_last_modified: i64,
    /// Until when (epoch ms) a copy is working on this upload: no other copy resumes or
    /// aborts it before then. 0 once released at a deadline.
    #[serde(default)]
    pub held_until_ms: i64,
    /// Which copy holds it (a fresh id per copy): with the ETag, what makes a write ours.
    #[serde(default)]
    pub holder: String,
}

impl UploadManifest {
    /// Whether `other` describes an upload of the very same bytes (same key, source
    /// version, size and part size), whoever holds it.
    pub fn same_copy(&self, other: &UploadManifest) -> bool {
        self.dest_key == other.dest_key
            && self.source_etag == other.source_etag
            && self.source_version_id == other.source_version_id
            && self.size == other.size
            && self.part_size == other.part_size
            && self.source_last_modified == other.source_last_modified
    }

    /// Whether a copy holds it at `now_ms`.
    pub fn held(&self, now_ms: i64) -> bool {
        self.held_until_ms > now_ms
    }
}

/// A record as its writer last saw it: where it is and its ETag then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub etag: String,
}

/// The manifests, over the state store.
#[derive(Debug, Clone)]
pub struct Uploads {
    store: StateStore,
}

/// FNV-1a with two seeds: 128 bits, as 32 hex digits.
fn hash(s: &str) -> String {
    let fnv = |seed: u64| {
        s.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x84222325_cbf29ce4)
    )
}

impl Uploads {
    pub fn new(store: StateStore) -> Self {
        Self { store }
    }

    /// Where the records of the multipart copies to `dest_key` live. The key is hashed, so
    /// any replica key fits; each record repeats it whole.
    pub fn prefix_for(&self, dest_key: &str) -> String {
        format!("{UPLOADS}{}/", hash(dest_key))
    }

    /// Where the record of one upload lives.
    pub fn key_for(&self, dest_key: &str, upload_id: &str) -> String {
        format!(
            "{}{}{}.json",
            self.store.root(),
            self.prefix_for(dest_key),
            hash(upload_id)
        )
    }

    pub async fn read(
        &self,
        key: &str,
    ) -> Result<Option<Stored<UploadManifest>>, ReplicationError> {
        self.store.read(key).await
    }

    /// Every record of `dest_key`'s uploads (hash collisions with other keys left out).
    pub async fn of(
        &self,
        dest_key: &str,
    ) -> Result<Vec<(Record, UploadManifest)>, ReplicationError> {
        let mut records = Vec::new();
        for key in self.store.list(&self.prefix_for(dest_key)).await? {
            let stored = match self.read(&key).await {
                Ok(stored) => stored,
                // Not the replicator's: left alone (and counted by the sweep), not a reason
                // to fail this copy.
                Err(e @ ReplicationError::StateUnreadable { .. }) => {
                    tracing::error!(error = %e, "an upload record cannot be read");
                    None
                }
                Err(e) => return Err(e),
            };
            if let Some(stored) = stored {
                if stored.value.dest_key == dest_key {
                    records.push((
                        Record {
                            key,
                            etag: stored.etag,
                        },
                        stored.value,
                    ));
                }
            }
        }
        Ok(records)
    }

    /// Records a new upload; `None` when its record could not be made (the upload then
    /// belongs to nobody but the copy that made it, which aborts it when it is done).
    pub async fn record(
        &self,
        manifest: &UploadManifest,
    ) -> Result<Option<Record>, ReplicationError> {
        let key = self.key_for(&manifest.dest_key, &manifest.upload_id);
        let written = self.store.write(&key, manifest, &Condition::Absent).await?;
        Ok(written.map(|etag| Record { key, etag }))
    }

    /// Rewrites a record, only if it is still as its writer saw it; the record as it now
    /// is, or `None` when someone else changed it first.
    pub async fn update(
        &self,
        record: &Record,
        manifest: &UploadManifest,
    ) -> Result<Option<Record>, ReplicationError> {
        let condition = Condition::Matches(record.etag.clone());
        let written = self.store.write(&record.key, manifest, &condition).await?;
        Ok(written.map(|etag| Record {
            key: record.key.clone(),
            etag,
        }))
    }

    /// Removes a record, only if it is still as its holder wrote it: `false` when someone
    /// else changed it first (and it is theirs now).
    pub async fn forget(&self, record: &Record) -> Result<bool, ReplicationError> {
        self.store.delete_if(&record.key, &record.etag).await
    }

    /// Every record's key (those of older versions' one-per-key layout included).
    pub async fn all(&self) -> Result<Vec<String>, ReplicationError> {
        self.store.list(UPLOADS).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uploads(prefix: &str) -> Uploads {
        Uploads::new(crate::state::test_store(prefix))
    }

    #[test]
    fn record_keys_are_short_stable_distinct_and_grouped_by_replica_key() {
        let u = uploads("");
        let a = u.key_for(&"k".repeat(1024), &"u".repeat(200));
        assert!(a.len() < 120, "{a}");
        assert_eq!(a, u.key_for(&"k".repeat(1024), &"u".repeat(200)));
        assert_ne!(u.key_for("a", "1"), u.key_for("b", "1"));
        assert_ne!(u.key_for("a", "1"), u.key_for("a", "2"));
        let prefix = format!(".s3-fallback-replicator/{}", u.prefix_for("a"));
        assert!(u.key_for("a", "1").starts_with(&prefix));
        assert!(u.key_for("a", "2").starts_with(&prefix));
        assert!(uploads("p/")
            .key_for("a", "1")
            .starts_with("p/.s3-fallback-replicator/uploads/"));
    }
}
