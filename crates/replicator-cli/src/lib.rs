//! `replicator`: the command line over the same engine and configuration as the Lambdas.
//!
//! ```text
//! replicator doctor [--json]            diagnose a setup, with the fix for each failure
//! replicator policies [--json]          every policy both accounts need
//! replicator copy KEY... | --keys-file F one-off copies, exactly as the event copier does them
//! replicator sync [--dry-run]           a full sync, exactly as the scheduled sync does it
//! replicator verify [--deep] [--repair]  prove the replicas match, with an HTML report
//! replicator rules import|check          native replication configuration → REPLICATION_RULES
//! ```
//!
//! Every variable of the runtime contract is also a flag (`SOURCE_BUCKET` is
//! `--source-bucket`); a flag wins over the environment. Exit codes: 0 all good, 1 a check or
//! an object failed, 2 usage or configuration error.

pub mod doctor;
pub mod policies;
pub mod rules;
pub mod verify;

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use clap::{Arg, ArgAction, ArgMatches, Command};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use replicator_core::config::VARIABLES;
use replicator_core::sync::{SyncConfig, SyncRequest, Syncer, SYNC_VARIABLES};
use replicator_core::verify::{VerifyConfig, VERIFY_VARIABLES};
use replicator_core::{Clients, Config, ObjectRequest, Outcome, Replicator};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

fn flag_name(variable: &str) -> String {
    variable.to_ascii_lowercase().replace('_', "-")
}

/// The command line, with one global flag per configuration variable.
pub fn command() -> Command {
    let mut cmd = Command::new("replicator")
        .about("s3-fallback-replicator: diagnose, generate policies, copy, sync and verify")
        .subcommand_required(true)
        .arg(
            Arg::new("region")
                .long("region")
                .env("AWS_REGION")
                .global(true)
                .help("AWS region of the source bucket"),
        )
        .arg(
            // Not bound to AWS_ENDPOINT_URL: an endpoint set in code would override the
            // SDK's per-service AWS_ENDPOINT_URL_<SERVICE>, which the SDK reads itself.
            Arg::new("endpoint-url")
                .long("endpoint-url")
                .global(true)
                .help("One endpoint for S3, STS and KMS (emulators, S3-compatible stores); by default the SDK's AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>"),
        );
    for variable in VARIABLES
        .iter()
        .chain(SYNC_VARIABLES)
        .chain(VERIFY_VARIABLES)
        .filter(|v| **v != "AWS_LAMBDA_FUNCTION_NAME")
    {
        cmd = cmd.arg(
            Arg::new(*variable)
                .long(flag_name(variable))
                .env(*variable)
                .global(true)
                .hide_env_values(*variable == "DESTINATION_EXTERNAL_ID")
                .help_heading("Configuration (each also read from its environment variable)"),
        );
    }
    let json = || {
        Arg::new("json")
            .long("json")
            .action(ArgAction::SetTrue)
            .help("machine-readable output")
    };
    cmd.subcommand(
        Command::new("doctor")
            .about("run every check a replication needs; exit 1 if any fails")
            .arg(json()),
    )
    .subcommand(
        Command::new("policies")
            .about("print every policy both accounts need, from this configuration")
            .arg(json())
            .arg(
                Arg::new("function-role-arn")
                    .long("function-role-arn")
                    .help(
                        "the source functions' role ARN, for the destination role's trust policy",
                    ),
            )
            .arg(
                Arg::new("source-kms-key-arn")
                    .long("source-kms-key-arn")
                    .help("the source bucket's KMS key, if SSE-KMS"),
            ),
    )
    .subcommand(
        Command::new("copy")
            .about("replicate keys once, with the event copier's exact semantics")
            .arg(
                Arg::new("keys")
                    .num_args(0..)
                    .help("object keys (as they are, not URL-encoded)"),
            )
            .arg(
                Arg::new("keys-file")
                    .long("keys-file")
                    .help("read keys from this file, one per line (- for stdin)"),
            )
            .arg(
                Arg::new("version-id")
                    .long("version-id")
                    .help("copy this version (with one key)"),
            ),
    )
    .subcommand(
        Command::new("sync")
            .about("a full sync, with the scheduled sync's exact semantics")
            .arg(
                Arg::new("dry-run")
                    .long("dry-run")
                    .action(ArgAction::SetTrue)
                    .help("plan and report; write nothing"),
            )
            .arg(
                Arg::new("prefix")
                    .long("prefix")
                    .help("sync only under this prefix (within KEY_PREFIX)"),
            )
            .arg(
                Arg::new("max-objects")
                    .long("max-objects")
                    .value_parser(clap::value_parser!(u64)),
            ),
    )
    .subcommand(verify::command())
    .subcommand(rules::command())
}

