//! Lambda entry point: read the configuration once, build the clients once, serve events.

use event_copier::Handler;
use lambda_runtime::{service_fn, LambdaEvent};
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
    let region = sdk.region().map(|r| r.to_string());
    for config in &configs {
        tracing::info!(rule = %config.rule_id, ?config, "event copier rule ready");
    }
    let fleet = Fleet::new(rules, configs, &sdk).await;
    let function =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "event-copier".into());
    let handler = Handler::for_fleet(fleet, region, function);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        // Stop starting parts this long before the invocation's deadline, so a large copy
        // keeps its upload for the retry instead of being cut off mid-request.
        let deadline = replicator_core::clock::deadline_instant(event.context.deadline)
            .checked_sub(std::time::Duration::from_secs(10));
        let handler = handler.clone().with_deadline(deadline);
        async move { handler.handle(event.payload).await }
    }))
    .await
}
