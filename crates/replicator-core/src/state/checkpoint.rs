//! Where a sync pass stands, kept as a small JSON object under the reserved prefix
//! `{DESTINATION_PREFIX}.s3-fallback-replicator/sync/` (which sync never lists as a replica
//! and the copier refuses to write over).
//!
//! Every write is conditional on the ETag read before it, and a run holds a lease (owner,
//! expiry) while it works: an overlapping invocation sees the lease and stops at once, so
//! two runs never work the same keys, and a crashed run's lease simply expires.

use serde::{Deserialize, Serialize};

use super::StateStore;
use crate::error::ReplicationError;
use crate::s3::Condition;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Checkpoint {
    /// Identifies the pass (its start time in ms); a new pass starts after a complete one.
    pub pass_started_ms: i64,
    /// Every source key up to and including this one is done for this pass.
    pub start_after: Option<String>,
    /// Keys that failed in this pass; retried first by the next run.
    pub failed: Vec<String>,
    pub lease: Option<Lease>,
    /// When the last complete pass ended.
    pub last_complete_ms: Option<i64>,
    /// An inventory pass: every row of the data files before this one is done.
    pub position: Option<RowPosition>,
    /// An inventory pass: the manifest it reads (`s3://…/manifest.json`), or, once complete,
    /// the one it read.
    pub manifest: Option<String>,
    /// A verification pass's own progress (its totals and evidence so far), kept by
    /// [`crate::verify::audit`]; absent from a sync's checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<serde_json::Value>,
}

/// A row of an inventory's data files: data file `file` (0-based, in the manifest's order),
/// row `row` (0-based) within it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowPosition {
    pub file: u64,
    pub row: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub expires_ms: i64,
}

/// The checkpoint object's key, below the reserved prefix, for a sync of `source_bucket`
/// over `prefix`: one per source bucket and prefix, so two deployments writing into one
/// destination never share one.
pub fn checkpoint_name(source_bucket: &str, prefix: &str) -> String {
    format!("sync/{source_bucket}/{}.json", scope_name(prefix))
}

/// The name of an inventory pass's checkpoint: per source bucket and manifest location.
pub fn inventory_checkpoint_name(source_bucket: &str, manifest: &str) -> String {
    let fnv = manifest.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("sync/{source_bucket}/inventory-{fnv:016x}.json")
}

/// The name of one rule's checkpoint `name`, in a deployment of several rules.
pub fn rule_checkpoint_name(rule_id: &str, name: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    format!(
        "rule-{}/{name}",
        utf8_percent_encode(rule_id, NON_ALPHANUMERIC)
    )
}

/// A prefix as a name fit for a key: `all`, or `prefix-` and the prefix percent-encoded.
pub fn scope_name(prefix: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    if prefix.is_empty() {
        "all".to_owned()
    } else {
        format!("prefix-{}", utf8_percent_encode(prefix, NON_ALPHANUMERIC))
    }
}

/// The stored checkpoint and the ETag to make the next write conditional on.
#[derive(Debug, Clone)]
pub struct Stored {
    pub checkpoint: Checkpoint,
    pub etag: Option<String>,
}

pub enum Acquired {
    /// This run holds the lease.
    Held(Box<Stored>),
    /// Another run holds an unexpired lease.
    Busy(Lease),
}

/// The checkpoints, over the state store.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    store: StateStore,
}

impl Checkpoints {
    pub fn new(store: StateStore) -> Self {
        Self { store }
    }

    /// The checkpoint object's key for a sync of `source_bucket` over `prefix`.
    pub fn key_for(&self, source_bucket: &str, prefix: &str) -> String {
        self.key_named(&checkpoint_name(source_bucket, prefix))
    }

    /// The key of a checkpoint named `name` below the reserved prefix (a verification's).
    pub fn key_named(&self, name: &str) -> String {
        format!("{}{name}", self.store.root())
    }

