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
    pub deletes: bool,
    /// AUDIT_BUCKET, when the scheduled audit writes its evidence to a bucket of its own.
    pub audit_bucket: Option<String>,
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
pub fn bundle(config: &Config, options: &Options) -> Result<Vec<(&'static str, Value)>, String> {
    let partition = partition_of(&config.destination.role_arn);
    let src_bucket = format!("arn:{partition}:s3:::{}", config.source.bucket);
    let dst_bucket = format!("arn:{partition}:s3:::{}", config.destination.bucket);
    let configured = &config.destination.kms_key_id;
    let dst_key = match &options.destination_key_arn {
        Some(k) if is_key_arn(k) => k.clone(),
        Some(k) => return Err(format!("--destination-kms-key-arn {k} is not a key ARN (arn:…:kms:REGION:ACCOUNT:key/ID)")),
        None if is_key_arn(configured) => configured.clone(),
        None => return Err(format!(
            "DESTINATION_KMS_KEY_ID {configured} is an alias ARN, which as an IAM Resource grants nothing on the key: pass --destination-kms-key-arn with the key it names (aws kms describe-key --key-id {configured} --query KeyMetadata.Arn, in the destination account)"
        )),
    };
    if let Some(k) = options.source_key_arn.as_deref().filter(|k| !is_key_arn(k)) {
        return Err(format!(
            "--source-kms-key-arn {k} is not a key ARN (arn:…:kms:REGION:ACCOUNT:key/ID)"
        ));
    }

    let mut source_statements = vec![
        json!({"Sid": "ReadSourceObjects", "Effect": "Allow", "Action": SOURCE_OBJECT_ACTIONS,
               "Resource": format!("{src_bucket}/{}*", config.source.key_prefix)}),
        json!({"Sid": "ListSource", "Effect": "Allow", "Action": SOURCE_BUCKET_ACTIONS, "Resource": src_bucket}),
        json!({"Sid": "AssumeDestinationRole", "Effect": "Allow", "Action": "sts:AssumeRole",
               "Resource": config.destination.role_arn}),
    ];
    if let Some(key) = &options.source_key_arn {
        let region = region_of(key).unwrap_or("REGION");
        source_statements.push(json!({
            "Sid": "DecryptSourceThroughS3", "Effect": "Allow", "Action": SOURCE_KEY_ACTIONS, "Resource": key,
            "Condition": {"StringEquals": {"kms:ViaService": s3_via_service(region)}}
        }));
    }

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
    if options.deletes {
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
        ("source account: the functions' role policy", policy(source_statements)),
        ("destination account: the destination role's trust policy", policy(vec![trust])),
        ("destination account: the destination role's permissions", policy(destination_statements)),
        (
            "destination account: key policy statements for the replica key (only if the key policy does not enable IAM policies)",
            json!([
                {"Sid": "S3FallbackReplicatorRoleThroughS3", "Effect": "Allow", "Principal": {"AWS": role},
                 "Action": DESTINATION_KEY_ACTIONS, "Resource": "*", "Condition": via_s3},
                {"Sid": "S3FallbackReplicatorRoleDescribe", "Effect": "Allow", "Principal": {"AWS": role},
                 "Action": DESTINATION_KEY_DESCRIBE_ACTIONS, "Resource": "*"},
            ]),
        ),
        (
            "destination account: bucket policy denying requests without TLS",
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
