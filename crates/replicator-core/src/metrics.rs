//! CloudWatch Embedded Metric Format: one JSON line per invocation on stdout, which
//! CloudWatch Logs turns into metrics without any API call.

use serde_json::{json, Map, Value};

use crate::outcome::Outcome;

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
}

impl Tally {
    pub fn record(&mut self, outcome: &Outcome, lag_ms: Option<i64>) {
        match outcome {
            Outcome::Copied { bytes, .. } => {
                self.copied += 1;
                self.bytes += bytes;
                if let Some(lag) = lag_ms {
                    self.lag_ms.push(lag.max(0) as f64);
                }
            }
            Outcome::DeleteMarkerCreated { .. } => self.deleted += 1,
            Outcome::Skipped { .. } => self.skipped += 1,
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

    /// The EMF document for these counts.
    pub fn emf(&self, function: &str, timestamp_ms: i64) -> Value {
        let mut metrics = vec![
            ("ObjectsCopied", "Count", json!(self.copied)),
            ("ObjectsSkipped", "Count", json!(self.skipped)),
            ("ObjectsFailed", "Count", json!(self.failed)),
            ("DeleteMarkersReplicated", "Count", json!(self.deleted)),
            ("BytesCopied", "Bytes", json!(self.bytes)),
        ];
        if !self.lag_ms.is_empty() {
            metrics.push(("ReplicationLag", "Milliseconds", json!(self.lag_ms)));
        }
        emf_document(function, timestamp_ms, &metrics)
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
        );
        t.record(
            &Outcome::Skipped {
                reason: SkipReason::UpToDate,
            },
            None,
        );
        let doc = t.emf("fn", 1);
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
