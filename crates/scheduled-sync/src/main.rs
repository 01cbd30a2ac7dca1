//! Lambda entry point: configuration and clients once, then one sync (or audit) run per
//! invocation.

// The whole run's future nests deeply inside the runtime's: laying out `main`'s future
// exceeds the compiler's default query depth (128) in release builds.
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, LambdaEvent};
use replicator_core::sync::{SyncConfig, Syncer};
use replicator_core::verify::audit::Auditor;
use replicator_core::verify::{Verifier, VerifyConfig};
use replicator_core::{Config, Fleet};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    replicator_core::logging::init_tracing();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // A bad configuration fails the cold start with a message naming the variable (and,
    // for REPLICATION_RULES, the rule); the rules are read from SSM or S3 once, here. One
    // engine per enabled rule, sharing clients per role and one memory budget.
    let lookup = |name: &str| std::env::var(name).ok();
    let (rules, configs) =
        replicator_core::logging::or_exit(Config::per_rule(lookup, Some(&sdk)).await);
    let sync_config = replicator_core::logging::or_exit(SyncConfig::from_env());
    let verify_config = replicator_core::logging::or_exit(VerifyConfig::from_env());
    let region = sdk.region().map(|r| r.to_string());
    let sqs = sync_config
        .queue_url
        .as_ref()
        .map(|_| aws_sdk_sqs::Client::new(&sdk));
    let function =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "scheduled-sync".into());
    for config in &configs {
        tracing::info!(rule = %config.rule_id, ?config, "scheduled sync rule ready");
    }
    tracing::info!(?sync_config, ?verify_config, "scheduled sync ready");
    let fleet = Fleet::new(rules.clone(), configs, &sdk).await;
    let margin = sync_config.time_margin;
    let auditor = Auditor::new(
        Verifier::new(fleet.engines()[0].clone(), verify_config),
        margin,
    );
    // Every pass keeps to the keys its rule takes (a tag filter decides by each key's tags).
    let syncers: Vec<Syncer> = fleet
        .engines()
        .iter()
        .map(|engine| {
            Syncer::new(
                engine.clone(),
                sqs.clone(),
                sync_config.clone(),
                region.clone(),
            )
            .for_rule_of(rules.clone())
        })
        .collect();
    let (syncers, auditor) = (&syncers, &auditor);
    let function = function.as_str();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = scheduled_sync::deadline_instant(event.context.deadline);
        tracing::info!(
            remaining_ms = deadline
                .saturating_duration_since(std::time::Instant::now())
                .as_millis() as u64,
            "sync run starting"
        );
        scheduled_sync::invoke_rules(
            syncers,
            auditor,
            event.payload,
            Some(deadline),
            event.context.request_id.clone(),
            function,
        )
        .await
    }))
    .await
}
