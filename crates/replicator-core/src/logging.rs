//! Logging set-up and start-up failure, shared by both Lambdas and the CLI: JSON in Lambda
//! (unless the function's log format is Text), plain text elsewhere; a configuration error
//! ends the process with a message naming the variable.

/// Logs as JSON in Lambda (unless the function's log format is set to Text), plain text
/// elsewhere. The level comes from AWS_LAMBDA_LOG_LEVEL or RUST_LOG, INFO by default.
pub fn init_tracing() {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let format = std::env::var("AWS_LAMBDA_LOG_FORMAT").unwrap_or_default();
    let json =
        format.eq_ignore_ascii_case("json") || (in_lambda && !format.eq_ignore_ascii_case("text"));
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    use tracing_subscriber::util::SubscriberInitExt;
    // Also routes the `log` crate's records into tracing.
    subscriber(&level, json, std::io::stderr).init();
}

/// The functions' log subscriber at `level` (an EnvFilter directive), JSON or text, writing
/// to `writer`. Tests use it to read what the functions log.
pub fn subscriber<W>(
    level: &str,
    json: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::{fmt, prelude::*, EnvFilter};
    let filter =
        EnvFilter::try_new(level.to_ascii_lowercase()).unwrap_or_else(|_| EnvFilter::new("info"));
    // The SDK's runtime dumps whole client configurations at TRACE, AssumeRole's input with
    // the ExternalId among them: its events stop at DEBUG, whatever the level asked for.
    let cap = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("aws_smithy_runtime", LevelFilter::DEBUG)
        .with_target("aws_smithy_runtime_api", LevelFilter::DEBUG);
    let layer = fmt::layer().with_target(false).with_writer(writer);
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        let layer = layer.json().with_current_span(true).without_time();
        Box::new(registry.with(layer.with_filter(cap)))
    } else {
        Box::new(registry.with(layer.with_filter(cap)))
    }
}

/// A configuration error ends the cold start, with a message naming the variable (never a
/// panic, never a default for a required value).
pub fn or_exit<T>(config: Result<T, crate::ConfigError>) -> T {
    config.unwrap_or_else(|e| {
        tracing::error!(error = %e, "invalid configuration; the function cannot start");
        eprintln!("invalid configuration: {e}");
        std::process::exit(1)
    })
}
