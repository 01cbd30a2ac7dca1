//! `replicator rules import` and `replicator rules check`: bring an existing native
//! replication configuration over, and see where objects would go before deploying.
//!
//! ```text
//! replicator rules import --source-bucket B [--role-map FILE]   print REPLICATION_RULES
//! replicator rules check [--rules FILE|-] [--key K [--tags k=v,...]]... [--json]
//! ```
//!
//! `import` reads the bucket's configuration with GetBucketReplication and prints the
//! equivalent document. Native replication has no field for the role this replicator
//! assumes in each destination account, nor for its ExternalId: the role map gives them,
//! per destination bucket ARN or account id —
//!
//! ```json
//! {"arn:aws:s3:::backup-replica": {"RoleArn": "arn:aws:iam::222222222222:role/replicator-destination",
//!                                  "ExternalId": "…", "Region": "eu-west-1"},
//!  "333333333333": {"RoleArn": "arn:aws:iam::333333333333:role/replicator-destination"}}
//! ```
//!
//! (each entry is a `Destination.FallbackReplicator`; the bucket ARN wins over the
//! account) — and what neither has is written as a `<…>` placeholder, which `check`
//! refuses by name. A native rule without a replica KMS key gets a placeholder too: every
//! replica here is SSE-KMS under the destination's key.
//!
//! `check` exits 0 when the document is valid, 1 when it is not, 2 for usage errors.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::result::SdkError;
use clap::{Arg, ArgAction, ArgMatches, Command};
use replicator_core::rules::document::{EncryptionConfigurationDoc, FallbackReplicatorDoc};
use replicator_core::rules::load::Source;
use replicator_core::rules::{Document, ObjectTags, RuleSet};

use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

pub fn command() -> Command {
    Command::new("rules")
        .about("import a native replication configuration as REPLICATION_RULES, or check a rules document")
        .subcommand_required(true)
        .subcommand(
            Command::new("import")
                .about("print the REPLICATION_RULES equivalent of the source bucket's native replication configuration (GetBucketReplication)")
                .arg(
                    Arg::new("role-map")
                        .long("role-map")
                        .value_name("FILE")
                        .help("JSON: destination bucket ARN or account id → {RoleArn, ExternalId, Region, KeyPrefix, ServerSideCopy}"),
                ),
        )
        .subcommand(
            Command::new("check")
                .about("validate a rules document and show where sample keys would go; exit 1 if it is invalid")
                .arg(
                    Arg::new("rules")
                        .long("rules")
                        .value_name("FILE")
                        .help("the document (- for stdin); by default REPLICATION_RULES (inline, ssm:/NAME or s3://BUCKET/KEY)"),
                )
                .arg(
                    Arg::new("key")
                        .long("key")
                        .action(ArgAction::Append)
                        .help("a sample object key (repeatable)"),
                )
                .arg(
                    Arg::new("tags")
                        .long("tags")
                        .action(ArgAction::Append)
                        .value_name("k=v,...")
                        .help("the tags of the --key before it"),
                )
                .arg(
                    Arg::new("json")
                        .long("json")
                        .action(ArgAction::SetTrue)
                        .help("machine-readable output"),
                ),
        )
}

