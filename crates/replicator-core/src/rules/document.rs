//! The `REPLICATION_RULES` document as written: the JSON form of PutBucketReplication's
//! `ReplicationConfiguration` (the AWS CLI's `--replication-configuration` shape), field for
//! field, plus this replicator's own settings in each `Destination.FallbackReplicator`.
//!
//! Every field S3 defines is accepted, so a configuration read from GetBucketReplication
//! round-trips; unknown fields are errors anywhere. Nothing is checked here but the shape:
//! [`super::validate`] turns a document into a [`RuleSet`](super::RuleSet).
//!
//! References (Amazon S3 API Reference): "ReplicationConfiguration", "ReplicationRule",
//! "ReplicationRuleFilter", "ReplicationRuleAndOperator", "Destination",
//! "EncryptionConfiguration", "DeleteMarkerReplication", "SourceSelectionCriteria",
//! "ExistingObjectReplication", "ReplicationTime", "Metrics", "AccessControlTranslation".

use serde::{Deserialize, Serialize};

use super::{RuleRef, RulesError};

/// `ReplicationConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Document {
    /// The role native replication assumes. Accepted so a native document loads as it is;
    /// this replicator assumes each destination's `FallbackReplicator.RoleArn` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub rules: Vec<RuleDoc>,
}

/// `Enabled` or `Disabled`, as every `Status` in the configuration is spelt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Enabled,
    Disabled,
}

/// `ReplicationRule`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RuleDoc {
    #[serde(rename = "ID", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    pub status: Status,
    /// The V1 form's rule-level prefix (S3 still accepts it; deprecated in the SDKs). A rule
    /// has this or `Filter`, never both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_marker_replication: Option<DeleteMarkerReplicationDoc>,
    pub destination: DestinationDoc,
    /// Native only (S3 no longer supports it; existing objects go through Batch Replication
    /// there, through the sync here). Accepted, not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_object_replication: Option<StatusDoc>,
    /// Native only: SSE-KMS source objects and replica modification sync. Accepted, not
    /// applied: this replicator reads every source object with the function's own
    /// credentials, whatever its encryption, and never writes back to the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_selection_criteria: Option<SourceSelectionCriteriaDoc>,
}

/// `ReplicationRuleFilter`: exactly one of `Prefix`, `Tag` and `And`, or none (all objects).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FilterDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<TagDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and: Option<AndDoc>,
}

/// `ReplicationRuleAndOperator`: a prefix and tags, all of which must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AndDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<TagDoc>>,
}

/// `Tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct TagDoc {
    pub key: String,
    pub value: String,
}

/// `DeleteMarkerReplication`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteMarkerReplicationDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// A container holding only a `Status` (`ExistingObjectReplication`,
/// `SseKmsEncryptedObjects`, `ReplicaModifications`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct StatusDoc {
    pub status: Status,
}

/// `SourceSelectionCriteria`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SourceSelectionCriteriaDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse_kms_encrypted_objects: Option<StatusDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_modifications: Option<StatusDoc>,
}

/// `Destination`, with this replicator's settings in `FallbackReplicator`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DestinationDoc {
    /// The bucket's ARN, `arn:aws:s3:::NAME`.
    pub bucket: String,
    /// The bucket owner's account id (ExpectedBucketOwner on every request there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_configuration: Option<EncryptionConfigurationDoc>,
    /// Native only: replicas written here are always owned by the destination account
    /// (the destination role writes them). Accepted, not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_translation: Option<AccessControlTranslationDoc>,
    /// Native only (S3 Replication Time Control). Accepted, not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_time: Option<ReplicationTimeDoc>,
    /// Native only (replication metrics and events). Accepted, not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsDoc>,
    /// This replicator's own settings for the destination; not part of S3's schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_replicator: Option<FallbackReplicatorDoc>,
}

/// `EncryptionConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfigurationDoc {
    #[serde(
        rename = "ReplicaKmsKeyID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub replica_kms_key_id: Option<String>,
}

/// `AccessControlTranslation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AccessControlTranslationDoc {
    pub owner: String,
}

/// `ReplicationTime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ReplicationTimeDoc {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<MinutesDoc>,
}

/// `Metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct MetricsDoc {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_threshold: Option<MinutesDoc>,
}

/// `ReplicationTimeValue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct MinutesDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<i32>,
}

/// Whether copies to a destination may run inside S3 (CopyObject / UploadPartCopy when the
/// destination role can read the source), as `SERVER_SIDE_COPY` says for one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerSideCopy {
    #[default]
    Auto,
    Off,
}

/// `Destination.FallbackReplicator`: what native replication has no field for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FallbackReplicatorDoc {
    /// The destination account's role this replicator assumes (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// ExternalId for AssumeRole; a shared secret, never printed by `Debug` of the rule set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The destination bucket's region (default: the function's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Prepended to every replica key: empty, or ending in `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_copy: Option<ServerSideCopy>,
}

