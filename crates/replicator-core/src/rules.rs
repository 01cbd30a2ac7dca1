//! Replication rules in the shape native S3 replication takes them: several destinations,
//! prefix and tag filters, priorities, delete marker replication.
//!
//! ```text
//!  REPLICATION_RULES ──load (inline │ ssm: │ s3://)──▶ text ──Document::parse──▶ Document
//!                                                                     │ validate
//!  DESTINATION_* / KEY_PREFIX / … ──RuleSet::from_variables──▶ RuleSet ◀┘
//!                                                                │
//!                         route(key, tags) (pure): per destination bucket, the
//!                         highest-priority enabled rule whose filter matches
//! ```
//!
//! Both forms of configuration end in one [`RuleSet`]: the single-destination variables
//! are one rule ([`RuleSet::from_variables`]), a document is any number
//! ([`RuleSet::from_document`]). Every error names the rule it is about.
//!
//! ```
//! use replicator_core::rules::RuleSet;
//! let rules = RuleSet::from_json(r#"{"Rules": [{
//!     "ID": "logs", "Priority": 1, "Status": "Enabled",
//!     "Filter": {"Prefix": "logs/"},
//!     "DeleteMarkerReplication": {"Status": "Disabled"},
//!     "Destination": {
//!         "Bucket": "arn:aws:s3:::replica-bucket",
//!         "EncryptionConfiguration": {"ReplicaKmsKeyID": "arn:aws:kms:us-east-1:222222222222:key/k"},
//!         "FallbackReplicator": {"RoleArn": "arn:aws:iam::222222222222:role/replicator"}}}]}"#)?;
//! let routes = rules.route("logs/a.txt", &Default::default());
//! assert_eq!(routes[0].destination.bucket, "replica-bucket");
//! assert!(rules.route("other/a.txt", &Default::default()).is_empty());
//! # Ok::<(), replicator_core::rules::RulesError>(())
//! ```

pub mod document;
pub mod load;
mod route;
mod validate;
mod variables;

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_s3::types::StorageClass;
use thiserror::Error;

pub use document::{Document, ServerSideCopy};
pub use load::MAX_RULES_BYTES;
pub use validate::is_placeholder;
pub use variables::{SINGLE_DESTINATION_VARIABLES, VARIABLES_RULE_ID};

/// An object's tags, by key (S3 allows one value per key).
pub type ObjectTags = BTreeMap<String, String>;

/// At most this many rules, as S3 allows in one replication configuration.
pub const MAX_RULES: usize = 1000;

/// Validated replication rules, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

/// One rule, typed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    /// Higher wins when rules for the same destination bucket both match (0 for a V1 rule).
    pub priority: u32,
    pub enabled: bool,
    pub filter: Filter,
    /// Whether delete markers are replicated by this rule.
    pub delete_markers: bool,
    pub destination: Destination,
}

/// Which objects a rule applies to: keys starting with `prefix` that carry every tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub prefix: String,
    /// Required tags, by key.
    pub tags: ObjectTags,
}

/// The storage class a replica is written in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReplicaStorageClass {
    /// None named on the write: the destination bucket's default, STANDARD
    /// (DESTINATION_STORAGE_CLASS unset).
    #[default]
    BucketDefault,
    /// This class for every replica.
    Fixed(StorageClass),
    /// Each replica in its source version's class (DESTINATION_STORAGE_CLASS=SOURCE, or a
    /// rule without `Destination.StorageClass`, as native replication does). Classes a
    /// general purpose bucket in another account cannot take (`EXPRESS_ONEZONE`,
    /// `OUTPOSTS`, `SNOW`, `FSX_*`, AWS Backup's, any the SDK does not know) become STANDARD.
    Source,
}

impl ReplicaStorageClass {
    /// What DESTINATION_STORAGE_CLASS or `Destination.StorageClass` may say besides a class.
    pub const SOURCE: &'static str = "SOURCE";

    /// `SOURCE` or one of the SDK's classes; `None` when `value` is neither.
    pub fn parse(value: &str) -> Option<Self> {
        if value == Self::SOURCE {
            return Some(Self::Source);
        }
        StorageClass::values()
            .contains(&value)
            .then(|| Self::Fixed(StorageClass::from(value)))
    }

    /// What a value may be, for an error message.
    pub fn expected() -> String {
        format!(
            "{} (each replica in its source's class) or one of {}",
            Self::SOURCE,
            StorageClass::values().join(", ")
        )
    }

