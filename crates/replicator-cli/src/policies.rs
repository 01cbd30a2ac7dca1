//! `replicator policies`: every policy both accounts need, generated from the configuration
//! and from [`replicator_core::permissions`], the one list of actions the engine uses.
//!
//! The trust policy has the same shape as deploy/destination-account.yaml's: the source
//! account as principal, narrowed to the functions' role by `aws:PrincipalArn`, with the
//! ExternalId — printed as a placeholder unless asked for, since this output ends up in
//! logs. KMS grants name key ARNs (an alias ARN as an IAM resource grants nothing on the
//! key) and are conditioned on S3 in the key's own region.

use replicator_core::permissions::*;
use replicator_core::Config;
use serde_json::{json, Value};

/// What the configuration alone does not say.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The source functions' role (`FunctionRoleArn` of the source stack).
    pub function_role_arn: Option<String>,
    /// The source bucket's KMS key, if SSE-KMS.
    pub source_key_arn: Option<String>,
    /// The destination key's ARN, when DESTINATION_KMS_KEY_ID is an alias ARN.
    pub destination_key_arn: Option<String>,
    /// Print the ExternalId itself, not a placeholder.
    pub show_external_id: bool,
    /// SYNC_DELETE: the sync puts delete markers on replicas whose source is gone (every
    /// destination's rules may also ask for them).
    pub deletes: bool,
    /// AUDIT_BUCKET, when the scheduled audit writes its evidence to a bucket of its own.
    pub audit_bucket: Option<String>,
    /// REPLICATION_RULES, when the functions read it from SSM or S3 at cold start.
    pub rules_location: Option<replicator_core::rules::load::Source>,
}

pub const EXTERNAL_ID_PLACEHOLDER: &str =
    "<DESTINATION_EXTERNAL_ID: printed only with --show-external-id>";

fn is_key_arn(arn: &str) -> bool {
    arn.split(':').nth(5).is_some_and(|r| r.starts_with("key/"))
}

/// The region field of an ARN.
fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The sections, in the order they are printed: (title, document); or why they cannot be.
/// One configuration per destination ([`Config::per_destination`]): the functions' role
/// policy covers them all, and each destination account gets its own sections.
pub fn bundle(configs: &[Config], options: &Options) -> Result<Vec<(String, Value)>, String> {
    if configs.is_empty() {
        return Err("no destination is configured".into());
    }
    if configs.len() > 1 && options.destination_key_arn.is_some() {
        return Err(format!(
            "--destination-kms-key-arn names one key, and the rules name {} destinations: give each rule its key's ARN (Destination.EncryptionConfiguration.ReplicaKmsKeyID)",
            configs.len()
        ));
    }
    if let Some(k) = options.source_key_arn.as_deref().filter(|k| !is_key_arn(k)) {
        return Err(format!(
            "--source-kms-key-arn {k} is not a key ARN (arn:…:kms:REGION:ACCOUNT:key/ID)"
        ));
    }
    let mut sections = vec![(
        "source account: the functions' role policy".to_owned(),
        policy(source_statements(configs, options)),
    )];
    for config in configs {
        let named = |title: &str| match configs.len() {
            1 => format!("destination account: {title}"),
            _ => format!(
                "destination s3://{} (account {}): {title}",
                config.destination.bucket, config.destination.account_id
            ),
        };
        for (title, doc) in destination_sections(config, options)? {
            sections.push((named(title), doc));
        }
    }
    Ok(sections)
}