impl Document {
    /// Reads a document's JSON text. A malformed rule is named by its `ID` (or its place),
    /// so an unknown field deep in rule 40 says which rule it is in.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let syntax = |e: serde_json::Error| RulesError::Syntax {
            message: e.to_string(),
        };
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(syntax)?;
        let rules = match value.as_object_mut().map(|o| o.remove("Rules")) {
            Some(Some(serde_json::Value::Array(rules))) => rules,
            Some(Some(_)) => {
                return Err(RulesError::Syntax {
                    message: "Rules must be a list of rules".into(),
                })
            }
            Some(None) => {
                return Err(RulesError::Syntax {
                    message: "missing field `Rules`".into(),
                })
            }
            None => {
                return Err(RulesError::Syntax {
                    message: "expected a JSON object with `Rules`".into(),
                })
            }
        };
        value["Rules"] = serde_json::Value::Array(Vec::new());
        let mut doc: Document = serde_json::from_value(value).map_err(syntax)?;
        for (i, rule) in rules.into_iter().enumerate() {
            let name = match rule.get("ID").and_then(|id| id.as_str()) {
                Some(id) if !id.is_empty() => RuleRef::Id(id.to_owned()),
                _ => RuleRef::Index(i + 1),
            };
            let parsed = serde_json::from_value(rule).map_err(|e| RulesError::Shape {
                rule: name,
                message: e.to_string(),
            })?;
            doc.rules.push(parsed);
        }
        Ok(doc)
    }

    /// Pretty JSON, as `replicator rules import` prints it.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a document always serialises")
    }

    /// The document for a configuration read with GetBucketReplication: every field as S3
    /// answered it, and no `FallbackReplicator` (native has nothing to fill it from).
    pub fn from_native(native: &aws_sdk_s3::types::ReplicationConfiguration) -> Self {
        Self {
            role: Some(native.role().to_owned()).filter(|r| !r.is_empty()),
            rules: native.rules().iter().map(RuleDoc::from_native).collect(),
        }
    }
}

fn status(enabled: bool) -> Status {
    if enabled {
        Status::Enabled
    } else {
        Status::Disabled
    }
}

fn status_doc(value: &str) -> StatusDoc {
    StatusDoc {
        status: status(value == "Enabled"),
    }
}

fn tag_doc(t: &aws_sdk_s3::types::Tag) -> TagDoc {
    TagDoc {
        key: t.key().to_owned(),
        value: t.value().to_owned(),
    }
}

impl RuleDoc {
    fn from_native(r: &aws_sdk_s3::types::ReplicationRule) -> Self {
        #[allow(deprecated)] // the V1 rule-level prefix: still what S3 answers for V1 rules
        let prefix = r.prefix().map(str::to_owned);
        Self {
            id: r.id().map(str::to_owned),
            priority: r.priority().and_then(|p| u32::try_from(p).ok()),
            status: status(r.status().as_str() == "Enabled"),
            prefix,
            filter: r.filter().map(|f| FilterDoc {
                prefix: f.prefix().map(str::to_owned),
                tag: f.tag().map(tag_doc),
                and: f.and().map(|a| AndDoc {
                    prefix: a.prefix().map(str::to_owned),
                    tags: Some(a.tags().iter().map(tag_doc).collect()),
                }),
            }),
            delete_marker_replication: r.delete_marker_replication().map(|d| {
                DeleteMarkerReplicationDoc {
                    status: d.status().map(|s| status(s.as_str() == "Enabled")),
                }
            }),
            destination: r
                .destination()
                .map(DestinationDoc::from_native)
                .unwrap_or_else(|| DestinationDoc::named(String::new())),
            existing_object_replication: r
                .existing_object_replication()
                .map(|e| status_doc(e.status().as_str())),
            source_selection_criteria: r.source_selection_criteria().map(|s| {
                SourceSelectionCriteriaDoc {
                    sse_kms_encrypted_objects: s
                        .sse_kms_encrypted_objects()
                        .map(|e| status_doc(e.status().as_str())),
                    replica_modifications: s
                        .replica_modifications()
                        .map(|m| status_doc(m.status().as_str())),
                }
            }),
        }
    }
}

impl DestinationDoc {
    /// A destination naming only its bucket ARN.
    pub fn named(bucket_arn: String) -> Self {
        Self {
            bucket: bucket_arn,
            account: None,
            storage_class: None,
            encryption_configuration: None,
            access_control_translation: None,
            replication_time: None,
            metrics: None,
            fallback_replicator: None,
        }
    }

    fn from_native(d: &aws_sdk_s3::types::Destination) -> Self {
        let minutes = |v: &aws_sdk_s3::types::ReplicationTimeValue| MinutesDoc {
            minutes: v.minutes(),
        };
        Self {
            account: d.account().map(str::to_owned),
            storage_class: d.storage_class().map(|s| s.as_str().to_owned()),
            encryption_configuration: d.encryption_configuration().map(|e| {
                EncryptionConfigurationDoc {
                    replica_kms_key_id: e.replica_kms_key_id().map(str::to_owned),
                }
            }),
            access_control_translation: d.access_control_translation().map(|a| {
                AccessControlTranslationDoc {
                    owner: a.owner().as_str().to_owned(),
                }
            }),
            replication_time: d.replication_time().map(|t| ReplicationTimeDoc {
                status: status(t.status().as_str() == "Enabled"),
                time: t.time().map(minutes),
            }),
            metrics: d.metrics().map(|m| MetricsDoc {
                status: status(m.status().as_str() == "Enabled"),
                event_threshold: m.event_threshold().map(minutes),
            }),
            ..Self::named(d.bucket().to_owned())
        }
    }
}