    /// The class to name on the write of a replica whose source is in `source` (`None` for
    /// STANDARD, which S3 does not name); `None` leaves it to the bucket's default.
    pub fn for_source(&self, source: Option<&StorageClass>) -> Option<StorageClass> {
        match self {
            Self::BucketDefault => None,
            Self::Fixed(class) => Some(class.clone()),
            Self::Source => source.filter(|c| KEPT_AS_IS.contains(c)).cloned(),
        }
    }
}

/// Source classes a replica keeps under [`ReplicaStorageClass::Source`]: those a general
/// purpose bucket takes on PutObject, CopyObject and CreateMultipartUpload.
const KEPT_AS_IS: [StorageClass; 8] = [
    StorageClass::Standard,
    StorageClass::StandardIa,
    StorageClass::OnezoneIa,
    StorageClass::IntelligentTiering,
    StorageClass::GlacierIr,
    StorageClass::Glacier,
    StorageClass::DeepArchive,
    StorageClass::ReducedRedundancy,
];

/// Where a rule's replicas go and how they are written there.
#[derive(Clone, PartialEq, Eq)]
pub struct Destination {
    /// The bucket's name (the document names it by ARN).
    pub bucket: String,
    /// Expected owner of the bucket: `Destination.Account`, else the role's account.
    pub account_id: String,
    pub kms_key_id: String,
    pub storage_class: ReplicaStorageClass,
    pub role_arn: String,
    pub external_id: Option<String>,
    pub region: Option<String>,
    /// Prepended to every replica key.
    pub key_prefix: String,
    pub server_side_copy: ServerSideCopy,
}

impl fmt::Debug for Destination {
    // The ExternalId is a shared secret between the two accounts: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field("bucket", &self.bucket)
            .field("account_id", &self.account_id)
            .field("kms_key_id", &self.kms_key_id)
            .field("storage_class", &self.storage_class)
            .field("role_arn", &self.role_arn)
            .field(
                "external_id",
                &self.external_id.as_ref().map(|_| "<redacted>"),
            )
            .field("region", &self.region)
            .field("key_prefix", &self.key_prefix)
            .field("server_side_copy", &self.server_side_copy)
            .finish()
    }
}

/// How an error names a rule: by its ID, or by its place when it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRef {
    Id(String),
    /// 1-based position in `Rules`.
    Index(usize),
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "rule {id:?}"),
            Self::Index(i) => write!(f, "rule #{i} (no ID)"),
        }
    }
}

/// What is wrong with a rules document, or with reading it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RulesError {
    #[error("not a replication configuration: {message}")]
    Syntax { message: String },
    #[error("{rule}: {message}")]
    Shape { rule: RuleRef, message: String },
    #[error("no rules: Rules must hold at least one rule")]
    NoRules,
    #[error("{count} rules: at most {MAX_RULES} are allowed, as in S3")]
    TooManyRules { count: usize },
    #[error("{rule}: every rule needs an ID (S3 assigns one when it is left out, so a configuration read from GetBucketReplication has them; write one here so errors, logs and metrics can name the rule)")]
    MissingId { rule: RuleRef },
    #[error("rule {id:?} appears twice (rules #{first} and #{second}); IDs must be unique")]
    DuplicateId {
        id: String,
        first: usize,
        second: usize,
    },
    #[error("{rule}: {field}={value:?} is invalid: expected {expected}")]
    Invalid {
        rule: RuleRef,
        field: &'static str,
        value: String,
        expected: String,
    },
    #[error("{rule}: {field} is required ({why})")]
    Missing {
        rule: RuleRef,
        field: &'static str,
        why: &'static str,
    },
    #[error("{rule}: {field} is still the placeholder {value:?} that `replicator rules import` wrote: fill it in, or give import a --role-map")]
    Placeholder {
        rule: RuleRef,
        field: &'static str,
        value: String,
    },
    #[error("{rule}: {message}")]
    Conflict { rule: RuleRef, message: String },
    #[error("{first} and {second} both replicate to bucket {bucket} with Priority {priority}, and an object can match both filters ({why}): give one a higher Priority")]
    Overlap {
        first: RuleRef,
        second: RuleRef,
        bucket: String,
        priority: u32,
        why: String,
    },
    #[error("cannot read the rules from {location}: {message}")]
    Unreadable { location: String, message: String },
    #[error("the rules at {location} are larger than {limit} bytes")]
    TooLarge { location: String, limit: u64 },
    #[error("{message}: this command carries out one rule (the functions and `replicator doctor`, `policies` and `rules` take any rule set; `replicator copy`, `sync` and `verify` one enabled rule without tags so far)")]
    EngineLimitation { message: String },
}

