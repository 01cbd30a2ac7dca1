//! A [`Document`] into a [`RuleSet`]: every check native S3 makes when it accepts a
//! configuration that matters here, and this replicator's own (a role to assume, a KMS key
//! ARN). Each error names its rule.
//!
//! Native requirements, from the Amazon S3 API Reference ("ReplicationRule") and the User
//! Guide ("Replication configuration file elements"):
//! - a rule with `Filter` (a V2 rule) needs `Priority` and `DeleteMarkerReplication`;
//! - a `Filter` holds exactly one of `Prefix`, `Tag` and `And` (or nothing: all objects);
//! - a rule whose filter has tags cannot replicate delete markers;
//! - a rule has a `Filter` or the deprecated rule-level `Prefix` (a V1 rule), not both;
//! - IDs are at most 255 characters, prefixes at most 1,024, at most 1,000 rules.
//!
//! This replicator's own rules:
//! - **Every rule has an ID.** S3 makes one up when it is left out; a document here must
//!   say it, so that errors, logs and metrics name a rule that stays the same when rules
//!   are added or reordered. IDs are unique.
//! - **Every rule, enabled or not, is complete** (role, KMS key ARN, bucket ARN): a
//!   disabled rule is one `Status` away from running.
//! - A V1 rule has priority 0 and, when it says nothing about delete markers, replicates
//!   them (as native V1 rules do: User Guide, "Backward compatibility considerations").
//! - Prefixes hold no `*` or `?`: the IAM policies made from them would read wildcards.
//! - **Overlap.** Two enabled rules to the same destination bucket with the same
//!   priority are refused when one object can match both, because which one S3 applies
//!   would then be undefined (the API Reference: "if there are two or more rules with the
//!   same destination bucket, then objects will be replicated according to the rule with
//!   the highest priority"). One object matches both filters exactly when one prefix is a
//!   prefix of the other (the empty prefix of every key) *and* no tag key is required with
//!   two different values (an object has one value per key; tags on different keys can
//!   all be on one object). See [`Filter::overlap`].

use std::collections::HashMap;

use super::document::{
    DestinationDoc, Document, FallbackReplicatorDoc, FilterDoc, RuleDoc, Status, TagDoc,
};
use super::{
    Destination, Filter, ObjectTags, ReplicaStorageClass, Rule, RuleRef, RuleSet, RulesError,
    MAX_RULES,
};
use crate::config::validate as forms;
use crate::config::ConfigError;

/// The longest rule ID and prefix S3 accepts.
pub const MAX_ID_LEN: usize = 255;
pub const MAX_PREFIX_LEN: usize = 1024;

/// What `replicator rules import` writes where native has nothing: `<…>`.
pub fn is_placeholder(value: &str) -> bool {
    value.starts_with('<') && value.ends_with('>')
}

