//! The sweep after a complete sync pass: every multipart upload nobody will finish is
//! aborted.
//!
//! - A recorded upload no copy holds whose replica has since been written from the same
//!   source version, or a newer one (within one second, the source's own version order
//!   decides, as for a copy).
//! - An upload no record names — its CreateMultipartUpload answer was lost, so the SDK's
//!   retry made another — once it is older than the longest a copy can hold one (the
//!   upload lease), under the replicas' prefix, and started by the destination role (an
//!   upload another writer started in the same bucket is never touched).

use std::collections::HashSet;
use std::time::Instant;

use tracing::{info, warn};

use super::kept::{abort, discard, useless};
use super::Replicator;
use crate::clock::now_ms;
use crate::error::ReplicationError;
use crate::facts::ReplicaFacts;
use crate::s3::OpenUpload;
use crate::state::uploads::Record;

/// What the sweep did with one record.
enum Swept {
    Aborted,
    /// Kept: its upload may still be finished (or another copy took the record).
    Kept(String),
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Uploads aborted.
    pub aborted: u64,
    /// Records that are not the replicator's (too large, not its JSON): left as they are.
    pub unreadable: u64,
}

pub(super) async fn abandoned_uploads(
    r: &Replicator,
    until: Instant,
) -> Result<Sweep, ReplicationError> {
    let mut sweep = Sweep::default();
    let mut recorded = HashSet::new();
    let mut all_read = true;
    for key in r.destination.uploads.all().await? {
        if Instant::now() >= until {
            return Ok(sweep);
        }
        match sweep_one(r, &key).await {
            Ok(Swept::Aborted) => sweep.aborted += 1,
            Ok(Swept::Kept(upload_id)) => {
                recorded.insert(upload_id);
            }
            Err(e) => {
                all_read = false;
                if matches!(e, ReplicationError::StateUnreadable { .. }) {
                    sweep.unreadable += 1;
                }
                warn!(key, error = %e, "could not sweep an upload");
            }
        }
    }
    // Only when every record was read can an upload be known to have none.
    if all_read {
        sweep.aborted += unrecorded(r, &recorded, until).await?;
    }
    Ok(sweep)
}

/// One record of the sweep.
async fn sweep_one(r: &Replicator, key: &str) -> Result<Swept, ReplicationError> {
    let Some(stored) = r.destination.uploads.read(key).await? else {
        return Ok(Swept::Kept(String::new()));
    };
    let manifest = stored.value;
    if manifest.held(now_ms()) {
        return Ok(Swept::Kept(manifest.upload_id));
    }
    let replica = r
        .destination
        .bucket
        .head(&manifest.dest_key, None)
        .await?
        .map(|out| ReplicaFacts::from_head(&out));
    if !useless(r, &manifest, replica.as_ref()).await? {
        return Ok(Swept::Kept(manifest.upload_id));
    }
    let record = Record {
        key: key.to_owned(),
        etag: stored.etag,
    };
    let upload_id = manifest.upload_id.clone();
    Ok(if discard(r, record, manifest).await {
        Swept::Aborted
    } else {
        Swept::Kept(upload_id)
    })
}

/// Aborts the destination role's uploads under the replicas' prefix that no record names
/// and that are older than the upload lease.
async fn unrecorded(
    r: &Replicator,
    recorded: &HashSet<String>,
    until: Instant,
) -> Result<u64, ReplicationError> {
    let prefix = format!(
        "{}{}",
        r.config.destination.prefix, r.config.source.key_prefix
    );
    let older_than = now_ms() - r.config.transfer.upload_lease_ms;
    let role = role_session_marker(&r.config.destination.role_arn);
    let mut aborted = 0;
    for upload in r.destination.bucket.list_uploads(&prefix).await? {
        if Instant::now() >= until {
            break;
        }
        let ours = upload
            .initiator
            .as_deref()
            .is_some_and(|i| i.contains(&role));
        if ours && upload.initiated_ms < older_than && !recorded.contains(&upload.upload_id) {
            abort_unrecorded(r, &upload).await;
            aborted += 1;
        }
    }
    Ok(aborted)
}

async fn abort_unrecorded(r: &Replicator, upload: &OpenUpload) {
    info!(
        key = upload.key,
        upload_id = upload.upload_id,
        "aborting an upload no record names (its creation's answer was lost)"
    );
    abort(r, &upload.key, &upload.upload_id).await;
}

/// `:assumed-role/NAME/`, as the ARN of a session of the role `arn:…:role/PATH/NAME` reads.
fn role_session_marker(role_arn: &str) -> String {
    let name = role_arn.rsplit('/').next().unwrap_or(role_arn);
    format!(":assumed-role/{name}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_of_the_destination_role_are_recognised() {
        let marker = role_session_marker("arn:aws:iam::222222222222:role/ops/replicator");
        assert!("arn:aws:sts::222222222222:assumed-role/replicator/s3-fallback".contains(&marker));
        assert!(!"arn:aws:sts::222222222222:assumed-role/replicator-2/s".contains(&marker));
        assert!(!"arn:aws:iam::222222222222:user/replicator".contains(&marker));
    }
}
