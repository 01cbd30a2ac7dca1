//! CloudWatch Embedded Metric Format: one JSON line per invocation on stdout, which
//! CloudWatch Logs turns into metrics without any API call; and [`METRICS`], the one list of
//! every metric the functions emit, which the template's alarms and dashboard are checked
//! against (a name added here fails those tests until it has its alarm and its widget).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::outcome::{Outcome, SkipReason};

pub const NAMESPACE: &str = "S3FallbackReplicator";

/// The function whose EMF line carries a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emitter {
    /// `event-copier` (`Tally::emf`).
    Copier,
    /// `scheduled-sync` (`SyncReport::emf`).
    Sync,
    /// `scheduled-sync` running an audit (`{"verify": true}`, `AuditReport::emf`).
    Audit,
}

/// What a metric tells an operator, which decides what watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Work done: on the dashboard.
    Progress,
    /// Something failed: an alarm that fires on the first bad period, per emitter.
    Failure,
    /// Work that keeps not finishing: an alarm over a sustained window.
    Stalled,
    /// How late replicas are: an alarm on a threshold, p50/p99 on the dashboard.
    Latency,
}

/// One metric in the namespace, with the `FunctionName` dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub kind: Kind,
    pub emitters: &'static [Emitter],
}

const fn metric(
    name: &'static str,
    unit: &'static str,
    kind: Kind,
    emitters: &'static [Emitter],
) -> Metric {
    Metric {
        name,
        unit,
        kind,
        emitters,
    }
}

use Emitter::{Audit, Copier, Sync};

pub const OBJECTS_COPIED: Metric =
    metric("ObjectsCopied", "Count", Kind::Progress, &[Copier, Sync]);
pub const OBJECTS_SKIPPED: Metric =
    metric("ObjectsSkipped", "Count", Kind::Progress, &[Copier, Sync]);
pub const OBJECTS_FAILED: Metric = metric("ObjectsFailed", "Count", Kind::Failure, &[Copier, Sync]);
pub const DELETE_MARKERS_REPLICATED: Metric = metric(
    "DeleteMarkersReplicated",
    "Count",
    Kind::Progress,
    &[Copier],
);
pub const BYTES_COPIED: Metric = metric("BytesCopied", "Bytes", Kind::Progress, &[Copier, Sync]);
/// Event time → replica written, one value per replica (only when something was copied).
pub const REPLICATION_LAG: Metric =
    metric("ReplicationLag", "Milliseconds", Kind::Latency, &[Copier]);
pub const DESTINATION_ONLY: Metric = metric("DestinationOnly", "Count", Kind::Progress, &[Sync]);
pub const OBJECTS_ENQUEUED: Metric = metric("ObjectsEnqueued", "Count", Kind::Progress, &[Sync]);
pub const REPLICAS_DELETED: Metric = metric("ReplicasDeleted", "Count", Kind::Progress, &[Sync]);
pub const UPLOADS_ABORTED: Metric = metric("UploadsAborted", "Count", Kind::Progress, &[Sync]);
/// 1 when a run stopped early and work remains.
pub const SYNC_INCOMPLETE: Metric = metric("SyncIncomplete", "Count", Kind::Stalled, &[Sync]);
/// Failed keys carried in the checkpoint for the next run.
pub const PENDING_FAILURES: Metric = metric("PendingFailures", "Count", Kind::Failure, &[Sync]);
pub const SYNC_DURATION: Metric = metric("SyncDuration", "Milliseconds", Kind::Progress, &[Sync]);
/// A state object (checkpoint, upload record) was malformed or too large: the sync refused
/// it rather than reset it. Emitted where the state store reports it, not by
/// `SyncReport::emf`.
pub const STATE_UNREADABLE: Metric = metric("StateUnreadable", "Count", Kind::Failure, &[Sync]);

/// A sync run failed as a whole (`SyncReport::failed_emf`).
pub const SYNC_FAILED: Metric = metric("SyncFailed", "Count", Kind::Failure, &[Sync]);
/// Replicas whose tags followed a tag change of their source version (no data rewritten).
pub const TAGS_REPLICATED: Metric = metric("TagsReplicated", "Count", Kind::Progress, &[Copier]);
/// Replicas whose Object Lock followed a later change of their source version's (a
/// retention extended, a legal hold put on or taken off; no data rewritten).
pub const LOCKS_REPLICATED: Metric = metric("LocksReplicated", "Count", Kind::Progress, &[Copier]);
/// Archived source versions whose restore was requested (RESTORE_ARCHIVED): copied when
/// the restore completes.
pub const RESTORES_REQUESTED: Metric =
    metric("RestoresRequested", "Count", Kind::Progress, &[Copier]);
