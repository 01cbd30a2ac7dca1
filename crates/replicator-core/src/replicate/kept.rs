//! Uploads stopped attempts kept: whether one is still of use, and discarding one that is
//! not — its record taken over first (on the ETag read), so that a copy that took it
//! meanwhile keeps it.

use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{info, warn};

use super::Replicator;
use crate::clock::now_ms;
use crate::error::ReplicationError;
use crate::facts::{ReplicaFacts, SourceFacts};
use crate::plan::{self, Decision};
use crate::state::uploads::{Record, UploadManifest};

/// A fresh id per copy, for the records it holds.
pub(super) fn holder_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        now_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether `replica` is already as new as what the upload would write, or newer.
pub(super) async fn useless(
    r: &Replicator,
    manifest: &UploadManifest,
    replica: Option<&ReplicaFacts>,
) -> Result<bool, ReplicationError> {
    let source = SourceFacts {
        version_id: manifest.source_version_id.clone(),
        etag: manifest.source_etag.clone(),
        last_modified: manifest.source_last_modified,
        sequencer: None,
    };
    let order = match plan::order_question(&source, replica) {
        Some(theirs) => {
            let prefix = &r.config.destination.prefix;
            let Some(source_key) = manifest.dest_key.strip_prefix(prefix.as_str()) else {
                return Ok(false);
            };
            let ours = source.version_id.as_deref().unwrap_or("null");
            Some(r.source.version_order(source_key, ours, &theirs).await?)
        }
        None => None,
    };
    Ok(match plan::decide(&source, replica, order) {
        Decision::UpToDate => true,
        // Without the source's time (records from before it was kept), "newer" cannot be
        // told from "older".
        Decision::ReplicaIsNewer => manifest.source_last_modified > 0,
        Decision::Create | Decision::Replace { .. } => false,
        // Cannot tell: kept (the lifecycle rule aborts it at last).
        Decision::NativeReplicaOfUnknownVersion => false,
    })
}

/// The copy decided not to write (the replica is up to date, or newer): the uploads stopped
/// attempts kept for this very source version will never be finished, and are aborted.
pub(super) async fn abandon_kept(
    r: &Replicator,
    dest_key: &str,
    version_id: Option<&str>,
    etag: &str,
) {
    let kept = match r.destination.uploads.of(dest_key).await {
        Ok(kept) => kept,
        Err(e) => {
            warn!(error = %e, "could not look for kept uploads; the sweep will");
            return;
        }
    };
    let now = now_ms();
    for (record, manifest) in kept {
        let ours = manifest.source_version_id.as_deref() == version_id
            && manifest.source_etag.trim_matches('"') == etag.trim_matches('"');
        if ours && !manifest.held(now) {
            discard(r, record, manifest).await;
        }
    }
}

/// Takes a released record over, then aborts its upload and removes it; `true` when it was
/// aborted (a record someone else took meanwhile is theirs, and left alone).
pub(super) async fn discard(r: &Replicator, record: Record, manifest: UploadManifest) -> bool {
    let uploads = &r.destination.uploads;
    let held = UploadManifest {
        held_until_ms: now_ms() + r.config.transfer.upload_lease_ms,
        holder: holder_id(),
        ..manifest
    };
    let record = match uploads.update(&record, &held).await {
        Ok(Some(record)) => record,
        Ok(None) => return false,
        Err(e) => {
            warn!(error = %e, "could not take an abandoned upload's record");
            return false;
        }
    };
    info!(
        dest_key = held.dest_key,
        upload_id = held.upload_id,
        "aborting an upload nobody will finish"
    );
    abort(r, &held.dest_key, &held.upload_id).await;
    if let Err(e) = uploads.forget(&record).await {
        warn!(error = %e, "could not remove an abandoned upload's record");
    }
    true
}

/// Aborts an upload, reporting (not failing on) what cannot be done: the sweep, and the
/// bucket's lifecycle rule, abort what is left.
pub(super) async fn abort(r: &Replicator, dest_key: &str, upload_id: &str) {
    if let Err(e) = r.destination.bucket.abort(dest_key, upload_id).await {
        warn!(resource = %r.destination.bucket.resource(dest_key), upload_id, error = %e,
            "could not abort multipart upload; the sweep or the bucket's lifecycle rule must");
    }
}
