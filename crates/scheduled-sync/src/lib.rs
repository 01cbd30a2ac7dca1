//! The scheduled sync Lambda: glue between an EventBridge schedule and
//! [`replicator_core::sync::Syncer`].
//!
//! Input: the EventBridge `Scheduled Event`, or a rule's constant input. Either may carry
//! per-run overrides — `{"prefix": "logs/", "dry_run": true, "max_objects": 1000}`, and
//! `{"inventory_manifest": "s3://…/manifest.json", "destination_inventory_manifest": …}` for
//! a pass from S3 Inventory — at the top level (constant input) or in `detail`. Unknown fields are refused, so a typo such as
//! `dryrun` cannot silently turn a dry run into a real one.

use std::time::Instant;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use replicator_core::metrics;
use replicator_core::sync::{InventoryRequest, SyncReport, SyncRequest, Syncer};
use replicator_core::ReplicationError;
use serde::Deserialize;
use serde_json::Value;

/// Per-run overrides.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub prefix: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    pub max_objects: Option<u64>,
    pub inventory_manifest: Option<String>,
    pub destination_inventory_manifest: Option<String>,
}

impl Overrides {
    /// The inventories this run reads, if its input names them.
    fn inventory(&mut self) -> Result<Option<InventoryRequest>, SyncFailed> {
        for url in [
            &self.inventory_manifest,
            &self.destination_inventory_manifest,
        ]
        .into_iter()
        .flatten()
        {
            if !InventoryRequest::valid_url(url) {
                return Err(SyncFailed::Input(format!(
                    "inventory manifest {url:?} is not {}",
                    InventoryRequest::EXPECTED
                )));
            }
        }
        match (
            self.inventory_manifest.take(),
            self.destination_inventory_manifest.take(),
        ) {
            (Some(manifest), destination_manifest) => Ok(Some(InventoryRequest {
                manifest,
                destination_manifest,
            })),
            (None, Some(_)) => Err(SyncFailed::Input(
                "destination_inventory_manifest is given only with inventory_manifest".into(),
            )),
            (None, None) => Ok(None),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncFailed {
    #[error("invalid sync input: {0}")]
    Input(String),
    #[error(transparent)]
    Run(#[from] ReplicationError),
}

impl From<SyncFailed> for lambda_runtime::Diagnostic {
    fn from(e: SyncFailed) -> Self {
        let error_type = match &e {
            SyncFailed::Input(_) => "SyncInputInvalid",
            SyncFailed::Run(r) if r.is_retryable() => "SyncFailed.Retryable",
            SyncFailed::Run(_) => "SyncFailed.Permanent",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Reads the overrides from a scheduled event or a constant input.
pub fn parse_input(payload: Value) -> Result<Overrides, SyncFailed> {
    let overrides = if payload.get("detail-type").is_some() {
        let event: CloudWatchEvent<Value> = serde_json::from_value(payload)
            .map_err(|e| SyncFailed::Input(format!("scheduled event: {e}")))?;
        match event.detail {
            Some(Value::Object(m)) if !m.is_empty() => Value::Object(m),
            _ => return Ok(Overrides::default()),
        }
    } else {
        payload
    };
    match overrides {
        Value::Null => Ok(Overrides::default()),
        v => serde_json::from_value(v).map_err(|e| {
            SyncFailed::Input(format!(
                "{e}; accepted fields are prefix (string), dry_run (bool), max_objects (number), inventory_manifest (string), destination_inventory_manifest (string)"
            ))
        }),
    }
}

pub use replicator_core::clock::deadline_instant;

/// Handles one invocation and emits its metrics.
pub async fn handle(
    syncer: &Syncer,
    payload: Value,
    deadline: Option<Instant>,
    run_id: String,
    function: &str,
) -> Result<SyncReport, SyncFailed> {
    let mut overrides = parse_input(payload)?;
    let inventory = overrides.inventory()?;
    let report = syncer
        .run(SyncRequest {
            prefix: overrides.prefix,
            dry_run: overrides.dry_run,
            max_objects: overrides.max_objects,
            deadline,
            run_id,
            inventory,
        })
        .await
        .inspect_err(|e| metrics::emit(&SyncReport::failed_emf(function, e)))?;
    metrics::emit(&report.emf(function));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scheduled_events_and_constant_inputs() {
        let scheduled = json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-01T00:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/sync"], "detail": {}
        });
        assert_eq!(
            parse_input(scheduled.clone()).unwrap(),
            Overrides::default()
        );
        let mut with_detail = scheduled;
        with_detail["detail"] = json!({"prefix": "logs/", "dry_run": true});
        let o = parse_input(with_detail).unwrap();
        assert_eq!((o.prefix.as_deref(), o.dry_run), (Some("logs/"), true));
        let o = parse_input(json!({"max_objects": 10})).unwrap();
        assert_eq!(o.max_objects, Some(10));
        assert!(parse_input(json!({"dryrun": true})).is_err());
        assert!(parse_input(json!({"dry_run": "yes"})).is_err());
        assert_eq!(parse_input(Value::Null).unwrap(), Overrides::default());
    }

    #[test]
    fn inventory_inputs_are_checked() {
        let mut o = parse_input(json!({"inventory_manifest": "s3://inv/src/daily/"})).unwrap();
        let i = o.inventory().unwrap().unwrap();
        assert_eq!(
            (i.manifest.as_str(), i.destination_manifest),
            ("s3://inv/src/daily/", None)
        );
        for bad in [
            json!({"inventory_manifest": "inv/manifest.json"}),
            json!({"destination_inventory_manifest": "s3://inv/dst/"}),
            json!({"inventory_manifest": "s3://inv/src/", "destination_inventory_manifest": "s3://inv/x.csv"}),
        ] {
            let mut o = parse_input(bad.clone()).unwrap();
            assert!(matches!(o.inventory(), Err(SyncFailed::Input(_))), "{bad}");
        }
    }
}
