//! Lambda entry point: read the configuration once, build the clients once, serve events.

use event_copier::Handler;
use lambda_runtime::{service_fn, LambdaEvent};
use replicator_core::{Clients, Config, Replicator};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    replicator_core::logging::init_tracing();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // A bad configuration fails the cold start with a message naming the variable (and,
    // for REPLICATION_RULES, the rule); the rules are read from SSM or S3 once, here.
    let config = replicator_core::logging::or_exit(Config::load_from_env(&sdk).await);
    let region = sdk.region().map(|r| r.to_string());
    let clients = Clients::new(&sdk, &config).await;
    let function =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "event-copier".into());
    tracing::info!(?config, "event copier ready");
    let handler = Handler::new(Replicator::new(config, clients), region, function);
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