pub(super) fn rule_set(doc: &Document) -> Result<RuleSet, RulesError> {
    if doc.rules.is_empty() {
        return Err(RulesError::NoRules);
    }
    if doc.rules.len() > MAX_RULES {
        return Err(RulesError::TooManyRules {
            count: doc.rules.len(),
        });
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut rules = Vec::with_capacity(doc.rules.len());
    for (i, r) in doc.rules.iter().enumerate() {
        let rule = rule(i + 1, r)?;
        if let Some(first) = seen.get(rule.id.as_str()) {
            return Err(RulesError::DuplicateId {
                id: rule.id.clone(),
                first: *first,
                second: i + 1,
            });
        }
        seen.insert(r.id.as_deref().unwrap_or_default(), i + 1);
        rules.push(rule);
    }
    check_overlaps(&rules)?;
    check_key_prefixes(&rules)?;
    Ok(RuleSet { rules })
}

/// Refuses two rules to one bucket with different `KeyPrefix`es: one source key's replica
/// key must not depend on which rule took it, or two source keys could share one replica
/// key (`logs/a` under `archive/` and `archive/logs/a` under nothing).
pub(super) fn check_key_prefixes(rules: &[Rule]) -> Result<(), RulesError> {
    for (i, a) in rules.iter().enumerate() {
        if let Some(b) = rules[..i].iter().find(|b| {
            b.destination.bucket == a.destination.bucket
                && b.destination.key_prefix != a.destination.key_prefix
        }) {
            return Err(RulesError::Conflict {
                rule: RuleRef::Id(a.id.clone()),
                message: format!(
                    "replicates to bucket {} under KeyPrefix {:?}, and rule {:?} under {:?}: the rules of one destination bucket share its KeyPrefix",
                    a.destination.bucket, a.destination.key_prefix, b.id, b.destination.key_prefix
                ),
            });
        }
    }
    Ok(())
}

/// Refuses two enabled rules to one bucket, with one priority, that one object can match.
pub(super) fn check_overlaps(rules: &[Rule]) -> Result<(), RulesError> {
    let enabled: Vec<&Rule> = rules.iter().filter(|r| r.enabled).collect();
    for (i, a) in enabled.iter().enumerate() {
        for b in &enabled[i + 1..] {
            if a.destination.bucket != b.destination.bucket || a.priority != b.priority {
                continue;
            }
            if let Some(why) = a.filter.overlap(&b.filter) {
                return Err(RulesError::Overlap {
                    first: RuleRef::Id(a.id.clone()),
                    second: RuleRef::Id(b.id.clone()),
                    bucket: a.destination.bucket.clone(),
                    priority: a.priority,
                    why,
                });
            }
        }
    }
    Ok(())
}

impl Filter {
    /// Whether some object matches both filters; if so, why (for the error).
    pub fn overlap(&self, other: &Filter) -> Option<String> {
        let (short, long) = if self.prefix.len() <= other.prefix.len() {
            (&self.prefix, &other.prefix)
        } else {
            (&other.prefix, &self.prefix)
        };
        if !long.starts_with(short.as_str()) {
            return None;
        }
        if self
            .tags
            .iter()
            .any(|(k, v)| other.tags.get(k).is_some_and(|w| w != v))
        {
            return None;
        }
        let keys = if short.is_empty() {
            "every key".to_owned()
        } else if short == long {
            format!("both take keys under {long:?}")
        } else {
            format!("{long:?} is within {short:?}")
        };
        Some(if self.tags.is_empty() && other.tags.is_empty() {
            keys
        } else {
            format!("{keys}, and an object can carry the tags of both")
        })
    }
}

fn rule(index: usize, r: &RuleDoc) -> Result<Rule, RulesError> {
    let name = match r.id.as_deref() {
        Some(id) if !id.is_empty() => RuleRef::Id(id.to_owned()),
        _ => {
            return Err(RulesError::MissingId {
                rule: RuleRef::Index(index),
            })
        }
    };
    let id = r.id.clone().unwrap_or_default();
    let invalid = |field: &'static str, value: &str, expected: &str| RulesError::Invalid {
        rule: name.clone(),
        field,
        value: value.to_owned(),
        expected: expected.to_owned(),
    };
    if id.chars().count() > MAX_ID_LEN {
        return Err(invalid("ID", &id, "at most 255 characters"));
    }
    let v2 = r.filter.is_some();
    let filter = match (&r.filter, &r.prefix) {
        (Some(_), Some(_)) => {
            return Err(RulesError::Conflict {
                rule: name,
                message: "has both Filter and the rule-level Prefix (V1): use Filter.Prefix".into(),
            })
        }
        (Some(f), None) => filter(&name, f)?,
        (None, prefix) => Filter {
            prefix: prefix.clone().unwrap_or_default(),
            tags: ObjectTags::new(),
        },
    };
    check_prefix(&name, "Filter.Prefix", &filter.prefix)?;
    let priority = match (v2, r.priority) {
        (true, Some(p)) => p,
        (true, None) => {
            return Err(RulesError::Missing {
                rule: name,
                field: "Priority",
                why: "a rule with Filter is a V2 rule, and V2 rules have a Priority",
            })
        }
        // A V1 rule need not have one.
        (false, p) => p.unwrap_or(0),
    };
    let delete_markers = match (&r.delete_marker_replication, v2) {
        (Some(d), _) => d.status == Some(Status::Enabled),
        (None, true) => {
            return Err(RulesError::Missing {
                rule: name,
                field: "DeleteMarkerReplication",
                why: "a rule with Filter must say whether delete markers are replicated",
            })
        }
        (None, false) => true,
    };
    if delete_markers && !filter.tags.is_empty() {
        return Err(RulesError::Conflict {
            rule: name,
            message: "filters on tags and replicates delete markers: S3 does not support \
                      delete marker replication for tag-based rules (set \
                      DeleteMarkerReplication.Status to Disabled)"
                .into(),
        });
    }
    let destination = destination(&name, &r.destination)?;
    Ok(Rule {
        id,
        priority,
        enabled: r.status == Status::Enabled,
        filter,
        delete_markers,
        destination,
    })
}

