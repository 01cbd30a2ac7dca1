//! `replicator doctor`: every check a replication needs, in dependency order, each with the
//! cause and the exact fix when it fails.

use aws_config::SdkConfig;
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{BucketVersioningStatus, ServerSideEncryption};
use replicator_core::{permissions, Clients, Config};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Not run: a check it depends on failed.
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn pass(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        status: Status::Pass,
        detail: detail.into(),
        cause: None,
        fix: None,
    }
}

fn fail(
    name: &'static str,
    detail: impl Into<String>,
    cause: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        name,
        status: Status::Fail,
        detail: detail.into(),
        cause: Some(cause.into()),
        fix: Some(fix.into()),
    }
}

fn skip(name: &'static str, because: &str) -> Check {
    Check {
        name,
        status: Status::Skip,
        detail: format!("not checked: {because}"),
        cause: None,
        fix: None,
    }
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match e {
        SdkError::ServiceError(s) => s.err().code().unwrap_or("unknown").to_owned(),
        other => format!("{other}"),
    }
}

fn status<E>(e: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn message<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> String {
    let status = status(e).map(|s| format!("HTTP {s} ")).unwrap_or_default();
    match e {
        SdkError::ServiceError(s) => format!(
            "{status}{}: {} ({:?})",
            code(e),
            s.err().message().unwrap_or_default(),
            s.err()
        ),
        other => format!("{status}{}", replicator_core::error::error_chain(other)),
    }
}

fn statement(actions: &[&str], resource: &str) -> String {
    json!({"Effect": "Allow", "Action": actions, "Resource": resource}).to_string()
}

/// Runs every check; later ones are skipped when what they need failed.
pub async fn run(sdk: &SdkConfig, config: &Config) -> Vec<Check> {
    let mut checks = Vec::new();
    let partition = config
        .destination_role_arn
        .split(':')
        .nth(1)
        .unwrap_or("aws")
        .to_owned();
    let src_arn = format!("arn:{partition}:s3:::{}", config.source_bucket);
    let dst_arn = format!("arn:{partition}:s3:::{}", config.destination_bucket);
    let clients = Clients::new(sdk, config).await;
    let sts = aws_sdk_sts::Client::new(sdk);

    // 1. Who am I.
    let me = match sts.get_caller_identity().send().await {
        Ok(out) => {
            let arn = out.arn().unwrap_or_default().to_owned();
            checks.push(pass(
                "caller identity",
                format!("{arn} (account {})", out.account().unwrap_or("?")),
            ));
            Some(arn)
        }
        Err(e) => {
            checks.push(fail(
                "caller identity",
                message(&e),
                "no usable AWS credentials for the source account",
                "configure credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/…, or an instance/Lambda role) and the region",
            ));
            None
        }
    };

    // 2. The source bucket.
    let source_ok = match clients
        .source
        .head_bucket()
        .bucket(&config.source_bucket)
        .send()
        .await
    {
        Ok(_) => {
            checks.push(pass(
                "source bucket reachable",
                format!("s3://{}", config.source_bucket),
            ));
            true
        }
        Err(e) => {
            let (cause, fix) = match status(&e) {
                Some(404) => (
                    format!(
                        "bucket {} does not exist (or is in another partition)",
                        config.source_bucket
                    ),
                    "set SOURCE_BUCKET to the bucket's exact name".to_owned(),
                ),
                _ => (
                    format!(
                        "access denied to {}{}",
                        config.source_bucket,
                        config
                            .source_account_id
                            .as_ref()
                            .map(|a| format!(", or it is not owned by {a} (SOURCE_ACCOUNT_ID)"))
                            .unwrap_or_default()
                    ),
                    format!(
                        "allow the caller/function role: {}",
                        statement(permissions::SOURCE_BUCKET_ACTIONS, &src_arn)
                    ),
                ),
            };
            checks.push(fail("source bucket reachable", message(&e), cause, fix));
            false
        }
    };
    let mut source_key: Option<String> = None;
    if source_ok {
        match clients.source.get_bucket_versioning().bucket(&config.source_bucket).send().await {
            Ok(v) if v.status() == Some(&BucketVersioningStatus::Enabled) => {
                checks.push(pass("source bucket versioning", "Enabled"))
            }
            Ok(v) => checks.push(fail(
                "source bucket versioning",
                v.status().map(|s| s.as_str()).unwrap_or("never enabled").to_string(),
                format!("versioning is off on s3://{}: events cannot name exact versions, and a rewrite replaces the only copy of the source", config.source_bucket),
                format!("aws s3api put-bucket-versioning --bucket {} --versioning-configuration Status=Enabled", config.source_bucket),
            )),
            Err(e) => checks.push(fail(
                "source bucket versioning",
                message(&e),
                "cannot read the bucket's versioning state",
                format!("allow s3:GetBucketVersioning on {src_arn} to the caller"),
            )),
        }
        match clients
            .source
            .get_bucket_encryption()
            .bucket(&config.source_bucket)
            .send()
            .await
        {
            Ok(out) => {
                let rule = out
                    .server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|r| r.apply_server_side_encryption_by_default());
                let detail = match rule {
                    Some(r)
                        if r.sse_algorithm() == &ServerSideEncryption::AwsKms
                            || r.sse_algorithm() == &ServerSideEncryption::AwsKmsDsse =>
                    {
                        source_key = r.kms_master_key_id().map(str::to_owned);
                        format!(
                            "SSE-KMS with {}",
                            source_key
                                .as_deref()
                                .unwrap_or("the AWS managed key aws/s3")
                        )
                    }
                    Some(r) => r.sse_algorithm().as_str().to_string(),
                    None => "none".to_owned(),
                };
                checks.push(pass("source default encryption", detail));
            }
            Err(e) => checks.push(fail(
                "source default encryption",
                message(&e),
                "cannot read the bucket's default encryption",
                format!("allow s3:GetEncryptionConfiguration on {src_arn} to the caller"),
            )),
        }
        checks.push(source_object_check(&clients, config, &src_arn).await);
        checks.push(source_key_check(sdk, source_key.as_deref(), &config.source_bucket).await);
    } else {
        for name in [
            "source bucket versioning",
            "source default encryption",
            "source object readable",
            "source KMS key usable",
        ] {
            checks.push(skip(name, "the source bucket is not reachable"));
        }
    }

    // 3. The destination role.
    let mut assume = sts
        .assume_role()
        .role_arn(&config.destination_role_arn)
        .role_session_name("replicator-doctor");
    if let Some(id) = &config.destination_external_id {
        assume = assume.external_id(id);
    }
    let role_ok = match assume.send().await {
        Ok(out) => {
            let arn = out
                .assumed_role_user()
                .map(|u| u.arn().to_owned())
                .unwrap_or_default();
            let note = if config.destination_external_id.is_none() {
                " (no DESTINATION_EXTERNAL_ID: set one and require it in the trust policy)"
            } else {
                ""
            };
            checks.push(pass("assume destination role", format!("{arn}{note}")));
            true
        }
        Err(e) => {
            let me = me
                .clone()
                .unwrap_or_else(|| "<the function role ARN>".into());
            let mut trust =
                json!({"Effect": "Allow", "Principal": {"AWS": me}, "Action": "sts:AssumeRole"});
            if let Some(id) = &config.destination_external_id {
                trust["Condition"] = json!({"StringEquals": {"sts:ExternalId": id}});
            }
            let cause = if config.destination_external_id.is_none() {
                format!(
                    "STS refused AssumeRole on {} and no ExternalId was sent: the role does not trust {me}, requires an ExternalId (set DESTINATION_EXTERNAL_ID), or does not exist",
                    config.destination_role_arn
                )
            } else {
                format!(
                    "STS refused AssumeRole on {} (it answers alike for all three): the role's trust policy does not name {me}, the ExternalId differs from the one it requires, or the role does not exist",
                    config.destination_role_arn
                )
            };
            checks.push(fail(
                "assume destination role",
                message(&e),
                cause,
                format!(
                    "in the destination account, add to the trust policy of {}: {trust} (and allow sts:AssumeRole on it to the caller)",
                    config.destination_role_arn
                ),
            ));
            false
        }
    };

    let destination_names = [
        "destination bucket owned by the expected account",
        "destination bucket versioning",
        "destination default encryption",
        "destination KMS key",
        "destination KMS key usable by the role",
        "probe write with the destination key",
    ];
    if !role_ok {
        for name in destination_names {
            checks.push(skip(name, "the destination role cannot be assumed"));
        }
        return checks;
    }

    // 4. The destination bucket, through the destination role (ExpectedBucketOwner on).
    let bucket_ok = match clients
        .destination
        .head_bucket()
        .bucket(&config.destination_bucket)
        .send()
        .await
    {
        Ok(_) => {
            checks.push(pass(
                "destination bucket owned by the expected account",
                format!(
                    "s3://{} owned by {}",
                    config.destination_bucket, config.destination_account_id
                ),
            ));
            true
        }
        Err(e) => {
            let (cause, fix) = match status(&e) {
                Some(404) => (
                    format!("bucket {} does not exist", config.destination_bucket),
                    format!(
                        "create it in account {} (deploy/destination-account.yaml with CreateBucket=true) or fix DESTINATION_BUCKET",
                        config.destination_account_id
                    ),
                ),
                _ => (
                    format!(
                        "bucket {} is not owned by account {} (DESTINATION_ACCOUNT_ID), or the destination role may not list it",
                        config.destination_bucket, config.destination_account_id
                    ),
                    format!(
                        "set DESTINATION_ACCOUNT_ID to the bucket owner's account, or allow the destination role: {}",
                        statement(permissions::DESTINATION_BUCKET_ACTIONS, &dst_arn)
                    ),
                ),
            };
            checks.push(fail(
                "destination bucket owned by the expected account",
                message(&e),
                cause,
                fix,
            ));
            false
        }
    };
    if bucket_ok {
        match clients.destination.get_bucket_versioning().bucket(&config.destination_bucket).send().await {
            Ok(v) if v.status() == Some(&BucketVersioningStatus::Enabled) => {
                checks.push(pass("destination bucket versioning", "Enabled"))
            }
            Ok(v) => checks.push(fail(
                "destination bucket versioning",
                v.status().map(|s| s.as_str()).unwrap_or("never enabled").to_owned(),
                format!("versioning is off on s3://{}: a replaced replica is lost instead of kept as an older version", config.destination_bucket),
                format!("aws s3api put-bucket-versioning --bucket {} --versioning-configuration Status=Enabled", config.destination_bucket),
            )),
            Err(e) => checks.push(fail(
                "destination bucket versioning",
                message(&e),
                "the destination role cannot read the bucket's versioning state",
                format!("allow the destination role: {}", statement(permissions::DESTINATION_BUCKET_ACTIONS, &dst_arn)),
            )),
        }
        match clients
            .destination
            .get_bucket_encryption()
            .bucket(&config.destination_bucket)
            .send()
            .await
        {
            Ok(out) => {
                let detail = out
                    .server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|r| r.apply_server_side_encryption_by_default())
                    .map(|r| {
                        format!(
                            "{} {}",
                            r.sse_algorithm().as_str(),
                            r.kms_master_key_id().unwrap_or_default()
                        )
                    })
                    .unwrap_or_else(|| "none".into());
                checks.push(pass(
                    "destination default encryption",
                    format!(
                        "{detail} (replicas are written with DESTINATION_KMS_KEY_ID regardless)"
                    ),
                ));
            }
            Err(e) => checks.push(fail(
                "destination default encryption",
                message(&e),
                "the destination role cannot read the bucket's default encryption",
                format!(
                    "allow the destination role: {}",
                    statement(permissions::DESTINATION_BUCKET_ACTIONS, &dst_arn)
                ),
            )),
        }
    } else {
        checks.push(skip(
            "destination bucket versioning",
            "the destination bucket is not reachable",
        ));
        checks.push(skip(
            "destination default encryption",
            "the destination bucket is not reachable",
        ));
    }

    // 5. The destination key, through the destination role.
    let kms = aws_sdk_kms::Client::new(&clients.destination_sdk);
    let key = &config.destination_kms_key_id;
    let key_arn = match kms.describe_key().key_id(key).send().await {
        Ok(out) => {
            let meta = out.key_metadata();
            let state = meta.and_then(|m| m.key_state()).cloned();
            let usage = meta.and_then(|m| m.key_usage()).cloned();
            let spec = meta.and_then(|m| m.key_spec()).cloned();
            let arn = meta.and_then(|m| m.arn()).unwrap_or(key).to_owned();
            let detail = format!(
                "{arn}: {}, {}, {}",
                state.as_ref().map(|s| s.as_str()).unwrap_or("?"),
                usage.as_ref().map(|s| s.as_str()).unwrap_or("?"),
                spec.as_ref().map(|s| s.as_str()).unwrap_or("?")
            );
            let key_id = meta.map(|m| m.key_id()).unwrap_or(key);
            match (&state, &usage, &spec) {
                (
                    Some(KeyState::Enabled),
                    // An emulator may omit KeyUsage; KMS always reports it.
                    Some(KeyUsageType::EncryptDecrypt) | None,
                    Some(KeySpec::SymmetricDefault),
                ) => {
                    checks.push(pass("destination KMS key", detail));
                    Some(arn)
                }
                (Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion), _, _) => {
                    checks.push(fail(
                        "destination KMS key",
                        detail,
                        format!("KMS key {arn} is scheduled for deletion: every replica write will fail, and replicas become unreadable once it is deleted"),
                        format!("aws kms cancel-key-deletion --key-id {key_id} && aws kms enable-key --key-id {key_id} (in account {})", config.destination_account_id),
                    ));
                    None
                }
                (Some(KeyState::Disabled), _, _) => {
                    checks.push(fail(
                        "destination KMS key",
                        detail,
                        format!("KMS key {arn} is disabled: S3 cannot encrypt replicas with it"),
                        format!(
                            "aws kms enable-key --key-id {key_id} (in account {})",
                            config.destination_account_id
                        ),
                    ));
                    None
                }
                _ => {
                    checks.push(fail(
                        "destination KMS key",
                        detail,
                        format!("KMS key {arn} is not an enabled symmetric ENCRYPT_DECRYPT key, which SSE-KMS requires"),
                        "set DESTINATION_KMS_KEY_ID to an enabled SYMMETRIC_DEFAULT key in the destination account",
                    ));
                    None
                }
            }
        }
        Err(e) => {
            checks.push(fail(
                "destination KMS key",
                message(&e),
                format!("the destination role cannot describe KMS key {key}: it does not exist, or neither IAM nor the key policy lets the role use it"),
                format!(
                    "allow the destination role: {} (and, if the key policy does not enable IAM policies, add the key-policy statement printed by `replicator policies`)",
                    statement(permissions::DESTINATION_KEY_ACTIONS, key)
                ),
            ));
            None
        }
    };
    let Some(key_arn) = key_arn else {
        checks.push(skip(
            "destination KMS key usable by the role",
            "the key is not usable",
        ));
        checks.push(skip(
            "probe write with the destination key",
            "the key is not usable",
        ));
        return checks;
    };
    let data_key = kms
        .generate_data_key()
        .key_id(&key_arn)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .dry_run(true)
        .send()
        .await;
    let usable = match data_key {
        Ok(_) => true,
        Err(e) if code(&e) == "DryRunOperationException" || code(&e) == "DryRunOperation" => true,
        Err(e) => {
            checks.push(fail(
                "destination KMS key usable by the role",
                message(&e),
                format!("the destination role may not call kms:GenerateDataKey on {key_arn}"),
                format!(
                    "allow the destination role: {}",
                    statement(permissions::DESTINATION_KEY_ACTIONS, &key_arn)
                ),
            ));
            false
        }
    };
    if usable {
        checks.push(pass(
            "destination KMS key usable by the role",
            "kms:GenerateDataKey (dry run) allowed",
        ));
    }
    if !(bucket_ok && usable) {
        checks.push(skip(
            "probe write with the destination key",
            "the bucket or the key is not usable",
        ));
        return checks;
    }
    checks.push(probe(&clients, config, &key_arn, &dst_arn).await);
    checks
}