/// The functions' role policy: read the source under every rule's prefix, assume every
/// destination's role.
fn source_statements(configs: &[Config], options: &Options) -> Vec<Value> {
    let first = &configs[0];
    let partition = partition_of(&first.destination.role_arn);
    let src_bucket = format!("arn:{partition}:s3:::{}", first.source.bucket);
    let one_or_many = |mut items: Vec<String>| {
        items.dedup();
        match items.as_slice() {
            [one] => json!(one),
            _ => json!(items),
        }
    };
    let mut prefixes: Vec<String> = configs
        .iter()
        .map(|c| c.source.key_prefix.clone())
        .collect();
    prefixes.sort();
    // A prefix another one starts with adds nothing.
    let prefixes: Vec<String> = prefixes
        .iter()
        .filter(|p| {
            !prefixes
                .iter()
                .any(|q| q != *p && p.starts_with(q.as_str()))
        })
        .map(|p| format!("{src_bucket}/{p}*"))
        .collect();
    let roles: Vec<String> = configs
        .iter()
        .map(|c| c.destination.role_arn.clone())
        .collect();
    let mut statements = vec![
        json!({"Sid": "ReadSourceObjects", "Effect": "Allow", "Action": SOURCE_OBJECT_ACTIONS,
               "Resource": one_or_many(prefixes)}),
        json!({"Sid": "ListSource", "Effect": "Allow", "Action": SOURCE_BUCKET_ACTIONS, "Resource": src_bucket}),
        json!({"Sid": "AssumeDestinationRole", "Effect": "Allow", "Action": "sts:AssumeRole",
               "Resource": one_or_many(roles)}),
    ];
    if let Some(statement) = read_rules_statement(partition, options) {
        statements.push(statement);
    }
    if let Some(key) = &options.source_key_arn {
        let region = region_of(key).unwrap_or("REGION");
        statements.push(json!({
            "Sid": "DecryptSourceThroughS3", "Effect": "Allow", "Action": SOURCE_KEY_ACTIONS, "Resource": key,
            "Condition": {"StringEquals": {"kms:ViaService": s3_via_service(region)}}
        }));
    }
    statements
}

/// Reading REPLICATION_RULES where it is kept (the functions' own account): the SSM
/// parameter, or the S3 object.
fn read_rules_statement(partition: &str, options: &Options) -> Option<Value> {
    use replicator_core::rules::load::Source;
    let account = options
        .function_role_arn
        .as_deref()
        .and_then(|arn| arn.split(':').nth(4))
        .unwrap_or("SOURCE_ACCOUNT_ID");
    let (action, resource) = match options.rules_location.as_ref()? {
        Source::Ssm { name } => (
            "ssm:GetParameter",
            format!(
                "arn:{partition}:ssm:REGION:{account}:parameter/{}",
                name.trim_start_matches('/')
            ),
        ),
        Source::S3 { bucket, key } => (
            "s3:GetObject",
            format!("arn:{partition}:s3:::{bucket}/{key}"),
        ),
        Source::Inline(_) => return None,
    };
    Some(
        json!({"Sid": "ReadReplicationRules", "Effect": "Allow", "Action": action, "Resource": resource}),
    )
}

