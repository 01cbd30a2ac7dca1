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
    /// A verification pass's own progress (its totals and evidence so far), kept by
    /// [`crate::verify::audit`]; absent from a sync's checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub expires_ms: i64,
}

/// The checkpoint object's key, below the reserved prefix, for a sync over `prefix`.
pub fn checkpoint_name(prefix: &str) -> String {
    format!("sync/{}.json", scope_name(prefix))
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
    Held(Stored),
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

    /// The checkpoint object's key for a sync over `prefix`.
    pub fn key_for(&self, prefix: &str) -> String {
        self.key_named(&checkpoint_name(prefix))
    }

    /// The key of a checkpoint named `name` below the reserved prefix (a verification's).
    pub fn key_named(&self, name: &str) -> String {
        format!("{}{name}", self.store.root())
    }

    /// The store the checkpoints live in.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    pub async fn read(&self, key: &str) -> Result<Stored, ReplicationError> {
        // An unreadable checkpoint (hand-edited, older format) starts a new pass rather than
        // blocking sync forever; the next write stays conditional on its ETag.
        match self.store.read::<serde_json::Value>(key).await? {
            Some(stored) => Ok(Stored {
                checkpoint: serde_json::from_value(stored.value).unwrap_or_default(),
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
            Some(etag) => Ok(Acquired::Held(Stored {
                checkpoint,
                etag: Some(etag),
            })),
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
        assert_eq!(at("").key_for(""), ".s3-fallback-replicator/sync/all.json");
        assert_eq!(
            at("replica/").key_for("in/a b"),
            "replica/.s3-fallback-replicator/sync/prefix-in%2Fa%20b.json"
        );
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
            audit: None,
        };
        let back: Checkpoint = serde_json::from_slice(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