    /// The store the checkpoints live in.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// The checkpoint of inventory passes over `manifest` (an `s3://` URL: a manifest, or an
    /// inventory's location), for `source_bucket`.
    pub fn key_for_inventory(&self, source_bucket: &str, manifest: &str) -> String {
        self.key_named(&inventory_checkpoint_name(source_bucket, manifest))
    }

    /// The checkpoint; a default one (a new pass) when there is none. One that is not the
    /// replicator's — too large, not its JSON — is an error naming it, never a silent reset.
    pub async fn read(&self, key: &str) -> Result<Stored, ReplicationError> {
        match self.store.read::<Checkpoint>(key).await? {
            Some(stored) => Ok(Stored {
                checkpoint: stored.value,
                etag: Some(stored.etag),
            }),
            None => Ok(Stored {
                checkpoint: Checkpoint::default(),
                etag: None,
            }),
        }
    }

    /// Writes the checkpoint if nobody changed it since `previous_etag`; `Ok(None)` when
    /// someone did.
    pub async fn write(
        &self,
        key: &str,
        checkpoint: &Checkpoint,
        previous_etag: Option<&str>,
    ) -> Result<Option<String>, ReplicationError> {
        let condition = match previous_etag {
            Some(etag) => Condition::Matches(etag.to_owned()),
            None => Condition::Absent,
        };
        self.store.write(key, checkpoint, &condition).await
    }

    /// Gives back `owner`'s lease, if it still holds it; best effort (a lease not given back
    /// expires).
    pub async fn release(&self, key: &str, owner: &str) {
        let released = async {
            let stored = self.read(key).await?;
            if stored.checkpoint.lease.as_ref().map(|l| l.owner.as_str()) != Some(owner) {
                return Ok(());
            }
            let checkpoint = Checkpoint {
                lease: None,
                ..stored.checkpoint
            };
            self.write(key, &checkpoint, stored.etag.as_deref())
                .await
                .map(|_| ())
        }
        .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not give back the checkpoint lease; it expires");
        }
    }

    /// Reads the checkpoint and takes the lease until `expires_ms`, unless another run
    /// holds it.
    pub async fn acquire(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<Acquired, ReplicationError> {
        let stored = self.read(key).await?;
        if let Some(lease) = &stored.checkpoint.lease {
            if lease.owner != owner && lease.expires_ms > now_ms {
                return Ok(Acquired::Busy(lease.clone()));
            }
        }
        let mut checkpoint = stored.checkpoint.clone();
        checkpoint.lease = Some(Lease {
            owner: owner.to_owned(),
            expires_ms,
        });
        match self.write(key, &checkpoint, stored.etag.as_deref()).await? {
            Some(etag) => Ok(Acquired::Held(Box::new(Stored {
                checkpoint,
                etag: Some(etag),
            }))),
            // Someone wrote between our read and write: they hold it now.
            None => {
                let now = self.read(key).await?;
                Ok(Acquired::Busy(now.checkpoint.lease.unwrap_or(Lease {
                    owner: "unknown".into(),
                    expires_ms,
                })))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_keys_live_under_the_reserved_prefix() {
        let at = |prefix| Checkpoints::new(crate::state::test_store(prefix));
        assert_eq!(
            at("").key_for("src", ""),
            ".s3-fallback-replicator/sync/src/all.json"
        );
        assert_eq!(
            at("replica/").key_for("src", "in/a b"),
            "replica/.s3-fallback-replicator/sync/src/prefix-in%2Fa%20b.json"
        );
        // Two source buckets syncing into one destination never share a checkpoint.
        assert_ne!(at("").key_for("a", ""), at("").key_for("b", ""));
    }

    #[test]
    fn checkpoint_round_trips() {
        let c = Checkpoint {
            pass_started_ms: 5,
            start_after: Some("k".into()),
            failed: vec!["f".into()],
            lease: Some(Lease {
                owner: "o".into(),
                expires_ms: 9,
            }),
            last_complete_ms: None,
            position: Some(RowPosition { file: 2, row: 7 }),
            manifest: Some("s3://inv/m.json".into()),
            audit: None,
        };
        let back: Checkpoint = serde_json::from_slice(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
