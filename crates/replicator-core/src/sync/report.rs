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
    /// Source objects in an archive (not restored): no replica written, not retried by the
    /// next run; the first REPORTED_KEYS of them, with why.
    pub archived: u64,
    pub archived_keys: Vec<FailedKey>,
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
        use crate::metrics::*;
        emf_document(
            function,
            now_ms(),
            &[
                (OBJECTS_COPIED, json!(self.copied)),
                (OBJECTS_SKIPPED, json!(self.skipped)),
                (OBJECTS_FAILED, json!(self.failed)),
                (BYTES_COPIED, json!(self.bytes)),
                (DESTINATION_ONLY, json!(self.destination_only)),
                (OBJECTS_ENQUEUED, json!(self.enqueued)),
                (INVENTORY_ROWS, json!(self.inventory_rows)),
                (OBJECTS_ARCHIVED, json!(self.archived)),
                (REPLICAS_DELETED, json!(self.deleted)),
                (UPLOADS_ABORTED, json!(self.uploads_aborted)),
                (STATE_UNREADABLE, json!(self.state_unreadable)),
                (SYNC_INCOMPLETE, json!(u64::from(!self.complete))),
                (PENDING_FAILURES, json!(self.failed_keys.len())),
                (SYNC_DURATION, json!(self.duration_ms)),
            ],
        )
    }

    /// The EMF document for a run that failed as a whole: `SyncFailed`, and
    /// `StateUnreadable` when the checkpoint is not the replicator's.
    pub fn failed_emf(function: &str, error: &crate::ReplicationError) -> serde_json::Value {
        use crate::metrics::{emf_document, STATE_UNREADABLE, SYNC_FAILED};
        let unreadable = matches!(error, crate::ReplicationError::StateUnreadable { .. });
        emf_document(
            function,
            now_ms(),
            &[
                (SYNC_FAILED, json!(1)),
                (STATE_UNREADABLE, json!(u64::from(unreadable))),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{declared, listed_for};
    use crate::metrics::{Emitter, SYNC_FAILED};

    #[test]
    fn the_sync_report_emits_exactly_its_listed_metrics() {
        let mut emitted = declared(&SyncReport::default().emf("fn"));
        // Emitted by a run that failed as a whole, not by a run's report.
        let mut listed: Vec<_> = listed_for(Emitter::Sync)
            .into_iter()
            .filter(|(name, _)| name != SYNC_FAILED.name)
            .collect();
        emitted.sort();
        listed.sort();
        assert_eq!(emitted, listed);
    }

    #[test]
    fn a_failed_run_emits_only_listed_sync_metrics() {
        let error = crate::ReplicationError::StateUnreadable {
            resource: "s3://b/k".into(),
            reason: "malformed".into(),
        };
        let doc = SyncReport::failed_emf("fn", &error);
        let listed = listed_for(Emitter::Sync);
        for metric in declared(&doc) {
            assert!(
                listed.contains(&metric),
                "{metric:?} not listed for the sync"
            );
        }
        assert_eq!(doc["SyncFailed"], 1);
        assert_eq!(doc["StateUnreadable"], 1);
    }
}
