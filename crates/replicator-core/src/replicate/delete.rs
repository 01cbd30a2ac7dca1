//! The one delete path, for a delete-marker event and an unversioned source's delete
//! (REPLICATE_DELETES), a lifecycle expiration (REPLICATE_LIFECYCLE_EXPIRATIONS), and the
//! sync's destination-only replicas (SYNC_DELETE): the replica is deleted (a delete marker
//! in a versioned destination) only if the replicator wrote it from this very source bucket
//! and key (provenance), the source key has no current object, and the replica is still the
//! one judged (If-Match on its ETag).

use super::Replicator;
use crate::error::ReplicationError;
use crate::outcome::{Outcome, SkipReason};
use crate::request::ObjectRequest;
use crate::s3::{Condition, Write};

/// What a guarded delete did.
enum Deleted {
    Marker(Option<String>),
    Kept(SkipReason),
}

async fn guarded(
    r: &Replicator,
    source_key: &str,
    dest_key: &str,
) -> Result<Deleted, ReplicationError> {
    let bucket = &r.destination.bucket;
    let Some(replica) = bucket.head(dest_key, None).await? else {
        return Ok(Deleted::Kept(SkipReason::NoReplica));
    };
    // Ours only if its provenance names this very source: this bucket, this key.
    let made_from = format!("{}/{source_key}", r.config.source.bucket);
    let facts = crate::facts::ReplicaFacts::from_head(&replica);
    let ours = facts
        .provenance
        .as_ref()
        .is_some_and(|p| p.source == made_from);
    if !ours {
        return Ok(Deleted::Kept(SkipReason::ReplicaNotOurs));
    }
    if r.source.head(source_key, None).await?.is_some() {
        return Ok(Deleted::Kept(SkipReason::SourceRecreated));
    }
    Ok(
        // Only the replica judged above: one written meanwhile (the key recreated and
        // copied again) makes the conditional delete lose, and it stays.
        match bucket
            .delete(dest_key, None, &Condition::Matches(facts.etag.clone()))
            .await?
        {
            Write::Done(version) => Deleted::Marker(version),
            Write::LostRace => Deleted::Kept(SkipReason::SourceRecreated),
        },
    )
}

/// A delete marker became the source's current version.
pub(super) async fn for_event(
    r: &Replicator,
    req: &ObjectRequest,
    dest_key: &str,
) -> Result<Outcome, ReplicationError> {
    Ok(match guarded(r, &req.key, dest_key).await? {
        Deleted::Marker(replica_version_id) => Outcome::DeleteMarkerCreated { replica_version_id },
        Deleted::Kept(reason) => Outcome::Skipped { reason },
    })
}

/// A replica the sync found without a source: `true` when it got a delete marker.
pub(super) async fn orphan(r: &Replicator, key: &str) -> Result<bool, ReplicationError> {
    let dest_key = r.config.destination_key(key);
    Ok(matches!(
        guarded(r, key, &dest_key).await?,
        Deleted::Marker(_)
    ))
}