/// One destination account's sections, titled without the account.
fn destination_sections(
    config: &Config,
    options: &Options,
) -> Result<Vec<(&'static str, Value)>, String> {
    let partition = partition_of(&config.destination.role_arn);
    let dst_bucket = format!("arn:{partition}:s3:::{}", config.destination.bucket);
    let configured = &config.destination.kms_key_id;
    let dst_key = match &options.destination_key_arn {
        Some(k) if is_key_arn(k) => k.clone(),
        Some(k) => return Err(format!("--destination-kms-key-arn {k} is not a key ARN (arn:…:kms:REGION:ACCOUNT:key/ID)")),
        None if is_key_arn(configured) => configured.clone(),
        None => return Err(format!(
            "DESTINATION_KMS_KEY_ID {configured} (of s3://{}) is an alias ARN, which as an IAM Resource grants nothing on the key: pass --destination-kms-key-arn with the key it names (aws kms describe-key --key-id {configured} --query KeyMetadata.Arn, in the destination account)",
            config.destination.bucket
        )),
    };

    let function_role = options.function_role_arn.clone().unwrap_or_else(|| {
        "<FUNCTION_ROLE_ARN: the FunctionRoleArn output of the source stack>".into()
    });
    let source_account = function_role
        .split(':')
        .nth(4)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .or_else(|| config.source.account_id.clone())
        .unwrap_or_else(|| "<SOURCE_ACCOUNT_ID>".into());
    let mut condition = json!({"ArnEquals": {"aws:PrincipalArn": function_role}});
    if let Some(id) = &config.destination.external_id {
        let shown = if options.show_external_id {
            id.as_str()
        } else {
            EXTERNAL_ID_PLACEHOLDER
        };
        condition["StringEquals"] = json!({"sts:ExternalId": shown});
    }
    let trust = json!({"Sid": "SourceFunctions", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:{partition}:iam::{source_account}:root")},
        "Action": "sts:AssumeRole", "Condition": condition});

    let key_region = region_of(&dst_key).unwrap_or("REGION");
    let via_s3 = json!({"StringEquals": {"kms:ViaService": s3_via_service(key_region)}});
    let replicas = format!("{dst_bucket}/{}*", config.destination.prefix);
    let mut destination_statements = vec![
        json!({"Sid": "WriteAndReadReplicas", "Effect": "Allow", "Action": DESTINATION_OBJECT_ACTIONS, "Resource": replicas}),
        json!({"Sid": "ListAndInspectBucket", "Effect": "Allow", "Action": DESTINATION_BUCKET_ACTIONS, "Resource": dst_bucket}),
        json!({"Sid": "RemoveDoctorProbes", "Effect": "Allow", "Action": DESTINATION_PROBE_ACTIONS,
               "Resource": format!("{dst_bucket}/{}*", probe_prefix(&config.destination.prefix))}),
        json!({"Sid": "RemoveUploadManifests", "Effect": "Allow", "Action": DESTINATION_STATE_ACTIONS,
               "Resource": format!("{dst_bucket}/{}*", uploads_prefix(&config.destination.prefix))}),
    ];
    if let Some(audit) = &options.audit_bucket {
        destination_statements.push(json!({"Sid": "WriteAuditEvidence", "Effect": "Allow",
            "Action": AUDIT_EVIDENCE_ACTIONS,
            "Resource": format!("arn:{partition}:s3:::{audit}/{}*", audit_prefix(&config.destination.prefix))}));
    }
    // Delete markers on replicas: the copier's (the rule's, or REPLICATE_DELETES), on
    // lifecycle expirations, and the sync's.
    let deletes = options.deletes
        || config.destination.replicate_deletes
        || config.destination.replicate_expirations;
    if deletes {
        destination_statements.push(json!({"Sid": "DeleteMarkersOnReplicas", "Effect": "Allow",
            "Action": DESTINATION_DELETE_ACTIONS, "Resource": replicas}));
    }
    destination_statements.extend([
        json!({"Sid": "UseReplicaKeyThroughS3", "Effect": "Allow", "Action": DESTINATION_KEY_ACTIONS,
               "Resource": dst_key, "Condition": via_s3}),
        json!({"Sid": "DescribeReplicaKey", "Effect": "Allow", "Action": DESTINATION_KEY_DESCRIBE_ACTIONS, "Resource": dst_key}),
        json!({"Sid": "ReadOwnTrustPolicy", "Effect": "Allow", "Action": DESTINATION_ROLE_ACTIONS,
               "Resource": config.destination.role_arn}),
    ]);

    let role = &config.destination.role_arn;
    Ok(vec![
        ("the destination role's trust policy", policy(vec![trust])),
        ("the destination role's permissions", policy(destination_statements)),
        (
            "key policy statements for the replica key (only if the key policy does not enable IAM policies)",
            json!([
                {"Sid": "S3FallbackReplicatorRoleThroughS3", "Effect": "Allow", "Principal": {"AWS": role},
                 "Action": DESTINATION_KEY_ACTIONS, "Resource": "*", "Condition": via_s3},
                {"Sid": "S3FallbackReplicatorRoleDescribe", "Effect": "Allow", "Principal": {"AWS": role},
                 "Action": DESTINATION_KEY_DESCRIBE_ACTIONS, "Resource": "*"},
            ]),
        ),
        (
            "bucket policy denying requests without TLS",
            policy(vec![json!({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [dst_bucket.clone(), format!("{dst_bucket}/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]),
        ),
    ])
}

fn policy(statements: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn partition_of(arn: &str) -> &str {
    arn.split(':').nth(1).unwrap_or("aws")
}
