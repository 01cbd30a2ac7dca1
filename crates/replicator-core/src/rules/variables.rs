//! The single-destination variables as one rule: `DESTINATION_*`, `KEY_PREFIX`,
//! `REPLICATE_DELETES` and `SERVER_SIDE_COPY` mean exactly the rule
//!
//! ```text
//! {"ID": "environment", "Priority": 0, "Status": "Enabled",
//!  "Filter": {"Prefix": KEY_PREFIX},
//!  "DeleteMarkerReplication": {"Status": REPLICATE_DELETES},
//!  "Destination": {"Bucket": "arn:aws:s3:::" + DESTINATION_BUCKET,
//!                  "Account": DESTINATION_ACCOUNT_ID, "StorageClass": DESTINATION_STORAGE_CLASS,
//!                  "EncryptionConfiguration": {"ReplicaKmsKeyID": DESTINATION_KMS_KEY_ID},
//!                  "FallbackReplicator": {"RoleArn": DESTINATION_ROLE_ARN,
//!                      "ExternalId": DESTINATION_EXTERNAL_ID, "Region": DESTINATION_REGION,
//!                      "KeyPrefix": DESTINATION_PREFIX, "ServerSideCopy": SERVER_SIDE_COPY}}}
//! ```
//!
//! so the engine reads one [`RuleSet`] whichever form the configuration takes. Errors here
//! name the variable, as every configuration error does.

use super::{Destination, Filter, ObjectTags, ReplicaStorageClass, Rule, RuleSet, ServerSideCopy};
use crate::config::env::{invalid, Env};
use crate::config::{validate, ConfigError};

/// The rule's ID in logs and errors.
pub const VARIABLES_RULE_ID: &str = "environment";

/// The variables that make up the one rule; none may be set beside `REPLICATION_RULES`.
pub const SINGLE_DESTINATION_VARIABLES: &[&str] = &[
    "DESTINATION_BUCKET",
    "DESTINATION_ROLE_ARN",
    "DESTINATION_EXTERNAL_ID",
    "DESTINATION_KMS_KEY_ID",
    "DESTINATION_REGION",
    "DESTINATION_ACCOUNT_ID",
    "DESTINATION_PREFIX",
    "DESTINATION_STORAGE_CLASS",
    "KEY_PREFIX",
    "REPLICATE_DELETES",
    "SERVER_SIDE_COPY",
];

impl RuleSet {
    /// The one rule the single-destination variables describe.
    pub fn from_variables<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let bucket = env.required("DESTINATION_BUCKET", "an S3 bucket name")?;
        validate::bucket_name("DESTINATION_BUCKET", &bucket)?;
        let role_arn = env.required(
            "DESTINATION_ROLE_ARN",
            "an IAM role ARN such as arn:aws:iam::111122223333:role/replicator-destination",
        )?;
        let role_account = validate::role_arn("DESTINATION_ROLE_ARN", &role_arn)?;
        let external_id = env.get("DESTINATION_EXTERNAL_ID");
        if let Some(id) = &external_id {
            validate::external_id("DESTINATION_EXTERNAL_ID", id)?;
        }
        let kms_key_id = env.required(
            "DESTINATION_KMS_KEY_ID",
            "a KMS key ARN or alias ARN in the destination account",
        )?;
        validate::kms_key("DESTINATION_KMS_KEY_ID", &kms_key_id)?;
        let region = env.get("DESTINATION_REGION");
        if let Some(r) = &region {
            validate::region("DESTINATION_REGION", r)?;
        }
        let account_id = match env.get("DESTINATION_ACCOUNT_ID") {
            Some(id) => {
                validate::account_id("DESTINATION_ACCOUNT_ID", &id)?;
                id
            }
            None => role_account,
        };
        let key_prefix = env.get("DESTINATION_PREFIX").unwrap_or_default();
        validate::key_prefix("DESTINATION_PREFIX", &key_prefix)?;
        let source_prefix = env.get("KEY_PREFIX").unwrap_or_default();
        validate::key_prefix("KEY_PREFIX", &source_prefix)?;
        let server_side_copy = env.choice(
            "SERVER_SIDE_COPY",
            ServerSideCopy::Auto,
            &[("auto", ServerSideCopy::Auto), ("off", ServerSideCopy::Off)],
            "auto or off",
        )?;
        Ok(Self {
            rules: vec![Rule {
                id: VARIABLES_RULE_ID.to_owned(),
                priority: 0,
                enabled: true,
                filter: Filter {
                    prefix: source_prefix,
                    tags: ObjectTags::new(),
                },
                delete_markers: env.flag("REPLICATE_DELETES", false)?,
                destination: Destination {
                    bucket,
                    account_id,
                    kms_key_id,
                    storage_class: storage_class(env)?,
                    role_arn,
                    external_id,
                    region,
                    key_prefix,
                    server_side_copy,
                },
            }],
        })
    }
}

fn storage_class<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<ReplicaStorageClass, ConfigError> {
    let Some(value) = env.get("DESTINATION_STORAGE_CLASS") else {
        return Ok(ReplicaStorageClass::BucketDefault);
    };
    ReplicaStorageClass::parse(&value).ok_or_else(|| {
        invalid(
            "DESTINATION_STORAGE_CLASS",
            &value,
            &ReplicaStorageClass::expected(),
        )
    })
}
