//! `replicator policies`: every policy both accounts need, generated from the configuration
//! and from [`replicator_core::permissions`], the one list of actions the engine uses.

use replicator_core::permissions::*;
use replicator_core::Config;
use serde_json::{json, Value};

/// The sections, in the order they are printed: (title, document).
pub fn bundle(
    config: &Config,
    function_role_arn: &str,
    source_key_arn: Option<&str>,
    deletes: bool,
) -> Vec<(&'static str, Value)> {
    let partition = partition_of(&config.destination.role_arn);
    let src_bucket = format!("arn:{partition}:s3:::{}", config.source.bucket);
    let dst_bucket = format!("arn:{partition}:s3:::{}", config.destination.bucket);
    let region = config
        .destination
        .kms_key_id
        .split(':')
        .nth(3)
        .unwrap_or("REGION")
        .to_owned();

    let mut source_statements = vec![
        json!({"Sid": "ReadSourceObjects", "Effect": "Allow", "Action": SOURCE_OBJECT_ACTIONS,
               "Resource": format!("{src_bucket}/{}*", config.source.key_prefix)}),
        json!({"Sid": "ListSource", "Effect": "Allow", "Action": SOURCE_BUCKET_ACTIONS, "Resource": src_bucket}),
        json!({"Sid": "AssumeDestinationRole", "Effect": "Allow", "Action": "sts:AssumeRole",
               "Resource": config.destination.role_arn}),
    ];
    if let Some(key) = source_key_arn {
        source_statements.push(json!({
            "Sid": "DecryptSourceThroughS3", "Effect": "Allow", "Action": SOURCE_KEY_ACTIONS, "Resource": key,
            "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{region}.amazonaws.com")}}
        }));
    }

    let mut trust_condition = json!({});
    if let Some(id) = &config.destination.external_id {
        trust_condition = json!({"StringEquals": {"sts:ExternalId": id}});
    }
    let mut trust = json!({"Effect": "Allow", "Principal": {"AWS": function_role_arn}, "Action": "sts:AssumeRole"});
    if trust_condition.as_object().is_some_and(|c| !c.is_empty()) {
        trust["Condition"] = trust_condition;
    }

    let replicas = format!("{dst_bucket}/{}*", config.destination.prefix);
    let mut destination_statements = vec![
        json!({"Sid": "WriteAndReadReplicas", "Effect": "Allow", "Action": DESTINATION_OBJECT_ACTIONS, "Resource": replicas}),
        json!({"Sid": "ListAndInspectBucket", "Effect": "Allow", "Action": DESTINATION_BUCKET_ACTIONS, "Resource": dst_bucket}),
        json!({"Sid": "RemoveDoctorProbes", "Effect": "Allow", "Action": DESTINATION_PROBE_ACTIONS,
               "Resource": format!("{dst_bucket}/{}*", probe_prefix(&config.destination.prefix))}),
        json!({"Sid": "RemoveUploadManifests", "Effect": "Allow", "Action": DESTINATION_STATE_ACTIONS,
               "Resource": format!("{dst_bucket}/{}*", uploads_prefix(&config.destination.prefix))}),
    ];
    if deletes {
        destination_statements.push(json!({"Sid": "DeleteMarkersOnReplicas", "Effect": "Allow",
            "Action": DESTINATION_DELETE_ACTIONS, "Resource": replicas}));
    }
    destination_statements.push(
        json!({"Sid": "UseReplicaKey", "Effect": "Allow", "Action": DESTINATION_KEY_ACTIONS,
        "Resource": config.destination.kms_key_id}),
    );

    vec![
        ("source account: the functions' role policy", policy(source_statements)),
        ("destination account: the destination role's trust policy", policy(vec![trust])),
        ("destination account: the destination role's permissions", policy(destination_statements)),
        (
            "destination account: key policy statement for the replica key (only if the key policy does not enable IAM policies)",
            json!({"Sid": "S3FallbackReplicatorRole", "Effect": "Allow",
                   "Principal": {"AWS": config.destination.role_arn}, "Action": DESTINATION_KEY_ACTIONS, "Resource": "*"}),
        ),
        (
            "destination account: bucket policy denying requests without TLS",
            policy(vec![json!({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [dst_bucket.clone(), format!("{dst_bucket}/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]),
        ),
    ]
}

fn policy(statements: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn partition_of(arn: &str) -> &str {
    arn.split(':').nth(1).unwrap_or("aws")
}