/// `sdk` is built only when a command needs AWS.
pub async fn run<F, Fut>(global: &ArgMatches, sub: &ArgMatches, sdk: F, out: &mut dyn Write) -> i32
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = SdkConfig>,
{
    let force_path_style = global
        .get_one::<String>("S3_FORCE_PATH_STYLE")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    match sub.subcommand() {
        Some(("import", m)) => {
            let Some(bucket) = global.get_one::<String>("SOURCE_BUCKET") else {
                let _ = writeln!(out, "rules import needs --source-bucket (or SOURCE_BUCKET)");
                return EXIT_USAGE;
            };
            let role_map = match m.get_one::<String>("role-map").map(|f| read_role_map(f)) {
                None => RoleMap::new(),
                Some(Ok(map)) => map,
                Some(Err(e)) => {
                    let _ = writeln!(out, "{e}");
                    return EXIT_USAGE;
                }
            };
            import(&sdk().await, force_path_style, bucket, &role_map, out).await
        }
        Some(("check", m)) => {
            let text = match m.get_one::<String>("rules") {
                Some(file) => match read_file(file) {
                    Ok(text) => text,
                    Err(e) => {
                        let _ = writeln!(out, "{e}");
                        return EXIT_USAGE;
                    }
                },
                None => {
                    let Some(value) = global.get_one::<String>("REPLICATION_RULES") else {
                        let _ = writeln!(
                            out,
                            "nothing to check: give --rules FILE (- for stdin), or REPLICATION_RULES"
                        );
                        return EXIT_USAGE;
                    };
                    let source = match Source::parse(value) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = writeln!(out, "{e}");
                            return EXIT_USAGE;
                        }
                    };
                    match source.fetch(&sdk().await, force_path_style).await {
                        Ok(text) => text,
                        Err(e) => {
                            let _ = writeln!(out, "REPLICATION_RULES: {e}");
                            return EXIT_FAILED;
                        }
                    }
                }
            };
            let samples = match samples(m) {
                Ok(s) => s,
                Err(e) => {
                    let _ = writeln!(out, "{e}");
                    return EXIT_USAGE;
                }
            };
            check(&text, &samples, m.get_flag("json"), out)
        }
        _ => EXIT_USAGE,
    }
}

/// Role map entries by destination bucket ARN or account id.
pub type RoleMap = BTreeMap<String, FallbackReplicatorDoc>;

fn read_file(file: &str) -> Result<String, String> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))
}

fn read_role_map(file: &str) -> Result<RoleMap, String> {
    let text = read_file(file)?;
    serde_json::from_str(&text).map_err(|e| {
        format!("--role-map {file}: {e} (expected {{\"arn:aws:s3:::BUCKET\" or \"ACCOUNT-ID\": {{\"RoleArn\": …, \"ExternalId\": …, \"Region\": …}}}})")
    })
}

/// The document for a native configuration, with the role map's settings (or
/// placeholders) in each destination.
pub fn import_document(
    native: &aws_sdk_s3::types::ReplicationConfiguration,
    role_map: &RoleMap,
) -> Document {
    let mut doc = Document::from_native(native);
    for rule in &mut doc.rules {
        let d = &mut rule.destination;
        let entry = role_map
            .get(&d.bucket)
            .or_else(|| d.account.as_ref().and_then(|a| role_map.get(a)));
        d.fallback_replicator = Some(match entry {
            Some(e) => e.clone(),
            None => FallbackReplicatorDoc {
                role_arn: Some(format!("<ROLE_ARN to assume for {}>", d.bucket)),
                external_id: Some(format!(
                    "<EXTERNAL_ID of that role's trust policy, for {}>",
                    d.bucket
                )),
                region: None,
                key_prefix: None,
                server_side_copy: None,
            },
        });
        let has_key = d
            .encryption_configuration
            .as_ref()
            .is_some_and(|e| e.replica_kms_key_id.is_some());
        if !has_key {
            d.encryption_configuration = Some(EncryptionConfigurationDoc {
                replica_kms_key_id: Some(format!(
                    "<REPLICA_KMS_KEY_ARN in the account of {}>",
                    d.bucket
                )),
            });
        }
    }
    doc
}

async fn import(
    sdk: &SdkConfig,
    force_path_style: bool,
    bucket: &str,
    role_map: &RoleMap,
    out: &mut dyn Write,
) -> i32 {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(force_path_style)
            .build(),
    );
    let answer = match s3.get_bucket_replication().bucket(bucket).send().await {
        Ok(a) => a,
        Err(e) => {
            let code = match &e {
                SdkError::ServiceError(s) => {
                    aws_sdk_s3::error::ProvideErrorMetadata::code(s.err()).map(str::to_owned)
                }
                _ => None,
            };
            let why = match code.as_deref() {
                Some("ReplicationConfigurationNotFoundError") => {
                    "the bucket has no replication configuration".to_owned()
                }
                _ => aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
            };
            let _ = writeln!(out, "GetBucketReplication on {bucket}: {why}");
            return EXIT_FAILED;
        }
    };
    let Some(native) = answer.replication_configuration() else {
        let _ = writeln!(
            out,
            "GetBucketReplication on {bucket}: no configuration in the answer"
        );
        return EXIT_FAILED;
    };
    let _ = writeln!(
        out,
        "{}",
        import_document(native, role_map).to_json_pretty()
    );
    EXIT_OK
}

