//! A multipart copy's hold on its upload's record: a lease of `upload_lease_ms`, renewed on
//! a timer while the copy sends parts, so that no other copy takes over (or the sweep
//! aborts) an upload that is still being sent, however long the copy runs. A hold that is
//! lost — another copy has the record, or it ran out and could not be renewed — ends the
//! copy without touching the upload.

use tracing::warn;

use super::Replicator;
use crate::clock::now_ms;
use crate::error::ReplicationError;
use crate::state::uploads::{Record, UploadManifest};

/// What one renewal of a hold came to.
enum Renewal {
    Renewed(Record),
    /// Not renewed, and still as this copy last wrote it: tried again shortly.
    Unchanged,
    /// Another copy's record now, or removed.
    Taken,
    /// No answer could be read.
    Unknown(ReplicationError),
}

/// This copy's hold on its upload's record, renewed on a timer while it sends parts.
pub(super) struct Held {
    /// As this copy last wrote it; `None` while the upload is not recorded.
    pub record: Option<Record>,
    pub manifest: UploadManifest,
    /// When (epoch ms) to renew next: half the hold left, or soon after a failed renewal.
    due_ms: i64,
    /// Another copy took the record over, or the hold ran out and could not be renewed:
    /// the upload is no longer this copy's to send to, complete or abort.
    pub lost: bool,
}

impl Held {
    pub fn new(r: &Replicator, record: Option<Record>, manifest: UploadManifest) -> Self {
        let due_ms = manifest.held_until_ms - r.config.transfer.upload_lease_ms / 2;
        Self {
            record,
            manifest,
            due_ms,
            lost: false,
        }
    }

    /// When the next renewal is due, for a timer.
    pub fn due(&self) -> tokio::time::Instant {
        let wait = (self.due_ms - now_ms()).max(0) as u64;
        tokio::time::Instant::now() + std::time::Duration::from_millis(wait)
    }

    /// Renews the hold if it is due: for another lease, on the ETag this copy holds. An
    /// upload whose record could not be written is recorded now (or the sweep would take it
    /// for an orphan once it is older than a lease).
    pub async fn renew_if_due(&mut self, r: &Replicator) {
        let now = now_ms();
        if now < self.due_ms {
            return;
        }
        let lease = r.config.transfer.upload_lease_ms;
        let renewed = UploadManifest {
            held_until_ms: now + lease,
            ..self.manifest.clone()
        };
        let upload_id = self.manifest.upload_id.as_str();
        match self.renew(r, &renewed).await {
            Renewal::Renewed(record) => {
                self.record = Some(record);
                self.manifest = renewed;
                self.due_ms = self.manifest.held_until_ms - lease / 2;
            }
            Renewal::Taken => {
                warn!(
                    upload_id,
                    "another copy took this upload over; it is theirs to finish"
                );
                self.lost = true;
            }
            Renewal::Unknown(e) if self.record.is_some() && now >= self.manifest.held_until_ms => {
                warn!(error = %e, upload_id,
                    "the hold on this upload ran out and could not be renewed; stopping");
                self.lost = true;
            }
            Renewal::Unknown(e) => {
                warn!(error = %e, upload_id, "could not renew the hold on this upload; trying again shortly");
                self.due_ms = now + (lease / 8).max(1_000);
            }
            Renewal::Unchanged => self.due_ms = now + (lease / 8).max(1_000),
        }
    }

    async fn renew(&self, r: &Replicator, renewed: &UploadManifest) -> Renewal {
        let uploads = &r.destination.uploads;
        let Some(record) = &self.record else {
            return match uploads.record(renewed).await {
                Ok(Some(record)) => Renewal::Renewed(record),
                // Refused by If-None-Match: a record of exactly this upload is there.
                Ok(None) => Renewal::Unchanged,
                Err(e) => Renewal::Unknown(e),
            };
        };
        if let Ok(Some(record)) = uploads.update(record, renewed).await {
            return Renewal::Renewed(record);
        }
        // Not written (the ETag changed: another copy's write, or this renewal's own, its
        // answer lost and the SDK's retry refused), or no answer: the record tells whose it
        // is now.
        match uploads.read(&record.key).await {
            Ok(Some(stored)) if stored.value == *renewed => Renewal::Renewed(Record {
                key: record.key.clone(),
                etag: stored.etag,
            }),
            Ok(Some(stored)) if stored.value == self.manifest => Renewal::Unchanged,
            // Another copy's now, or gone.
            Ok(_) => Renewal::Taken,
            Err(e) => Renewal::Unknown(e),
        }
    }

    /// The error a copy ends with once its hold is lost: retryable, after the taker is done.
    pub fn taken_over(&self, r: &Replicator) -> ReplicationError {
        ReplicationError::UploadTakenOver {
            resource: r.destination.bucket.resource(&self.manifest.dest_key),
            upload_id: self.manifest.upload_id.clone(),
        }
    }
}
