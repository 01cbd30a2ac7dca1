//! Upload manifests: what a multipart upload in progress was started for, under
//! `{DESTINATION_PREFIX}.s3-fallback-replicator/uploads/`, so that a copy stopped at its
//! deadline is resumed — only for exactly the same source version — and an upload nobody
//! will finish is found and aborted.
//!
//! A manifest is a lease: while a copy works on its upload (`held_until_ms`) no other copy
//! resumes or aborts it.

use serde::{Deserialize, Serialize};

use super::{StateStore, Stored};
use crate::error::ReplicationError;
use crate::s3::Condition;

/// Where upload manifests live, below the reserved prefix.
pub const UPLOADS: &str = "uploads/";

/// How long a copy holds its upload unless it releases it: Lambda's longest invocation, and
/// a margin. A holder that dies without releasing frees the upload after this.
pub const UPLOAD_LEASE_MS: i64 = 16 * 60 * 1000;

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
    /// Until when (epoch ms) a copy is working on this upload: another copier of the same
    /// key neither resumes nor aborts it before then. 0 once released at a deadline.
    #[serde(default)]
    pub held_until_ms: i64,
}

impl UploadManifest {
    /// Whether `other` describes an upload of the very same bytes (same source version,
    /// size and part size), whoever holds it.
    pub fn same_copy(&self, other: &UploadManifest) -> bool {
        self.dest_key == other.dest_key
            && self.source_etag == other.source_etag
            && self.source_version_id == other.source_version_id
            && self.size == other.size
            && self.part_size == other.part_size
            && self.source_last_modified == other.source_last_modified
    }
}

/// The manifests, over the state store.
#[derive(Debug, Clone)]
pub struct Uploads {
    store: StateStore,
}

impl Uploads {
    pub fn new(store: StateStore) -> Self {
        Self { store }
    }

    /// Where the manifest of the multipart copy to `dest_key` lives. The key is hashed
    /// (FNV-1a, two seeds: 128 bits) so any replica key fits; the manifest repeats it whole.
    pub fn key_for(&self, dest_key: &str) -> String {
        let fnv = |seed: u64| {
            dest_key.bytes().fold(seed, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            })
        };
        format!(
            "{}{UPLOADS}{:016x}{:016x}.json",
            self.store.root(),
            fnv(0xcbf2_9ce4_8422_2325),
            fnv(0x84222325_cbf29ce4)
        )
    }

    pub async fn read(
        &self,
        manifest_key: &str,
    ) -> Result<Option<Stored<UploadManifest>>, ReplicationError> {
        self.store.read(manifest_key).await
    }

    /// Writes a manifest under `condition`; its ETag, or `None` when the condition failed.
    pub async fn write(
        &self,
        manifest_key: &str,
        manifest: &UploadManifest,
        condition: &Condition,
    ) -> Result<Option<String>, ReplicationError> {
        self.store.write(manifest_key, manifest, condition).await
    }

    pub async fn forget(&self, manifest_key: &str) -> Result<(), ReplicationError> {
        self.store.delete(manifest_key).await
    }

    /// Every manifest's key.
    pub async fn list(&self) -> Result<Vec<String>, ReplicationError> {
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
    fn manifest_keys_are_short_stable_and_distinct() {
        let u = uploads("");
        let a = u.key_for(&"k".repeat(1024));
        assert!(a.len() < 100, "{a}");
        assert_eq!(a, u.key_for(&"k".repeat(1024)));
        assert_ne!(u.key_for("a"), u.key_for("b"));
        assert!(uploads("p/")
            .key_for("a")
            .starts_with("p/.s3-fallback-replicator/uploads/"));
    }
}
