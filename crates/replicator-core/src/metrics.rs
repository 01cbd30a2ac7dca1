//! CloudWatch Embedded Metric Format: one JSON line per invocation on stdout, which
//! CloudWatch Logs turns into metrics without any API call.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::outcome::{Outcome, SkipReason};

pub const NAMESPACE: &str = "S3FallbackReplicator";

/// Counts for one invocation.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    pub copied: u64,
    pub skipped: u64,
    pub deleted: u64,
    pub failed: u64,
    pub bytes: u64,
    /// Event time → replica written, in milliseconds, one value per replica.
    pub lag_ms: Vec<f64>,
    /// Versions native replication failed (or replicated late) copied, by failure reason.
    pub native_healed: BTreeMap<String, u64>,
    /// Native replication events that asked nothing (replicated after the threshold, not
    /// tracked), acknowledged.
    pub native_acknowledged: u64,
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
        })
    }

    /// The EMF documents for these counts: one with every count, and one per native failure
    /// reason healed (`NativeFailuresHealed` with the `FailureReason` dimension too).
    pub fn emf(&self, function: &str, timestamp_ms: i64) -> Vec<Value> {
        let healed: u64 = self.native_healed.values().sum();
        let mut metrics = vec![
            ("ObjectsCopied", "Count", json!(self.copied)),
            ("ObjectsSkipped", "Count", json!(self.skipped)),
            ("ObjectsFailed", "Count", json!(self.failed)),
            ("DeleteMarkersReplicated", "Count", json!(self.deleted)),
            ("BytesCopied", "Bytes", json!(self.bytes)),
            ("NativeFailuresHealed", "Count", json!(healed)),
            (
                "NativeEventsAcknowledged",
                "Count",
                json!(self.native_acknowledged),
            ),
        ];
        if !self.lag_ms.is_empty() {
            metrics.push(("ReplicationLag", "Milliseconds", json!(self.lag_ms)));
        }
        let mut documents = vec![emf_document(function, timestamp_ms, &metrics)];
        for (reason, n) in &self.native_healed {
            let mut doc = emf_document(
                function,
                timestamp_ms,
                &[("NativeFailuresHealed", "Count", json!(n))],
            );
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
                json!([["FunctionName", "FailureReason"]]);
            doc["FailureReason"] = json!(reason);
            documents.push(doc);
        }
        documents
    }
}

/// Builds an EMF document with one dimension, `FunctionName`.
pub fn emf_document(function: &str, timestamp_ms: i64, metrics: &[(&str, &str, Value)]) -> Value {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }]
        }),
    );
    root.insert("FunctionName".into(), json!(function));
    for (name, _, value) in metrics {
        root.insert((*name).into(), value.clone());
    }
    Value::Object(root)
}

/// Writes one EMF line to stdout, where Lambda sends it to CloudWatch Logs.
pub fn emit(document: &Value) {
    println!("{document}");
}

#[cfg(test)]
mod tests {
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
}
