//! A sync run's answer, and the CloudWatch metrics (EMF) it becomes.

use serde::Serialize;
use serde_json::json;

use crate::clock::now_ms;

/// How many keys each list in the response holds at most.
pub const REPORTED_KEYS: usize = 100;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FailedKey {
    pub key: String,
    pub error: String,
}

/// The run's answer.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SyncReport {
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
    pub destination_only: u64,
    pub deleted: u64,
    pub enqueued: u64,
    /// An inventory pass: rows read, and rows selected for work (current versions under
    /// the prefix, in heal mode only those native replication failed or left too long).
    pub inventory_rows: u64,
    pub inventory_selected: u64,
    /// An inventory pass: the manifest it read.
    pub inventory_manifest: Option<String>,
    /// Multipart uploads left by interrupted copies that another copy has since made
    /// useless, aborted after a complete pass.
    pub uploads_aborted: u64,
    /// State objects under the reserved prefix that are not the replicator's (too large, not
    /// its JSON), found by the upload sweep and left alone.
    pub state_unreadable: u64,
    /// False when the run stopped early (time, max_objects, another run's lease) and work
    /// remains for the next run.
    pub complete: bool,
    pub dry_run: bool,
    /// Another run holds the checkpoint's lease; this one did nothing.
    pub busy: bool,
    /// Where this run started, and where the next will.
    pub resumed_after: Option<String>,
    pub checkpoint: Option<String>,
    pub failed_keys: Vec<FailedKey>,
    pub destination_only_keys: Vec<String>,
    /// Dry run: what a real run would copy.
    pub would_copy: Vec<String>,
    pub would_copy_count: u64,
    /// What happened to deletes (SYNC_DELETE): done, refused and why, or off.
    pub delete_phase: String,
    pub duration_ms: u64,
}

impl SyncReport {
    /// The EMF document for this run.
    pub fn emf(&self, function: &str) -> serde_json::Value {
        crate::metrics::emf_document(
            function,
            now_ms(),
            &[
                ("ObjectsCopied", "Count", json!(self.copied)),
                ("ObjectsSkipped", "Count", json!(self.skipped)),
                ("ObjectsFailed", "Count", json!(self.failed)),
                ("BytesCopied", "Bytes", json!(self.bytes)),
                ("DestinationOnly", "Count", json!(self.destination_only)),
                ("ObjectsEnqueued", "Count", json!(self.enqueued)),
                ("InventoryRows", "Count", json!(self.inventory_rows)),
                ("ReplicasDeleted", "Count", json!(self.deleted)),
                ("UploadsAborted", "Count", json!(self.uploads_aborted)),
                ("StateUnreadable", "Count", json!(self.state_unreadable)),
                ("SyncIncomplete", "Count", json!(u64::from(!self.complete))),
                ("PendingFailures", "Count", json!(self.failed_keys.len())),
                ("SyncDuration", "Milliseconds", json!(self.duration_ms)),
            ],
        )
    }

    /// The EMF document for a run that failed as a whole: `SyncFailed`, and
    /// `StateUnreadable` when the checkpoint is not the replicator's.
    pub fn failed_emf(function: &str, error: &crate::ReplicationError) -> serde_json::Value {
        let unreadable = matches!(error, crate::ReplicationError::StateUnreadable { .. });
        crate::metrics::emf_document(
            function,
            now_ms(),
            &[
                ("SyncFailed", "Count", json!(1)),
                ("StateUnreadable", "Count", json!(u64::from(unreadable))),
            ],
        )
    }

    /// Adds `key` to a reported list, up to [`REPORTED_KEYS`].
    pub(crate) fn note(list: &mut Vec<String>, key: &str) {
        if list.len() < REPORTED_KEYS {
            list.push(key.to_owned());
        }
    }
}
