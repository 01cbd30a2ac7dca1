//! Every destination one deployment replicates to: an engine per enabled rule, and the rule
//! set that says, object by object, which of them take it.
//!
//! ```text
//!  ObjectRequest ──RuleSet::route(key, tags)──▶ per destination bucket, its chosen rule
//!        │  (tags fetched once, only if a rule that could apply filters on them)
//!        └──▶ that rule's engine: its role, bucket owner, KMS key, storage class, key
//!             prefix, delete marker replication
//! ```
//!
//! Engines of rules that share a role share its clients (one credential cache per role),
//! and every engine shares one memory budget: several destinations never multiply
//! MAX_IN_FLIGHT_BYTES.

use aws_config::SdkConfig;

use crate::budget::Budget;
use crate::error::ReplicationError;
use crate::request::{ChangeKind, ObjectRequest};
use crate::rules::{ObjectTags, RuleSet};
use crate::{Clients, Config, Replicator};

/// The engines of a deployment and the rules that route objects to them.
#[derive(Debug, Clone)]
pub struct Fleet {
    rules: RuleSet,
    /// One per enabled rule, in document order.
    engines: Vec<Replicator>,
}

impl Fleet {
    /// Engines for `configs` (one per enabled rule, as [`Config::per_rule`] reads them),
    /// routed by `rules`.
    pub async fn new(rules: RuleSet, configs: Vec<Config>, sdk: &SdkConfig) -> Self {
        let mut clients: Vec<(ClientsKey, Clients)> = Vec::new();
        let budget = configs
            .first()
            .map(|c| Budget::new(c.transfer.max_in_flight_bytes));
        let mut engines = Vec::with_capacity(configs.len());
        for config in configs {
            let key = ClientsKey::of(&config);
            let shared = match clients.iter().find(|(k, _)| *k == key) {
                Some((_, c)) => c.clone(),
                None => {
                    let c = Clients::new(sdk, &config).await;
                    clients.push((key, c.clone()));
                    c
                }
            };
            let engine = Replicator::new(config, shared);
            engines.push(match &budget {
                Some(b) => engine.with_budget(b.clone()),
                None => engine,
            });
        }
        Self { rules, engines }
    }

    /// One engine alone, routed by its own rule.
    pub fn single(engine: Replicator) -> Self {
        Self {
            rules: engine.config().rules.clone(),
            engines: vec![engine],
        }
    }

    /// Every engine, one per enabled rule, in document order.
    pub fn engines(&self) -> &[Replicator] {
        &self.engines
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The destination buckets, in the order the rules first name them.
    pub fn destination_buckets(&self) -> Vec<String> {
        let mut buckets: Vec<String> = Vec::new();
        for e in &self.engines {
            let bucket = &e.config().destination.bucket;
            if !buckets.contains(bucket) {
                buckets.push(bucket.clone());
            }
        }
        buckets
    }

    /// The engines that take this object: for each destination bucket, the one of the
    /// highest-priority enabled rule whose filter matches. The object's tags are read
    /// (once) only when a rule that could apply to its key filters on them; a delete or a
    /// version that is gone has none, as in native replication, where tag filters never
    /// select delete markers.
    pub async fn route(&self, req: &ObjectRequest) -> Result<Vec<&Replicator>, ReplicationError> {
        let tags = if self.rules.needs_tags(&req.key) && reads_tags(req.kind) {
            self.tags(req).await?
        } else {
            ObjectTags::new()
        };
        let mut chosen = self.rules.route(&req.key, &tags);
        // A sync pass's fan-out message names the rule it planned the copy for: only that
        // destination, while the rules still choose it.
        if let Some(planned) = &req.planned_rule {
            if chosen.iter().any(|r| &r.id == planned) {
                chosen.retain(|r| &r.id == planned);
            }
        }
        Ok(chosen
            .into_iter()
            .filter_map(|rule| self.engines.iter().find(|e| e.config().rule_id == rule.id))
            .collect())
    }

    async fn tags(&self, req: &ObjectRequest) -> Result<ObjectTags, ReplicationError> {
        let source = self.engines[0].source();
        // Gone: no tags, and the engines it still routes to find it gone.
        let tags = Box::pin(source.tags_if_present(&req.key, req.version_id.as_deref())).await?;
        Ok(tags.unwrap_or_default().into_iter().collect())
    }
}

/// Whether a change's object has tags to read: a delete marker or a deleted key has none.
fn reads_tags(kind: ChangeKind) -> bool {
    matches!(kind, ChangeKind::Created | ChangeKind::TagsChanged)
}

/// What makes two engines' clients the same: the role and how it is assumed, and the
/// destination owner their requests name.
#[derive(PartialEq, Eq)]
struct ClientsKey {
    role_arn: String,
    external_id: Option<String>,
    region: Option<String>,
    account_id: String,
    session_length: Option<std::time::Duration>,
}

impl ClientsKey {
    fn of(config: &Config) -> Self {
        let d = &config.destination;
        Self {
            role_arn: d.role_arn.clone(),
            external_id: d.external_id.clone(),
            region: d.region.clone(),
            account_id: d.account_id.clone(),
            session_length: d.session_length,
        }
    }
}
