//! Where a pass stands, kept as a small JSON object in the destination bucket under the
//! reserved prefix `{DESTINATION_PREFIX}.s3-fallback-replicator/sync/` (which sync never
//! lists as a replica and the copier refuses to write over).
//!
//! Every write is conditional on the ETag read before it, and a run holds a lease (owner,
//! expiry) while it works: an overlapping invocation sees the lease and stops at once, so
//! two runs never work the same keys, and a crashed run's lease simply expires.

use serde::{Deserialize, Serialize};

use crate::copy::Replicator;
use crate::error::ReplicationError;
use crate::state::Precondition;
pub use crate::state::RESERVED_PREFIX;

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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub expires_ms: i64,
}

/// The checkpoint object's key for a sync over `prefix`.
pub fn checkpoint_key(destination_prefix: &str, prefix: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let name = if prefix.is_empty() {
        "all".to_owned()
    } else {
        format!("prefix-{}", utf8_percent_encode(prefix, NON_ALPHANUMERIC))
    };
    format!("{destination_prefix}{RESERVED_PREFIX}sync/{name}.json")
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

impl Replicator {
    pub(crate) async fn read_checkpoint(&self, key: &str) -> Result<Stored, ReplicationError> {
        // An unreadable checkpoint (hand-edited, older format) starts a new pass rather than
        // blocking sync forever; the next write stays conditional on its ETag.
        match self.read_state::<serde_json::Value>(key).await? {
            Some((value, etag)) => Ok(Stored {
                checkpoint: serde_json::from_value(value).unwrap_or_default(),
                etag,
            }),
            None => Ok(Stored {
                checkpoint: Checkpoint::default(),
                etag: None,
            }),
        }
    }

    /// Writes the checkpoint if nobody changed it since `previous_etag`; `Ok(None)` when
    /// someone did.
    pub(crate) async fn write_checkpoint(
        &self,
        key: &str,
        checkpoint: &Checkpoint,
        previous_etag: Option<&str>,
    ) -> Result<Option<String>, ReplicationError> {
        let precondition = match previous_etag {
            Some(etag) => Precondition::Matches(etag),
            None => Precondition::Absent,
        };
        self.write_state(key, checkpoint, precondition).await
    }

    /// Gives back `owner`'s lease, if it still holds it; best effort (a lease not given back
    /// expires).
    pub(crate) async fn release_checkpoint(&self, key: &str, owner: &str) {
        let released = async {
            let stored = self.read_checkpoint(key).await?;
            if stored.checkpoint.lease.as_ref().map(|l| l.owner.as_str()) != Some(owner) {
                return Ok(());
            }
            let checkpoint = Checkpoint {
                lease: None,
                ..stored.checkpoint
            };
            self.write_checkpoint(key, &checkpoint, stored.etag.as_deref())
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
    pub(crate) async fn acquire_checkpoint(
        &self,
        key: &str,
        owner: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<Acquired, ReplicationError> {
        let stored = self.read_checkpoint(key).await?;
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
        match self
            .write_checkpoint(key, &checkpoint, stored.etag.as_deref())
            .await?
        {
            Some(etag) => Ok(Acquired::Held(Stored {
                checkpoint,
                etag: Some(etag),
            })),
            // Someone wrote between our read and write: they hold it now.
            None => {
                let now = self.read_checkpoint(key).await?;
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
        assert_eq!(
            checkpoint_key("", ""),
            ".s3-fallback-replicator/sync/all.json"
        );
        assert_eq!(
            checkpoint_key("replica/", "in/a b"),
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
        };
        let back: Checkpoint = serde_json::from_slice(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