/// A sample key and its tags.
pub struct Sample {
    pub key: String,
    pub tags: ObjectTags,
}

/// `--key` values, each with the `--tags` that follow it.
fn samples(m: &ArgMatches) -> Result<Vec<Sample>, String> {
    let keys: Vec<(usize, String)> = m
        .indices_of("key")
        .into_iter()
        .flatten()
        .zip(m.get_many::<String>("key").into_iter().flatten().cloned())
        .collect();
    let mut samples: Vec<Sample> = keys
        .iter()
        .map(|(_, k)| Sample {
            key: k.clone(),
            tags: ObjectTags::new(),
        })
        .collect();
    let tags = m
        .indices_of("tags")
        .into_iter()
        .flatten()
        .zip(m.get_many::<String>("tags").into_iter().flatten());
    for (at, value) in tags {
        let Some(owner) = keys.iter().rposition(|(i, _)| *i < at) else {
            return Err(format!("--tags {value} comes before any --key"));
        };
        for pair in value.split(',').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(format!("--tags {value}: expected k=v,k2=v2"));
            };
            samples[owner].tags.insert(k.to_owned(), v.to_owned());
        }
    }
    Ok(samples)
}

/// Validates `text` and prints where each sample goes.
pub fn check(text: &str, samples: &[Sample], json: bool, out: &mut dyn Write) -> i32 {
    let rules = match RuleSet::from_json(text) {
        Ok(r) => r,
        Err(e) => {
            if json {
                let doc = serde_json::json!({"ok": false, "error": e.to_string()});
                let _ = writeln!(out, "{doc}");
            } else {
                let _ = writeln!(out, "invalid rules: {e}");
            }
            return EXIT_FAILED;
        }
    };
    let routed: Vec<serde_json::Value> = samples
        .iter()
        .map(|s| {
            let routes: Vec<serde_json::Value> = rules
                .route(&s.key, &s.tags)
                .into_iter()
                .map(|r| {
                    serde_json::json!({
                        "bucket": r.destination.bucket,
                        "replica_key": format!("{}{}", r.destination.key_prefix, s.key),
                        "rule": r.id,
                        "priority": r.priority,
                        "delete_markers": r.delete_markers,
                    })
                })
                .collect();
            serde_json::json!({
                "key": s.key, "tags": s.tags, "needs_tags": rules.needs_tags(&s.key), "routes": routes,
            })
        })
        .collect();
    let enabled = rules.rules().iter().filter(|r| r.enabled).count();
    if json {
        let doc = serde_json::json!({
            "ok": true,
            "rules": rules.rules().len(),
            "enabled": enabled,
            "destinations": rules.destination_buckets(),
            "keys": routed,
        });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        );
        return EXIT_OK;
    }
    let _ = writeln!(
        out,
        "valid: {} rules ({enabled} enabled) to {} destination buckets: {}",
        rules.rules().len(),
        rules.destination_buckets().len(),
        rules.destination_buckets().join(", ")
    );
    if let Err(limit) = rules.single_rule() {
        let _ = writeln!(out, "note: {limit}");
    }
    if routed.is_empty() {
        return EXIT_OK;
    }
    let width = samples
        .iter()
        .map(|s| s.key.len())
        .max()
        .unwrap_or(3)
        .max(3);
    let _ = writeln!(
        out,
        "\n{:<width$}  {:<24}  {:<24}  priority",
        "key", "destination", "rule"
    );
    for r in &routed {
        let key = r["key"].as_str().unwrap_or_default();
        let routes = r["routes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if routes.is_empty() {
            let _ = writeln!(out, "{key:<width$}  (nowhere)");
        }
        for route in routes {
            let _ = writeln!(
                out,
                "{key:<width$}  {:<24}  {:<24}  {}",
                route["bucket"].as_str().unwrap_or_default(),
                route["rule"].as_str().unwrap_or_default(),
                route["priority"]
            );
        }
    }
    EXIT_OK
}

#[cfg(test)]
mod tests;