/// Source objects a sync found archived (not restored) and could not copy.
pub const OBJECTS_ARCHIVED: Metric = metric("ObjectsArchived", "Count", Kind::Progress, &[Sync]);
/// Rows an inventory reconcile read.
pub const INVENTORY_ROWS: Metric = metric("InventoryRows", "Count", Kind::Progress, &[Sync]);
/// Versions native replication failed (or replicated late) that the copier copied; also
/// emitted with a `FailureReason` dimension, one document per reason.
pub const NATIVE_FAILURES_HEALED: Metric =
    metric("NativeFailuresHealed", "Count", Kind::Progress, &[Copier]);
/// Native replication events that ask for nothing (replicated after the threshold, not
/// tracked), acknowledged.
pub const NATIVE_EVENTS_ACKNOWLEDGED: Metric = metric(
    "NativeEventsAcknowledged",
    "Count",
    Kind::Progress,
    &[Copier],
);
pub const OBJECTS_VERIFIED: Metric = metric("ObjectsVerified", "Count", Kind::Progress, &[Audit]);
/// Source objects whose replica an audit did not prove good.
pub const VERIFY_PROBLEMS: Metric = metric("VerifyProblems", "Count", Kind::Failure, &[Audit]);
pub const VERIFY_REPAIRED: Metric = metric("VerifyRepaired", "Count", Kind::Progress, &[Audit]);
/// 1 when an audit run stopped early and its pass goes on next run.
pub const AUDIT_INCOMPLETE: Metric = metric("AuditIncomplete", "Count", Kind::Stalled, &[Audit]);
pub const AUDIT_DURATION: Metric =
    metric("AuditDuration", "Milliseconds", Kind::Progress, &[Audit]);
/// An audit's count of one verification class (`verify::Class::metric`); their sum over
/// the problem classes is `VerifyProblems`, which is alarmed.
pub const fn verify_class(name: &'static str) -> Metric {
    metric(name, "Count", Kind::Progress, &[Audit])
}
pub const VERIFY_OK: Metric = verify_class("VerifyOk");
pub const VERIFY_MISSING: Metric = verify_class("VerifyMissing");
pub const VERIFY_STALE: Metric = verify_class("VerifyStale");
pub const VERIFY_CORRUPT: Metric = verify_class("VerifyCorrupt");
pub const VERIFY_WRONG_KEY: Metric = verify_class("VerifyWrongKey");
pub const VERIFY_LOCK_DRIFT: Metric = verify_class("VerifyLockDrift");
pub const VERIFY_METADATA_DRIFT: Metric = verify_class("VerifyMetadataDrift");
pub const VERIFY_TAG_DRIFT: Metric = verify_class("VerifyTagDrift");
pub const VERIFY_UNVERIFIABLE: Metric = verify_class("VerifyUnverifiable");
pub const VERIFY_EXTRA: Metric = verify_class("VerifyExtra");
pub const VERIFY_FOREIGN: Metric = verify_class("VerifyForeign");

/// Every metric the functions emit.
pub const METRICS: &[Metric] = &[
    OBJECTS_COPIED,
    OBJECTS_SKIPPED,
    OBJECTS_FAILED,
    DELETE_MARKERS_REPLICATED,
    BYTES_COPIED,
    REPLICATION_LAG,
    DESTINATION_ONLY,
    OBJECTS_ENQUEUED,
    REPLICAS_DELETED,
    UPLOADS_ABORTED,
    SYNC_INCOMPLETE,
    PENDING_FAILURES,
    SYNC_DURATION,
    STATE_UNREADABLE,
    SYNC_FAILED,
    INVENTORY_ROWS,
    OBJECTS_ARCHIVED,
    TAGS_REPLICATED,
    LOCKS_REPLICATED,
    RESTORES_REQUESTED,
    NATIVE_FAILURES_HEALED,
    NATIVE_EVENTS_ACKNOWLEDGED,
    OBJECTS_VERIFIED,
    VERIFY_PROBLEMS,
    VERIFY_REPAIRED,
    AUDIT_INCOMPLETE,
    AUDIT_DURATION,
    VERIFY_OK,
    VERIFY_MISSING,
    VERIFY_STALE,
    VERIFY_CORRUPT,
    VERIFY_WRONG_KEY,
    VERIFY_LOCK_DRIFT,
    VERIFY_METADATA_DRIFT,
    VERIFY_TAG_DRIFT,
    VERIFY_UNVERIFIABLE,
    VERIFY_EXTRA,
    VERIFY_FOREIGN,
];