fn check_prefix(rule: &RuleRef, field: &'static str, prefix: &str) -> Result<(), RulesError> {
    if prefix.len() > MAX_PREFIX_LEN || prefix.contains(['*', '?']) {
        return Err(RulesError::Invalid {
            rule: rule.clone(),
            field,
            value: prefix.to_owned(),
            expected: "a key prefix of at most 1,024 bytes without '*' or '?' (IAM policies \
                       made from it would read them as wildcards)"
                .into(),
        });
    }
    Ok(())
}

fn filter(rule: &RuleRef, f: &FilterDoc) -> Result<Filter, RulesError> {
    let given = [f.prefix.is_some(), f.tag.is_some(), f.and.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given > 1 {
        return Err(RulesError::Conflict {
            rule: rule.clone(),
            message: "Filter holds more than one of Prefix, Tag and And: use And for a prefix \
                      and tags together"
                .into(),
        });
    }
    let tags = |list: &[TagDoc]| -> Result<ObjectTags, RulesError> {
        let mut tags = ObjectTags::new();
        for t in list {
            if t.key.is_empty() {
                return Err(RulesError::Invalid {
                    rule: rule.clone(),
                    field: "Filter tag Key",
                    value: String::new(),
                    expected: "a non-empty tag key".into(),
                });
            }
            if tags.insert(t.key.clone(), t.value.clone()).is_some() {
                return Err(RulesError::Conflict {
                    rule: rule.clone(),
                    message: format!("Filter.And names tag key {:?} twice", t.key),
                });
            }
        }
        Ok(tags)
    };
    Ok(match (&f.prefix, &f.tag, &f.and) {
        (Some(p), _, _) => Filter {
            prefix: p.clone(),
            tags: ObjectTags::new(),
        },
        (_, Some(t), _) => Filter {
            prefix: String::new(),
            tags: tags(std::slice::from_ref(t))?,
        },
        (_, _, Some(a)) => Filter {
            prefix: a.prefix.clone().unwrap_or_default(),
            tags: tags(a.tags.as_deref().unwrap_or_default())?,
        },
        _ => Filter::default(),
    })
}

/// A check from [`crate::config::validate`] for a field of this rule.
fn form<T>(
    rule: &RuleRef,
    field: &'static str,
    value: &str,
    check: impl FnOnce(&'static str, &str) -> Result<T, ConfigError>,
) -> Result<T, RulesError> {
    if is_placeholder(value) {
        return Err(RulesError::Placeholder {
            rule: rule.clone(),
            field,
            value: value.to_owned(),
        });
    }
    check(field, value).map_err(|e| match e {
        ConfigError::Invalid {
            value, expected, ..
        } => RulesError::Invalid {
            rule: rule.clone(),
            field,
            value,
            expected,
        },
        other => RulesError::Invalid {
            rule: rule.clone(),
            field,
            value: value.to_owned(),
            expected: other.to_string(),
        },
    })
}

fn destination(rule: &RuleRef, d: &DestinationDoc) -> Result<Destination, RulesError> {
    let bucket = match d.bucket.strip_prefix("arn:aws:s3:::") {
        Some(name) => {
            form(rule, "Destination.Bucket", name, forms::bucket_name).map_err(|_| {
                RulesError::Invalid {
                    rule: rule.clone(),
                    field: "Destination.Bucket",
                    value: d.bucket.clone(),
                    expected: "a bucket ARN, arn:aws:s3:::BUCKET-NAME".into(),
                }
            })?;
            name.to_owned()
        }
        None => {
            return Err(RulesError::Invalid {
                rule: rule.clone(),
                field: "Destination.Bucket",
                value: d.bucket.clone(),
                expected: "a bucket ARN, arn:aws:s3:::BUCKET-NAME (as in PutBucketReplication)"
                    .into(),
            })
        }
    };
    let kms_key_id = match d
        .encryption_configuration
        .as_ref()
        .and_then(|e| e.replica_kms_key_id.as_deref())
    {
        Some(key) => {
            form(
                rule,
                "Destination.EncryptionConfiguration.ReplicaKmsKeyID",
                key,
                forms::kms_key,
            )?;
            key.to_owned()
        }
        None => {
            return Err(RulesError::Missing {
                rule: rule.clone(),
                field: "Destination.EncryptionConfiguration.ReplicaKmsKeyID",
                why: "every replica is written with SSE-KMS under the destination account's key",
            })
        }
    };
    // Native replication writes a replica in its source's class unless the rule names one
    // (PutBucketReplication, Destination.StorageClass).
    let storage_class = match d.storage_class.as_deref() {
        None => ReplicaStorageClass::Source,
        Some(class) => ReplicaStorageClass::parse(class).ok_or_else(|| RulesError::Invalid {
            rule: rule.clone(),
            field: "Destination.StorageClass",
            value: class.to_owned(),
            expected: ReplicaStorageClass::expected(),
        })?,
    };

    let ext: &FallbackReplicatorDoc = match &d.fallback_replicator {
        Some(ext) => ext,
        None => {
            return Err(RulesError::Missing {
                rule: rule.clone(),
                field: "Destination.FallbackReplicator.RoleArn",
                why: "the role this replicator assumes in the destination account; native \
                      replication has no such field (see `replicator rules import --role-map`)",
            })
        }
    };
    let role_arn = ext.role_arn.clone().ok_or_else(|| RulesError::Missing {
        rule: rule.clone(),
        field: "Destination.FallbackReplicator.RoleArn",
        why: "the role this replicator assumes in the destination account",
    })?;
    let role_account = form(
        rule,
        "Destination.FallbackReplicator.RoleArn",
        &role_arn,
        forms::role_arn,
    )?;
    if let Some(id) = &ext.external_id {
        if is_placeholder(id) {
            return Err(RulesError::Placeholder {
                rule: rule.clone(),
                field: "Destination.FallbackReplicator.ExternalId",
                value: id.clone(),
            });
        }
        // The check never repeats the value: it is a shared secret.
        form(
            rule,
            "Destination.FallbackReplicator.ExternalId",
            id,
            forms::external_id,
        )?;
    }
    if let Some(region) = &ext.region {
        form(
            rule,
            "Destination.FallbackReplicator.Region",
            region,
            forms::region,
        )?;
    }
    let key_prefix = ext.key_prefix.clone().unwrap_or_default();
    form(
        rule,
        "Destination.FallbackReplicator.KeyPrefix",
        &key_prefix,
        forms::key_prefix,
    )?;
    let account_id = match &d.account {
        Some(account) => {
            form(rule, "Destination.Account", account, forms::account_id)?;
            account.clone()
        }
        None => role_account,
    };
    Ok(Destination {
        bucket,
        account_id,
        kms_key_id,
        storage_class,
        role_arn,
        external_id: ext.external_id.clone(),
        region: ext.region.clone(),
        key_prefix,
        server_side_copy: ext.server_side_copy.unwrap_or_default(),
    })
}