/// The SDK configuration from the environment, with `--region` and `--endpoint-url`.
async fn load_sdk(matches: &ArgMatches) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = matches.get_one::<String>("region") {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = matches.get_one::<String>("endpoint-url") {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

fn lookup(m: &ArgMatches) -> impl Fn(&str) -> Option<String> + '_ {
    move |k| m.try_get_one::<String>(k).ok().flatten().cloned()
}

/// Runs the command line. `sdk` replaces the SDK configuration from the environment (tests).
pub async fn run(args: Vec<String>, sdk: Option<SdkConfig>, out: &mut dyn Write) -> i32 {
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let _ = write!(out, "{e}");
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    if let Some(("rules", sub)) = matches.subcommand() {
        // Rules documents stand on their own: no other setting is needed to check one.
        let given = sdk.clone();
        let sdk = || async {
            match given {
                Some(s) => s,
                None => load_sdk(&matches).await,
            }
        };
        return rules::run(&matches, sub, sdk, out).await;
    }
    let remote_rules = matches
        .get_one::<String>("REPLICATION_RULES")
        .and_then(|v| replicator_core::rules::load::Source::parse(v).ok())
        .is_some_and(|s| s.is_remote());
    let sdk = match (sdk, remote_rules) {
        (Some(s), _) => Some(s),
        // The rules must be read before the configuration is complete.
        (None, true) => Some(load_sdk(&matches).await),
        (None, false) => None,
    };
    let config = match &sdk {
        Some(sdk) => Config::load(lookup(&matches), sdk).await,
        None => Config::from_lookup(lookup(&matches)),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(out, "invalid configuration: {e}");
            return EXIT_USAGE;
        }
    };
    let (name, sub) = matches.subcommand().expect("subcommand_required");
    if name == "policies" {
        return print_policies(&config, sub, out);
    }
    let sdk = match sdk {
        Some(s) => s,
        None => load_sdk(&matches).await,
    };
    match name {
        "doctor" => run_doctor(&sdk, &config, sub.get_flag("json"), out).await,
        "copy" => copy(&sdk, config, sub, out).await,
        "sync" => {
            let sync_config = match SyncConfig::from_lookup(lookup(&matches)) {
                Ok(c) => c,
                Err(e) => {
                    let _ = writeln!(out, "invalid configuration: {e}");
                    return EXIT_USAGE;
                }
            };
            sync(&sdk, config, sync_config, sub, out).await
        }
        "verify" => match VerifyConfig::from_lookup(lookup(&matches)) {
            Ok(verify_config) => verify::run(&sdk, config, verify_config, sub, out).await,
            Err(e) => {
                let _ = writeln!(out, "invalid configuration: {e}");
                EXIT_USAGE
            }
        },
        _ => EXIT_USAGE,
    }
}