/// Counts for one invocation.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    pub copied: u64,
    pub skipped: u64,
    pub deleted: u64,
    pub failed: u64,
    pub bytes: u64,
    /// Replicas whose tags followed a tag change of their source version.
    pub tags: u64,
    /// Replicas whose Object Lock followed a later change of their source version's.
    pub locks: u64,
    /// Archived sources whose restore was requested.
    pub restores: u64,
    /// Event time → replica written, in milliseconds, one value per replica.
    pub lag_ms: Vec<f64>,
    /// Versions native replication failed (or replicated late) copied, by failure reason.
    pub native_healed: BTreeMap<String, u64>,
    /// Native replication events that asked nothing (replicated after the threshold, not
    /// tracked), acknowledged.
    pub native_acknowledged: u64,
    /// With several destinations: the failures (counted in `failed` too) by destination
    /// bucket.
    pub failed_by_destination: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one object's outcome; `native_failure` is the reason native replication gave
    /// when the object came from its failure event.
    pub fn record(&mut self, outcome: &Outcome, lag_ms: Option<i64>, native_failure: Option<&str>) {
        match outcome {
            Outcome::Copied { bytes, .. } => {
                self.copied += 1;
                self.bytes += bytes;
                if let Some(lag) = lag_ms {
                    self.lag_ms.push(lag.max(0) as f64);
                }
                if let Some(reason) = native_failure {
                    *self.native_healed.entry(reason.to_owned()).or_default() += 1;
                }
            }
            Outcome::DeleteMarkerCreated { .. } => self.deleted += 1,
            Outcome::TagsReplicated { .. } => self.tags += 1,
            Outcome::LockReplicated { .. } => self.locks += 1,
            Outcome::RestoreRequested { .. } => self.restores += 1,
            Outcome::Skipped { reason } => {
                self.skipped += 1;
                if *reason == SkipReason::NativeReplicationInformational {
                    self.native_acknowledged += 1;
                }
            }
        }
    }

    pub fn summary(&self) -> Value {
        json!({
            "copied": self.copied,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "failed": self.failed,
            "bytes": self.bytes,
            "tags": self.tags,
            "locks": self.locks,
            "restores": self.restores,
        })
    }

    /// The EMF documents for these counts: one with every count, one per native failure
    /// reason healed (`NativeFailuresHealed` with the `FailureReason` dimension too), and
    /// with several destinations one per destination that failed (`ObjectsFailed` with the
    /// `Destination` dimension too).
    pub fn emf(&self, function: &str, timestamp_ms: i64) -> Vec<Value> {
        let healed: u64 = self.native_healed.values().sum();
        let mut metrics = vec![
            (OBJECTS_COPIED, json!(self.copied)),
            (OBJECTS_SKIPPED, json!(self.skipped)),
            (OBJECTS_FAILED, json!(self.failed)),
            (DELETE_MARKERS_REPLICATED, json!(self.deleted)),
            (BYTES_COPIED, json!(self.bytes)),
            (TAGS_REPLICATED, json!(self.tags)),
            (LOCKS_REPLICATED, json!(self.locks)),
            (RESTORES_REQUESTED, json!(self.restores)),
            (NATIVE_FAILURES_HEALED, json!(healed)),
            (NATIVE_EVENTS_ACKNOWLEDGED, json!(self.native_acknowledged)),
        ];
        if !self.lag_ms.is_empty() {
            metrics.push((REPLICATION_LAG, json!(self.lag_ms)));
        }
        let mut documents = vec![emf_document(function, timestamp_ms, &metrics)];
        for (reason, n) in &self.native_healed {
            let mut doc = emf_document(
                function,
                timestamp_ms,
                &[(NATIVE_FAILURES_HEALED, json!(n))],
            );
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
                json!([["FunctionName", "FailureReason"]]);
            doc["FailureReason"] = json!(reason);
            documents.push(doc);
        }
        for (bucket, n) in &self.failed_by_destination {
            let mut doc = emf_document(function, timestamp_ms, &[(OBJECTS_FAILED, json!(n))]);
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
                json!([["FunctionName", "Destination"]]);
            doc["Destination"] = json!(bucket);
            documents.push(doc);
        }
        documents
    }
}

