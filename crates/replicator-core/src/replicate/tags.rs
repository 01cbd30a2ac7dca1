//! A source version's tags changed (ObjectTagging:Put / :Delete, EventBridge Object Tags
//! Added / Deleted): its replica's tags follow, without its data being rewritten — only on
//! the replica this replicator made from that very source version (provenance), never on a
//! replica of another version. Native replication carries tag changes to its own replicas
//! ("What does Amazon S3 replicate?", S3 user guide), so a native replica is left to it.
//!
//! The tags go to the replica version the HEAD saw (PutObjectTagging with its version id),
//! so a replica written meanwhile for a newer source version keeps its own tags.

use super::Replicator;
use crate::error::ReplicationError;
use crate::facts::ReplicaFacts;
use crate::outcome::{Outcome, SkipReason};
use crate::request::ObjectRequest;

pub(super) async fn for_event(
    r: &Replicator,
    req: &ObjectRequest,
    dest_key: &str,
) -> Result<Outcome, ReplicationError> {
    let skipped = |reason| Ok(Outcome::Skipped { reason });
    let Some(source) = r.source.head(&req.key, req.version_id.as_deref()).await? else {
        return skipped(SkipReason::SourceGone);
    };
    let Some(replica) = r.destination.bucket.head(dest_key, None).await? else {
        // Not copied yet: the copy (its event, or the sync) carries the tags then.
        return skipped(SkipReason::NoReplica);
    };
    let Some(provenance) = ReplicaFacts::from_head(&replica).provenance else {
        return skipped(SkipReason::ReplicaNotOurs);
    };
    if provenance.source != format!("{}/{}", r.config.source.bucket, req.key) {
        return skipped(SkipReason::ReplicaNotOurs);
    }
    // An unversioned source reports the version id "null"; provenance records none.
    let source_version = source.version_id().filter(|v| *v != "null");
    if provenance.version_id.as_deref() != source_version {
        return skipped(SkipReason::ReplicaOfAnotherVersion);
    }
    let mut wanted = r.source.tags(&req.key, source.version_id()).await?;
    let replica_version = replica.version_id().map(str::to_owned);
    let mut current = r
        .destination
        .bucket
        .tags(dest_key, replica_version.as_deref())
        .await?;
    // A tag set has no order.
    wanted.sort();
    current.sort();
    if current == wanted {
        return skipped(SkipReason::UpToDate);
    }
    r.destination
        .bucket
        .set_tags(dest_key, replica_version.as_deref(), &wanted)
        .await?;
    Ok(Outcome::TagsReplicated {
        tags: wanted.len(),
        replica_version_id: replica_version,
    })
}