async fn run_doctor(sdk: &SdkConfig, config: &Config, json: bool, out: &mut dyn Write) -> i32 {
    let checks = doctor::run(sdk, config).await;
    let failed = checks.iter().any(|c| c.status == doctor::Status::Fail);
    if json {
        let doc = serde_json::json!({"ok": !failed, "checks": checks});
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        );
    } else {
        for c in &checks {
            let mark = match c.status {
                doctor::Status::Pass => "✓",
                doctor::Status::Fail => "✗",
                doctor::Status::Skip => "-",
            };
            let _ = writeln!(out, "{mark} {:<48} {}", c.name, c.detail);
        }
        for c in checks.iter().filter(|c| c.status == doctor::Status::Fail) {
            let _ = writeln!(out, "\n✗ {}", c.name);
            let _ = writeln!(out, "  cause: {}", c.cause.as_deref().unwrap_or_default());
            let _ = writeln!(out, "  fix:   {}", c.fix.as_deref().unwrap_or_default());
        }
        let passed = checks
            .iter()
            .filter(|c| c.status == doctor::Status::Pass)
            .count();
        let _ = writeln!(out, "\n{passed} of {} checks passed", checks.len());
    }
    if failed {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

fn print_policies(config: &Config, sub: &ArgMatches, out: &mut dyn Write) -> i32 {
    let role = sub
        .get_one::<String>("function-role-arn")
        .cloned()
        .unwrap_or_else(|| {
            "<FUNCTION_ROLE_ARN: the FunctionRoleArn output of the source stack>".into()
        });
    let source_key = sub
        .get_one::<String>("source-kms-key-arn")
        .map(String::as_str);
    let bundle = policies::bundle(
        config,
        &role,
        source_key,
        config.destination.replicate_deletes,
    );
    if sub.get_flag("json") {
        let doc: serde_json::Map<String, serde_json::Value> = bundle
            .into_iter()
            .map(|(title, doc)| (title.to_owned(), doc))
            .collect();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        );
    } else {
        for (title, doc) in bundle {
            let _ = writeln!(
                out,
                "# {title}\n{}\n",
                serde_json::to_string_pretty(&doc).expect("serialisable")
            );
        }
    }
    EXIT_OK
}

/// A progress bar on a terminal, nothing otherwise (plain lines are printed per object).
fn progress(len: Option<u64>) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

