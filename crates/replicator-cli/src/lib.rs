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

mod backfill;
pub mod doctor;
pub mod policies;
pub mod rules;
pub mod verify;

use std::io::Write;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use clap::{Arg, ArgAction, ArgMatches, Command};
use replicator_core::config::VARIABLES;
use replicator_core::sync::{SyncConfig, SYNC_VARIABLES};
use replicator_core::verify::{VerifyConfig, VERIFY_VARIABLES};
use replicator_core::Config;

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
            .arg(json())
            .arg(Arg::new("function-role-arn").long("function-role-arn").help(
                "the source functions' role ARN: the one principal besides the doctor the destination role should trust",
            ))
            .arg(Arg::new("copier-queue-arn").long("copier-queue-arn").help(
                "the copier's queue ARN (the stack's CopierQueueArn output): where native replication's failure events should go",
            )),
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
                    .help("the source bucket's KMS key ARN, if SSE-KMS"),
            )
            .arg(
                Arg::new("destination-kms-key-arn")
                    .long("destination-kms-key-arn")
                    .help("the key ARN DESTINATION_KMS_KEY_ID names, when that is an alias ARN"),
            )
            .arg(
                Arg::new("show-external-id")
                    .long("show-external-id")
                    .action(ArgAction::SetTrue)
                    .help("print the ExternalId in the trust policy (a placeholder otherwise)"),
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
    let (name, sub) = matches.subcommand().expect("subcommand_required");
    if name == "policies" {
        // Every destination's, whatever the functions can carry out today.
        return match Config::per_destination(lookup(&matches), sdk.as_ref()).await {
            Ok(configs) => print_policies(&configs, sub, out),
            Err(e) => {
                let _ = writeln!(out, "invalid configuration: {e}");
                EXIT_USAGE
            }
        };
    }
    if name == "doctor" {
        // Every rule's destination, one after another.
        let configs = match Config::per_rule(lookup(&matches), sdk.as_ref()).await {
            Ok((_, configs)) => configs,
            Err(e) => {
                let _ = writeln!(out, "invalid configuration: {e}");
                return EXIT_USAGE;
            }
        };
        let sdk = match sdk {
            Some(s) => s,
            None => load_sdk(&matches).await,
        };
        let options = doctor::Options {
            function_role_arn: sub.get_one::<String>("function-role-arn").cloned(),
            copier_queue_arn: sub.get_one::<String>("copier-queue-arn").cloned(),
        };
        return run_doctor(&sdk, &configs, options, sub.get_flag("json"), out).await;
    }
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
    let sdk = match sdk {
        Some(s) => s,
        None => load_sdk(&matches).await,
    };
    match name {
        "copy" => backfill::copy(&sdk, config, sub, out).await,
        "sync" => {
            let sync_config = match SyncConfig::from_lookup(lookup(&matches)) {
                Ok(c) => c,
                Err(e) => {
                    let _ = writeln!(out, "invalid configuration: {e}");
                    return EXIT_USAGE;
                }
            };
            backfill::sync(&sdk, config, sync_config, sub, out).await
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

/// The doctor's checks of every rule's destination (rules that write alike are checked
/// once): one report as before for one, and with several a section per rule, titled with
/// it (`--json`: `{"ok", "destinations": [{"rule", "destination", "ok", "checks"}]}`).
async fn run_doctor(
    sdk: &SdkConfig,
    configs: &[Config],
    options: doctor::Options,
    json: bool,
    out: &mut dyn Write,
) -> i32 {
    let mut distinct: Vec<&Config> = Vec::new();
    for c in configs {
        let alike = |d: &&Config| {
            d.destination.bucket == c.destination.bucket
                && d.destination.role_arn == c.destination.role_arn
                && d.destination.external_id == c.destination.external_id
                && d.destination.account_id == c.destination.account_id
                && d.destination.region == c.destination.region
                && d.destination.kms_key_id == c.destination.kms_key_id
                && d.destination.prefix == c.destination.prefix
                && d.source.key_prefix == c.source.key_prefix
        };
        if !distinct.iter().any(alike) {
            distinct.push(c);
        }
    }
    let mut sections = Vec::with_capacity(distinct.len());
    for config in &distinct {
        sections.push((*config, doctor::run(sdk, config, options.clone()).await));
    }
    let failed = sections
        .iter()
        .any(|(_, checks)| checks.iter().any(|c| c.status == doctor::Status::Fail));
    match sections.as_slice() {
        [(_, checks)] => print_checks(checks, json, out),
        _ if json => {
            let destinations: Vec<serde_json::Value> = sections
                .iter()
                .map(|(config, checks)| {
                    serde_json::json!({
                        "rule": config.rule_id,
                        "destination": config.destination.bucket,
                        "ok": !checks.iter().any(|c| c.status == doctor::Status::Fail),
                        "checks": checks,
                    })
                })
                .collect();
            let doc = serde_json::json!({"ok": !failed, "destinations": destinations});
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).expect("serialisable")
            );
        }
        _ => {
            for (config, checks) in &sections {
                let _ = writeln!(
                    out,
                    "\n== rule {:?}: s3://{}{} (account {}) ==",
                    config.rule_id,
                    config.destination.bucket,
                    if config.destination.prefix.is_empty() {
                        String::new()
                    } else {
                        format!("/{}", config.destination.prefix)
                    },
                    config.destination.account_id
                );
                print_checks(checks, false, out);
            }
        }
    }
    if failed {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// One destination's checks: JSON, or a line each and then the cause and fix of each that
/// did not pass.
fn print_checks(checks: &[doctor::Check], json: bool, out: &mut dyn Write) {
    let failed = checks.iter().any(|c| c.status == doctor::Status::Fail);
    if json {
        let doc = serde_json::json!({"ok": !failed, "checks": checks});
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        );
    } else {
        for c in checks {
            let mark = match c.status {
                doctor::Status::Pass => "✓",
                doctor::Status::Warn => "!",
                doctor::Status::Fail => "✗",
                doctor::Status::Skip => "-",
            };
            let _ = writeln!(out, "{mark} {:<48} {}", c.name, c.detail);
        }
        for c in checks.iter().filter(|c| c.status != doctor::Status::Pass) {
            let mark = match c.status {
                doctor::Status::Fail => "✗",
                doctor::Status::Warn => "!",
                _ => continue,
            };
            let _ = writeln!(out, "\n{mark} {}", c.name);
            let _ = writeln!(out, "  cause: {}", c.cause.as_deref().unwrap_or_default());
            let _ = writeln!(out, "  fix:   {}", c.fix.as_deref().unwrap_or_default());
        }
        let passed = checks
            .iter()
            .filter(|c| c.status == doctor::Status::Pass)
            .count();
        let _ = writeln!(out, "\n{passed} of {} checks passed", checks.len());
    }
}

fn print_policies(configs: &[Config], sub: &ArgMatches, out: &mut dyn Write) -> i32 {
    let sync_deletes = match SyncConfig::from_lookup(lookup(sub)) {
        Ok(sync) => sync.delete,
        Err(e) => {
            let _ = writeln!(out, "invalid configuration: {e}");
            return EXIT_USAGE;
        }
    };
    let audit_bucket = match VerifyConfig::from_lookup(lookup(sub)) {
        Ok(verify) => verify.audit_bucket,
        Err(e) => {
            let _ = writeln!(out, "invalid configuration: {e}");
            return EXIT_USAGE;
        }
    };
    let flag = |name: &str| sub.get_one::<String>(name).cloned();
    let options = policies::Options {
        function_role_arn: flag("function-role-arn"),
        source_key_arn: flag("source-kms-key-arn"),
        destination_key_arn: flag("destination-kms-key-arn"),
        show_external_id: sub.get_flag("show-external-id"),
        deletes: sync_deletes,
        audit_bucket,
        rules_location: sub
            .get_one::<String>("REPLICATION_RULES")
            .and_then(|v| replicator_core::rules::load::Source::parse(v).ok())
            .filter(|s| s.is_remote()),
    };
    let bundle = match policies::bundle(configs, &options) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(out, "{e}");
            return EXIT_USAGE;
        }
    };
    if sub.get_flag("json") {
        let doc: serde_json::Map<String, serde_json::Value> = bundle.into_iter().collect();
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
