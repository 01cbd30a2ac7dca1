//! The sweep after a complete sync pass: multipart uploads kept at a deadline that no copy
//! will finish — no copy holds the manifest, and the replica has since been written from
//! the same source version or a newer one — are aborted.

use std::time::Instant;

use tracing::{info, warn};

use super::{multipart, Replicator};
use crate::clock::now_ms;
use crate::error::ReplicationError;
use crate::facts::SourceFacts;
use crate::plan::{self, Decision};
use crate::s3::Condition;
use crate::state::uploads::{UploadManifest, UPLOAD_LEASE_MS};

pub(super) async fn abandoned_uploads(
    r: &Replicator,
    until: Instant,
) -> Result<u64, ReplicationError> {
    let mut aborted = 0;
    for manifest_key in r.destination.uploads.list().await? {
        if Instant::now() >= until {
            break;
        }
        match sweep_one(r, &manifest_key).await {
            Ok(true) => aborted += 1,
            Ok(false) => {}
            Err(e) => warn!(manifest_key, error = %e, "could not sweep an upload"),
        }
    }
    Ok(aborted)
}

/// One manifest of the sweep: `true` when its upload was aborted.
async fn sweep_one(r: &Replicator, manifest_key: &str) -> Result<bool, ReplicationError> {
    let uploads = &r.destination.uploads;
    let Some(stored) = uploads.read(manifest_key).await? else {
        return Ok(false);
    };
    let found = stored.value;
    if found.held_until_ms > now_ms() {
        return Ok(false);
    }
    let replica = r
        .destination
        .bucket
        .head(&found.dest_key, None)
        .await?
        .map(|out| crate::facts::ReplicaFacts::from_head(&out));
    let source = SourceFacts {
        version_id: found.source_version_id.clone(),
        etag: found.source_etag.clone(),
        last_modified: found.source_last_modified,
        sequencer: None,
    };
    if plan::order_question(&source, replica.as_ref()).is_some() {
        // Same second, and the order is unknown here: keep it.
        return Ok(false);
    }
    let useless = match plan::decide(&source, replica.as_ref(), None) {
        Decision::UpToDate => true,
        // Without the source's time, "newer" cannot be told from "older".
        Decision::ReplicaIsNewer => found.source_last_modified > 0,
        _ => false,
    };
    if !useless {
        return Ok(false);
    }
    // Hold it first, so a copy that takes it over meanwhile keeps it (and this gives up).
    let held = UploadManifest {
        held_until_ms: now_ms() + UPLOAD_LEASE_MS,
        ..found.clone()
    };
    if uploads
        .write(manifest_key, &held, &Condition::Matches(stored.etag))
        .await?
        .is_none()
    {
        return Ok(false);
    }
    info!(
        dest_key = found.dest_key,
        upload_id = found.upload_id,
        "aborting an upload another copy made useless"
    );
    multipart::discard(r, &found.dest_key, &found.upload_id, manifest_key).await;
    Ok(true)
}