async fn copy(sdk: &SdkConfig, config: Config, sub: &ArgMatches, out: &mut dyn Write) -> i32 {
    let mut keys: Vec<String> = sub
        .get_many::<String>("keys")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if let Some(file) = sub.get_one::<String>("keys-file") {
        let read: Box<dyn BufRead> = if file == "-" {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            match std::fs::File::open(file) {
                Ok(f) => Box::new(std::io::BufReader::new(f)),
                Err(e) => {
                    let _ = writeln!(out, "cannot read --keys-file {file}: {e}");
                    return EXIT_USAGE;
                }
            }
        };
        keys.extend(read.lines().map_while(Result::ok).filter(|l| !l.is_empty()));
    }
    if keys.is_empty() {
        let _ = writeln!(out, "nothing to copy: give keys, or --keys-file");
        return EXIT_USAGE;
    }
    let version = sub.get_one::<String>("version-id").cloned();
    if version.is_some() && keys.len() != 1 {
        let _ = writeln!(out, "--version-id goes with exactly one key");
        return EXIT_USAGE;
    }
    let concurrency = config.transfer.copy_concurrency;
    let bucket = config.source.bucket.clone();
    let replicator = Replicator::new(config.clone(), Clients::new(sdk, &config).await);
    let bar = progress(Some(keys.len() as u64));
    let started = Instant::now();
    let results: Vec<(String, Result<Outcome, replicator_core::ReplicationError>)> =
        futures::stream::iter(keys)
            .map(|key| {
                let request = ObjectRequest::created(bucket.clone(), key.clone())
                    .with_version(version.clone());
                let replicator = &replicator;
                let bar = bar.clone();
                async move {
                    let result = replicator.replicate(&request).await;
                    if let Some(b) = &bar {
                        b.inc(1);
                    }
                    (key, result)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let (mut copied, mut skipped, mut failed, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    for (key, result) in &results {
        let line = match result {
            Ok(Outcome::Copied {
                bytes: b, method, ..
            }) => {
                copied += 1;
                bytes += b;
                format!("copied   {key} ({b} bytes, {method:?})")
            }
            Ok(Outcome::Skipped { reason }) => {
                skipped += 1;
                format!("skipped  {key} ({reason:?})")
            }
            Ok(Outcome::DeleteMarkerCreated { .. }) => format!("deleted  {key}"),
            Err(e) => {
                failed += 1;
                format!("FAILED   {key}: {e}")
            }
        };
        let _ = writeln!(out, "{line}");
    }
    summary(
        out,
        &[
            ("copied", copied),
            ("skipped", skipped),
            ("failed", failed),
            ("bytes", bytes),
        ],
        started,
    );
    if failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

pub(crate) fn summary(out: &mut dyn Write, rows: &[(&str, u64)], started: Instant) {
    let _ = writeln!(out, "\n+------------------+---------------+");
    for (name, value) in rows {
        let _ = writeln!(out, "| {name:<16} | {value:>13} |");
    }
    let _ = writeln!(
        out,
        "| {:<16} | {:>12.1}s |",
        "elapsed",
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(out, "+------------------+---------------+");
}

async fn sync(
    sdk: &SdkConfig,
    config: Config,
    sync_config: SyncConfig,
    sub: &ArgMatches,
    out: &mut dyn Write,
) -> i32 {
    let sqs = sync_config
        .queue_url
        .as_ref()
        .map(|_| aws_sdk_sqs_client(sdk));
    let replicator = Replicator::new(config.clone(), Clients::new(sdk, &config).await);
    let region = sdk.region().map(|r| r.to_string());
    let bar = progress(None);
    let mut syncer = Syncer::new(replicator, sqs, sync_config, region);
    if let Some(b) = bar.clone() {
        syncer = syncer.with_progress(Arc::new(move |key: &str| {
            b.inc(1);
            b.set_message(key.to_owned());
        }));
    }
    let started = Instant::now();
    let report = syncer
        .run(SyncRequest {
            prefix: sub.get_one::<String>("prefix").cloned(),
            dry_run: sub.get_flag("dry-run"),
            max_objects: sub.get_one::<u64>("max-objects").copied(),
            // A laptop or CI job has no Lambda deadline: a day.
            deadline: Some(Instant::now() + Duration::from_secs(24 * 3600)),
            run_id: format!("cli-{}", std::process::id()),
            // INVENTORY_MANIFEST (`--inventory-manifest`) makes it a pass from S3 Inventory.
            inventory: None,
        })
        .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(out, "sync failed: {e}");
            return EXIT_FAILED;
        }
    };
    for f in &report.failed_keys {
        let _ = writeln!(out, "FAILED   {}: {}", f.key, f.error);
    }
    if report.dry_run {
        for k in &report.would_copy {
            let _ = writeln!(out, "would copy {k}");
        }
    }
    for k in &report.destination_only_keys {
        let _ = writeln!(out, "destination only {k}");
    }
    let _ = writeln!(out, "delete phase: {}", report.delete_phase);
    if let Some(manifest) = &report.inventory_manifest {
        let _ = writeln!(
            out,
            "inventory {manifest}: {} rows read, {} selected",
            report.inventory_rows, report.inventory_selected
        );
    }
    summary(
        out,
        &[
            ("copied", report.copied),
            ("skipped", report.skipped),
            ("would copy", report.would_copy_count),
            ("failed", report.failed),
            ("destination only", report.destination_only),
            ("enqueued", report.enqueued),
            ("bytes", report.bytes),
            ("complete", u64::from(report.complete)),
        ],
        started,
    );
    if report.failed > 0 || report.busy {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

fn aws_sdk_sqs_client(sdk: &SdkConfig) -> replicator_core::sync::SqsClient {
    replicator_core::sync::SqsClient::new(sdk)
}
