//! The scheduled sync Lambda: glue between an EventBridge schedule and
//! [`replicator_core::sync::Syncer`].
//!
//! Input: the EventBridge `Scheduled Event`, or a rule's constant input. Either may carry
//! per-run overrides — `{"prefix": "logs/", "dry_run": true, "max_objects": 1000}`, and
//! `{"inventory_manifest": "s3://…/manifest.json", "destination_inventory_manifest": …}` for
//! a pass from S3 Inventory — at the top level (constant input) or in `detail`. Unknown fields are refused, so a typo such as
//! `dryrun` cannot silently turn a dry run into a real one.
//!
//! `{"verify": true}` (optionally `"deep"`, `"repair"`, `"prefix"`) runs the scheduled audit
//! instead ([`replicator_core::verify::audit::Auditor`]): a verification pass, resumable
//! like a sync pass, with evidence and one EMF metric per class.

use std::time::Instant;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use replicator_core::metrics;
use replicator_core::sync::{InventoryRequest, SyncReport, SyncRequest, Syncer};
use replicator_core::verify::audit::{AuditRequest, Auditor};
use replicator_core::verify::Options;
use replicator_core::ReplicationError;
use serde::Deserialize;
use serde_json::{json, Value};

/// Per-run overrides.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub prefix: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    pub max_objects: Option<u64>,
    pub inventory_manifest: Option<String>,
    pub destination_inventory_manifest: Option<String>,
    /// Run the audit (a verification pass) instead of a sync.
    #[serde(default)]
    pub verify: bool,
    /// Audit: read and hash both objects (and compare tags).
    #[serde(default)]
    pub deep: bool,
    /// Audit: copy missing, stale, corrupt and wrong-key objects again.
    #[serde(default)]
    pub repair: bool,
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

    /// Fields that belong to one kind of run only are refused on the other.
    fn validate(self) -> Result<Self, SyncFailed> {
        let sync_only = self.dry_run
            || self.max_objects.is_some()
            || self.inventory_manifest.is_some()
            || self.destination_inventory_manifest.is_some();
        if self.verify && sync_only {
            return Err(SyncFailed::Input(
                "dry_run, max_objects and the inventory manifests are sync settings; a verify run takes prefix, deep and repair".into(),
            ));
        }
        if !self.verify && (self.deep || self.repair) {
            return Err(SyncFailed::Input(
                "deep and repair go with \"verify\": true".into(),
            ));
        }
        Ok(self)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncFailed {
    #[error("invalid sync input: {0}")]
    Input(String),
    #[error(transparent)]
    Run(#[from] ReplicationError),
    /// One rule's run of several failed (the others ran): the first failure, named.
    #[error("rule {rule:?} (to s3://{destination}), {failed} of {rules} rules failed: {error}")]
    Rule {
        rule: String,
        destination: String,
        failed: usize,
        rules: usize,
        error: Box<SyncFailed>,
    },
}

impl From<SyncFailed> for lambda_runtime::Diagnostic {
    fn from(e: SyncFailed) -> Self {
        let mut inner = &e;
        while let SyncFailed::Rule { error, .. } = inner {
            inner = error;
        }
        let error_type = match inner {
            SyncFailed::Input(_) => "SyncInputInvalid",
            SyncFailed::Run(r) if r.is_retryable() => "SyncFailed.Retryable",
            SyncFailed::Run(_) | SyncFailed::Rule { .. } => "SyncFailed.Permanent",
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
        Value::Null => Overrides::default(),
        v => serde_json::from_value::<Overrides>(v).map_err(|e| {
            SyncFailed::Input(format!(
                "{e}; accepted fields are prefix (string), dry_run (bool), max_objects (number), inventory_manifest, destination_inventory_manifest (string), verify, deep, repair (bool)"
            ))
        })?,
    }
    .validate()
}

pub use replicator_core::clock::deadline_instant;

/// Handles one invocation — a sync run, or with `"verify": true` an audit run — and emits
/// its metrics; the answer is the run's report.
pub async fn invoke(
    syncer: &Syncer,
    auditor: &Auditor,
    payload: Value,
    deadline: Option<Instant>,
    run_id: String,
    function: &str,
) -> Result<Value, SyncFailed> {
    let overrides = parse_input(payload.clone())?;
    if !overrides.verify {
        let report = handle(syncer, payload, deadline, run_id, function).await?;
        return Ok(serde_json::to_value(report).expect("report serialises"));
    }
    let report = auditor
        .run(AuditRequest {
            prefix: overrides.prefix,
            options: Options {
                deep: overrides.deep,
                tags: overrides.deep,
                repair: overrides.repair,
            },
            deadline,
            run_id,
        })
        .await?;
    metrics::emit(&report.emf(function));
    Ok(serde_json::to_value(report).expect("report serialises"))
}

/// Handles one invocation for a deployment of one or several rules: with one, as
/// [`invoke`]; with several, each rule's sync in turn. An audit verifies every key under one
/// rule's prefix, so it is refused for several rules or a tag-filtered one. Each rule gets
/// an equal share of the time left when its turn comes (less the one margin every pass
/// keeps), each run starts with another rule, and a run's `prefix` narrows every rule to it
/// (a rule outside it is skipped). The answer names each rule's report.
pub async fn invoke_rules(
    syncers: &[Syncer],
    auditor: &Auditor,
    payload: Value,
    deadline: Option<Instant>,
    run_id: String,
    function: &str,
) -> Result<Value, SyncFailed> {
    let [first, ..] = syncers else {
        return Err(SyncFailed::Input("no rule to sync".into()));
    };
    let overrides = parse_input(payload.clone())?;
    let rule = &first.replicator().config().rules;
    let tags = rule
        .rules()
        .iter()
        .any(|r| r.enabled && !r.filter.tags.is_empty());
    if overrides.verify && (syncers.len() > 1 || tags) {
        return Err(SyncFailed::Input(format!(
            "the audit verifies every key under one rule's prefix, and REPLICATION_RULES has {} enabled rule(s){}: run `replicator verify` per destination",
            syncers.len(),
            if tags { " filtering on tags" } else { "" }
        )));
    }
    if syncers.len() == 1 {
        return invoke(first, auditor, payload, deadline, run_id, function).await;
    }
    let mut answers = Vec::with_capacity(syncers.len());
    let mut failures = Vec::new();
    // Each run starts with another rule (by its run id), so a budget too short for all never
    // starves the same ones.
    let start = run_id
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
        % syncers.len();
    let order = (start..syncers.len()).chain(0..start);
    for (turn, i) in order.enumerate() {
        let syncer = &syncers[i];
        let config = syncer.replicator().config();
        let (rule, destination) = (&config.rule_id, &config.destination.bucket);
        // The run's prefix, narrowed to the rule's; a rule outside it has nothing to do.
        let mut rule_overrides = overrides.clone();
        let own = &config.source.key_prefix;
        match &overrides.prefix {
            Some(p) if p.starts_with(own.as_str()) => {}
            Some(p) if own.starts_with(p.as_str()) => rule_overrides.prefix = Some(own.clone()),
            Some(_) => {
                answers.push(json!({"rule": rule, "destination": destination,
                    "report": null, "skipped": "its prefix is outside the run's"}));
                continue;
            }
            None => {}
        }
        // An equal share of what is left after the one margin every pass keeps.
        let share = deadline.map(|d| {
            let now = Instant::now();
            let margin = syncer.time_margin();
            let left = d.saturating_duration_since(now).saturating_sub(margin);
            now + margin + left / (syncers.len() - turn) as u32
        });
        match run_sync(syncer, rule_overrides, share, run_id.clone(), function).await {
            Ok(report) => {
                answers.push(json!({"rule": rule, "destination": destination, "report": report}))
            }
            Err(e) => {
                tracing::error!(rule = %rule, destination = %destination, error = %e, "the rule's sync failed");
                answers.push(
                    json!({"rule": rule, "destination": destination, "error": e.to_string()}),
                );
                failures.push((rule.clone(), destination.clone(), e));
            }
        }
    }
    let failed = failures.len();
    match failures.into_iter().next() {
        None => Ok(json!({ "rules": answers })),
        Some((rule, destination, error)) => Err(SyncFailed::Rule {
            rule,
            destination,
            failed,
            rules: syncers.len(),
            error: Box::new(error),
        }),
    }
}

/// Handles one sync invocation and emits its metrics.
pub async fn handle(
    syncer: &Syncer,
    payload: Value,
    deadline: Option<Instant>,
    run_id: String,
    function: &str,
) -> Result<SyncReport, SyncFailed> {
    run_sync(syncer, parse_input(payload)?, deadline, run_id, function).await
}

/// One sync run with `overrides`, and its metrics.
async fn run_sync(
    syncer: &Syncer,
    mut overrides: Overrides,
    deadline: Option<Instant>,
    run_id: String,
    function: &str,
) -> Result<SyncReport, SyncFailed> {
    if overrides.verify {
        return Err(SyncFailed::Input(
            "a verify run goes through invoke, with an auditor".into(),
        ));
    }
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
        let v = parse_input(json!({"verify": true, "deep": true, "prefix": "a/"})).unwrap();
        assert!(v.verify && v.deep && !v.repair);
        assert!(parse_input(json!({"deep": true})).is_err());
        assert!(parse_input(json!({"verify": true, "dry_run": true})).is_err());
        assert!(parse_input(json!({"verify": "yes"})).is_err());
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