async fn source_object_check(clients: &Clients, config: &Config, src_arn: &str) -> Check {
    let name = "source object readable";
    let listed = clients
        .source
        .list_objects_v2()
        .bucket(&config.source_bucket)
        .prefix(&config.key_prefix)
        .max_keys(1)
        .send()
        .await;
    let key = match listed {
        Ok(out) => match out.contents().first().and_then(|o| o.key()) {
            Some(k) => k.to_owned(),
            None => {
                return pass(
                    name,
                    format!(
                        "no object under {:?} yet; nothing to read",
                        config.key_prefix
                    ),
                )
            }
        },
        Err(e) => {
            return fail(
                name,
                message(&e),
                format!("cannot list s3://{}", config.source_bucket),
                format!(
                    "allow: {}",
                    statement(permissions::SOURCE_BUCKET_ACTIONS, src_arn)
                ),
            )
        }
    };
    let objects = format!("{src_arn}/{}*", config.key_prefix);
    if let Err(e) = clients
        .source
        .head_object()
        .bucket(&config.source_bucket)
        .key(&key)
        .send()
        .await
    {
        return fail(
            name,
            message(&e),
            format!(
                "cannot read s3://{}/{key} (s3:GetObject, or kms:Decrypt on its key)",
                config.source_bucket
            ),
            format!(
                "allow: {}",
                statement(permissions::SOURCE_OBJECT_ACTIONS, &objects)
            ),
        );
    }
    match clients
        .source
        .get_object_tagging()
        .bucket(&config.source_bucket)
        .key(&key)
        .send()
        .await
    {
        Ok(t) => pass(
            name,
            format!(
                "s3://{}/{key} and its {} tag(s)",
                config.source_bucket,
                t.tag_set().len()
            ),
        ),
        Err(e) => fail(
            name,
            message(&e),
            format!(
                "cannot read the tags of s3://{}/{key}",
                config.source_bucket
            ),
            format!(
                "allow: {}",
                statement(permissions::SOURCE_OBJECT_ACTIONS, &objects)
            ),
        ),
    }
}