impl RuleSet {
    /// Parses and validates a document's JSON text.
    pub fn from_json(text: &str) -> Result<Self, RulesError> {
        Self::from_document(&Document::parse(text)?)
    }

    /// Validates a parsed document.
    pub fn from_document(doc: &Document) -> Result<Self, RulesError> {
        validate::rule_set(doc)
    }

    /// A set of this one rule.
    pub fn only(rule: Rule) -> Self {
        Self { rules: vec![rule] }
    }

    /// The rules, in document order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every destination bucket, in the order rules first name them.
    pub fn destination_buckets(&self) -> Vec<&str> {
        let mut buckets: Vec<&str> = Vec::new();
        for r in &self.rules {
            if !buckets.contains(&r.destination.bucket.as_str()) {
                buckets.push(&r.destination.bucket);
            }
        }
        buckets
    }

    /// The rules of each destination bucket, in the order the document first names the
    /// buckets; a destination whose rules are all disabled is left out.
    pub fn by_destination(&self) -> Vec<RuleSet> {
        self.destination_buckets()
            .into_iter()
            .map(|bucket| RuleSet {
                rules: self
                    .rules
                    .iter()
                    .filter(|r| r.destination.bucket == bucket)
                    .cloned()
                    .collect(),
            })
            .filter(|set| set.rules.iter().any(|r| r.enabled))
            .collect()
    }

    /// For the enabled rules of one destination bucket: the source prefix and the replica
    /// key prefix they all fall under (what one policy must grant). Rules of one bucket
    /// with different roles or replica keys are refused, naming both.
    pub fn common_prefixes(&self) -> Result<(String, String), RulesError> {
        let enabled: Vec<&Rule> = self.rules.iter().filter(|r| r.enabled).collect();
        let Some(first) = enabled.first() else {
            return Ok((String::new(), String::new()));
        };
        for r in &enabled[1..] {
            let (a, b) = (&first.destination, &r.destination);
            let differs = if a.role_arn != b.role_arn {
                Some("RoleArn")
            } else if a.kms_key_id != b.kms_key_id {
                Some("ReplicaKmsKeyID")
            } else {
                None
            };
            if let Some(field) = differs {
                return Err(RulesError::Conflict {
                    rule: RuleRef::Id(r.id.clone()),
                    message: format!(
                        "replicates to bucket {} as rule {:?} does, with another {field}: the policies of one destination grant one role and one replica key",
                        b.bucket, first.id
                    ),
                });
            }
        }
        let common = |items: Vec<&str>| -> String {
            let mut common = items[0].to_owned();
            for item in &items[1..] {
                let shared = common
                    .char_indices()
                    .zip(item.chars())
                    .take_while(|((_, a), b)| a == b)
                    .last()
                    .map_or(0, |((i, a), _)| i + a.len_utf8());
                common.truncate(shared);
            }
            common
        };
        Ok((
            common(enabled.iter().map(|r| r.filter.prefix.as_str()).collect()),
            common(
                enabled
                    .iter()
                    .map(|r| r.destination.key_prefix.as_str())
                    .collect(),
            ),
        ))
    }

    /// What a single-engine command (`replicator copy`, `sync`, `verify`) carries out:
    /// exactly one enabled rule, without tags. A rule set it cannot carry out is refused,
    /// never reduced to its first rule; the functions take any ([`crate::fleet::Fleet`]).
    pub fn single_rule(&self) -> Result<&Rule, RulesError> {
        let enabled: Vec<&Rule> = self.rules.iter().filter(|r| r.enabled).collect();
        let limitation = |message: String| Err(RulesError::EngineLimitation { message });
        let buckets: Vec<&str> = {
            let mut b: Vec<&str> = enabled
                .iter()
                .map(|r| r.destination.bucket.as_str())
                .collect();
            b.sort_unstable();
            b.dedup();
            b
        };
        match enabled.as_slice() {
            [] => limitation("no rule is Enabled: nothing would be replicated".into()),
            [rule] if !rule.filter.tags.is_empty() => {
                limitation(format!("rule {:?} filters on tags", rule.id))
            }
            [rule] => Ok(rule),
            _ if buckets.len() > 1 => limitation(format!(
                "the enabled rules replicate to {} destination buckets ({})",
                buckets.len(),
                buckets.join(", ")
            )),
            many => limitation(format!(
                "{} rules are enabled ({})",
                many.len(),
                many.iter()
                    .map(|r| format!("{:?}", r.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests;