/// Builds an EMF document with one dimension, `FunctionName`, from metrics of [`METRICS`].
pub fn emf_document(function: &str, timestamp_ms: i64, metrics: &[(Metric, Value)]) -> Value {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": metrics.iter().map(|(m, _)| json!({"Name": m.name, "Unit": m.unit})).collect::<Vec<_>>(),
            }]
        }),
    );
    root.insert("FunctionName".into(), json!(function));
    for (m, value) in metrics {
        root.insert(m.name.into(), value.clone());
    }
    Value::Object(root)
}

/// Writes one EMF line to stdout, where Lambda sends it to CloudWatch Logs.
pub fn emit(document: &Value) {
    println!("{document}");
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::outcome::{Method, SkipReason};

    #[test]
    fn emf_declares_every_metric_it_carries() {
        let mut t = Tally::default();
        t.record(
            &Outcome::Copied {
                bytes: 10,
                method: Method::SinglePut,
                replica_version_id: None,
                parts_resumed: 0,
            },
            Some(250),
            Some("AssumeRoleNotPermitted"),
        );
        t.record(
            &Outcome::Skipped {
                reason: SkipReason::UpToDate,
            },
            None,
            None,
        );
        let docs = t.emf("fn", 1);
        let doc = &docs[0];
        assert_eq!(docs.len(), 2, "one document per failure reason healed");
        assert_eq!(docs[1]["FailureReason"], "AssumeRoleNotPermitted");
        assert_eq!(docs[1]["NativeFailuresHealed"], 1);
        let declared: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in &declared {
            assert!(doc.get(*name).is_some(), "{name} declared but missing");
        }
        assert_eq!(doc["ObjectsCopied"], 1);
        assert_eq!(doc["BytesCopied"], 10);
        assert_eq!(doc["ReplicationLag"], json!([250.0]));
        assert_eq!(doc["FunctionName"], "fn");
    }

    /// The names and units an EMF document declares.
    pub(crate) fn declared(doc: &Value) -> Vec<(String, String)> {
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["Name"].as_str().unwrap().into(),
                    m["Unit"].as_str().unwrap().into(),
                )
            })
            .collect()
    }

    /// What `METRICS` says `emitter` emits, as `declared` shows it.
    pub(crate) fn listed_for(emitter: Emitter) -> Vec<(String, String)> {
        METRICS
            .iter()
            .filter(|m| m.emitters.contains(&emitter))
            .map(|m| (m.name.into(), m.unit.into()))
            .collect()
    }

    #[test]
    fn the_copier_emits_exactly_its_listed_metrics() {
        let mut t = Tally::default();
        t.lag_ms.push(1.0);
        let mut emitted = declared(&t.emf("fn", 1)[0]);
        let mut listed = listed_for(Emitter::Copier);
        emitted.sort();
        listed.sort();
        assert_eq!(emitted, listed);
    }

    #[test]
    fn metric_names_are_unique() {
        let mut names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
    }

    #[test]
    fn failures_of_several_destinations_are_also_counted_per_destination() {
        let mut t = Tally {
            failed: 3,
            ..Default::default()
        };
        t.failed_by_destination.insert("replica-a".into(), 1);
        t.failed_by_destination.insert("replica-b".into(), 2);
        let docs = t.emf("fn", 1);
        assert_eq!(
            docs[0]["ObjectsFailed"], 3,
            "the total, as with one destination"
        );
        let per: Vec<(&str, &Value)> = docs[1..]
            .iter()
            .map(|d| (d["Destination"].as_str().unwrap(), &d["ObjectsFailed"]))
            .collect();
        assert_eq!(per, [("replica-a", &json!(1)), ("replica-b", &json!(2))]);
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName", "Destination"]])
        );
    }
}