async fn source_key_check(sdk: &SdkConfig, key: Option<&str>, bucket: &str) -> Check {
    let name = "source KMS key usable";
    let Some(key) = key else {
        return pass(name, "no customer managed key on the source bucket");
    };
    let kms = aws_sdk_kms::Client::new(sdk);
    match kms.describe_key().key_id(key).send().await {
        Ok(out) => {
            let state = out.key_metadata().and_then(|m| m.key_state()).cloned();
            if state == Some(KeyState::Enabled) {
                pass(name, format!("{key}: Enabled"))
            } else {
                fail(
                    name,
                    format!("{key}: {}", state.map(|s| s.as_str().to_owned()).unwrap_or_default()),
                    format!("the source key {key} is not enabled: objects of s3://{bucket} cannot be read"),
                    format!("aws kms enable-key --key-id {key} (source account)"),
                )
            }
        }
        Err(e) => fail(
            name,
            message(&e),
            format!("cannot describe the source key {key}"),
            format!(
                "allow the function role: {{\"Effect\":\"Allow\",\"Action\":[\"kms:Decrypt\",\"kms:DescribeKey\"],\"Resource\":\"{key}\",\"Condition\":{{\"StringEquals\":{{\"kms:ViaService\":\"s3.<region>.amazonaws.com\"}}}}}}"
            ),
        ),
    }
}

