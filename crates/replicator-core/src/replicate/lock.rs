//! Object Lock and the replica: whether the destination bucket can hold a locked replica at
//! all, and a replica's lock brought to its source version's after a later change (S3 sends
//! no event for a retention or legal hold change; an event or a copy of an up-to-date
//! replica, and `verify --repair` for lock-drift, are where it is seen).

use tracing::{info, warn};

use super::{skipped, Replicator};
use crate::error::ReplicationError;
use crate::facts::{LockSettings, ReplicaFacts, SourceObject};
use crate::outcome::{Outcome, SkipReason};
use crate::plan::lock::lock_changes;
use crate::request::ObjectRequest;

impl Replicator {
    /// Whether the destination bucket has Object Lock: read once, then remembered (a
    /// bucket's Object Lock, once enabled, cannot be turned off).
    pub(super) async fn destination_has_object_lock(&self) -> Result<bool, ReplicationError> {
        let bucket = &self.destination.bucket;
        self.destination
            .object_lock
            .get_or_try_init(|| bucket.object_lock_enabled())
            .await
            .copied()
    }
}

/// A replica already made from the source version: in a bucket with Object Lock, its lock
/// is brought to the source version's (a retention extended, a legal hold put on or taken
/// off), without its data being rewritten.
pub(super) async fn follow(
    r: &Replicator,
    req: &ObjectRequest,
    dest_key: &str,
    replica: &ReplicaFacts,
) -> Result<Outcome, ReplicationError> {
    if !followed(r, replica).await? {
        return Ok(skipped(SkipReason::UpToDate));
    }
    let made_from = replica
        .provenance
        .as_ref()
        .and_then(|p| p.version_id.clone())
        .or_else(|| req.version_id.clone());
    let Some(head) = r.source.head(&req.key, made_from.as_deref()).await? else {
        return Ok(skipped(SkipReason::UpToDate));
    };
    let source = SourceObject::from_head(&head).lock;
    apply(r, dest_key, replica, &source).await
}

/// A replica found up to date with the source version read (`source`, its lock): in a
/// bucket with Object Lock, its lock is brought to the source's. Native replicas are left
/// to native replication.
pub(super) async fn up_to_date(
    r: &Replicator,
    dest_key: &str,
    replica: &ReplicaFacts,
    source: &LockSettings,
) -> Result<Outcome, ReplicationError> {
    if !followed(r, replica).await? {
        return Ok(skipped(SkipReason::UpToDate));
    }
    apply(r, dest_key, replica, source).await
}

/// Whether a replica's lock follows its source's: ours (native replicas are native
/// replication's), in a bucket with Object Lock.
async fn followed(r: &Replicator, replica: &ReplicaFacts) -> Result<bool, ReplicationError> {
    Ok(!replica.is_native() && r.destination_has_object_lock().await?)
}

/// Brings `replica`'s lock to `source`'s, as far as S3 lets it without a governance bypass.
async fn apply(
    r: &Replicator,
    dest_key: &str,
    replica: &ReplicaFacts,
    source: &LockSettings,
) -> Result<Outcome, ReplicationError> {
    let changes = lock_changes(source, &replica.lock);
    if let Some(why) = changes.kept {
        warn!(key = dest_key, source = ?source, replica = ?replica.lock, "replica keeps its Object Lock retention: {why}");
    }
    if changes.is_empty() {
        return Ok(skipped(SkipReason::UpToDate));
    }
    let bucket = &r.destination.bucket;
    let version = replica.version_id.as_deref();
    if changes.retention {
        bucket.set_retention(dest_key, version, source).await?;
    }
    if let Some(on) = changes.legal_hold {
        bucket.set_legal_hold(dest_key, version, on).await?;
    }
    info!(key = dest_key, lock = ?source, "replica's Object Lock follows its source's");
    Ok(Outcome::LockReplicated {
        replica_version_id: replica.version_id.clone(),
    })
}