/// Writes a tiny object with SSE-KMS under the reserved prefix, reads back its key, and
/// deletes that exact version, so nothing is left behind.
async fn probe(clients: &Clients, config: &Config, key_arn: &str, dst_arn: &str) -> Check {
    let name = "probe write with the destination key";
    let key = format!(
        "{}probe-{}",
        permissions::probe_prefix(&config.destination_prefix),
        replicator_core::copy::now_ms()
    );
    let put = clients
        .destination
        .put_object()
        .bucket(&config.destination_bucket)
        .key(&key)
        .body(b"s3-fallback-replicator doctor probe".to_vec().into())
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&config.destination_kms_key_id)
        .bucket_key_enabled(config.bucket_key_enabled)
        .send()
        .await;
    let version = match put {
        Ok(out) => out.version_id().map(str::to_owned),
        Err(e) => {
            return fail(
                name,
                message(&e),
                format!(
                    "the destination role cannot write s3://{}/{key} with SSE-KMS",
                    config.destination_bucket
                ),
                format!(
                    "allow the destination role: {} and {}",
                    statement(
                        permissions::DESTINATION_OBJECT_ACTIONS,
                        &format!("{dst_arn}/{}*", config.destination_prefix)
                    ),
                    statement(permissions::DESTINATION_KEY_ACTIONS, key_arn)
                ),
            )
        }
    };
    let head = clients
        .destination
        .head_object()
        .bucket(&config.destination_bucket)
        .key(&key)
        .send()
        .await;
    let written_with = head
        .as_ref()
        .ok()
        .and_then(|h| h.ssekms_key_id().map(str::to_owned));
    let mut delete = clients
        .destination
        .delete_object()
        .bucket(&config.destination_bucket)
        .key(&key);
    if let Some(v) = &version {
        delete = delete.version_id(v);
    }
    let deleted = delete.send().await;
    let matches = written_with
        .as_deref()
        .is_some_and(|k| k == key_arn || k == config.destination_kms_key_id);
    match (matches, deleted) {
        (true, Ok(_)) => pass(name, format!("wrote, read back SSE-KMS key {key_arn}, deleted s3://{}/{key}", config.destination_bucket)),
        (false, _) => fail(
            name,
            format!("the probe was encrypted with {:?}, not {key_arn}", written_with),
            "S3 did not use the configured key (a bucket policy or default encryption may override it)",
            "check the destination bucket policy for conditions on s3:x-amz-server-side-encryption-aws-kms-key-id",
        ),
        (true, Err(e)) => fail(
            name,
            message(&e),
            format!("the probe s3://{}/{key} could not be deleted and is left behind", config.destination_bucket),
            format!(
                "allow the destination role: {}",
                statement(permissions::DESTINATION_PROBE_ACTIONS, &format!("{dst_arn}/{}*", permissions::probe_prefix(&config.destination_prefix)))
            ),
        ),
    }
}
