//! Verification: prove the replicas match their sources, object by object.
//!
//! ```text
//! ListObjectsV2(source) ─┐                      ┌─ missing: nothing to read
//!                        ├─ merge (sync's) ─────┼─ both: HEAD source ∥ HEAD replica (checksum mode)
//! ListObjectsV2(replica)─┘  pages fetched ahead │        [tags ∥ tags] [deep: ranged GETs, hashed]
//!                                               └─ replica only: HEAD replica (extra or foreign)
//!                 ─▶ classify (pure, classify.rs) ─▶ [repair: the engine, then check again]
//!                 ─▶ Checked, in key order ─▶ CLI (summary, JSON lines, HTML) │ audit (evidence)
//! ```
//!
//! The listing is the sync's merge-join ([`crate::sync::listing`]), so memory does not grow
//! with the bucket; keys are checked [`VerifyConfig::concurrency`] at once and come out in
//! key order (the audit's checkpoint relies on it).

pub mod audit;
mod check;
pub mod class;
pub mod classify;
pub mod config;
pub mod deep;
pub mod evidence;
pub mod facts;
pub mod tally;

use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::error::ReplicationError;
use crate::replicate::Replicator;
pub use class::Class;
pub use classify::{Deep, Finding, Verdict};
pub use config::{VerifyConfig, VERIFY_VARIABLES};
pub use tally::Tally;

/// Range pairs read at once by `--deep`, across all objects.
const DEEP_RANGES_IN_FLIGHT: usize = 8;

/// What to check besides the HEADs, and whether to repair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Options {
    /// Read and hash both objects (and compare tags).
    pub deep: bool,
    /// Compare tags (two GetObjectTagging when either side has tags).
    pub tags: bool,
    /// Copy missing, stale, corrupt and wrong-key objects again, then check them again.
    pub repair: bool,
}

impl Options {
    fn tags(&self) -> bool {
        self.tags || self.deep
    }
}

/// One object as verification left it: a manifest row, a JSON line, a report entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    /// The source key (the replica's, less DESTINATION_PREFIX).
    pub key: String,
    pub class: Class,
    /// The class found before `--repair` copied the object again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<Class>,
    /// What the repair did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The checksum (or deep digest) that proved the bytes equal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_version: Option<String>,
    /// Replica written − source Last-Modified, in seconds (replicas of the current version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<i64>,
}

/// Checks replicas against their sources with one [`Replicator`]'s buckets and settings.
#[derive(Debug, Clone)]
pub struct Verifier {
    replicator: Replicator,
    config: VerifyConfig,
    /// The key S3 names on replicas written with DESTINATION_KMS_KEY_ID.
    kms_key_arn: String,
    deep_in_flight: Arc<Semaphore>,
}

impl Verifier {
    pub fn new(replicator: Replicator, config: VerifyConfig) -> Self {
        Self {
            kms_key_arn: replicator.config().destination.kms_key_id.clone(),
            replicator,
            config,
            deep_in_flight: Arc::new(Semaphore::new(DEEP_RANGES_IN_FLIGHT)),
        }
    }

    /// The key ARN replicas must name, when DESTINATION_KMS_KEY_ID is an alias ARN (S3
    /// reports the key an alias resolved to, not the alias).
    pub fn with_kms_key_arn(mut self, arn: impl Into<String>) -> Self {
        self.kms_key_arn = arn.into();
        self
    }

    pub fn replicator(&self) -> &Replicator {
        &self.replicator
    }

    pub fn config(&self) -> &VerifyConfig {
        &self.config
    }

    pub fn kms_key_arn(&self) -> &str {
        &self.kms_key_arn
    }

    /// The prefix a run covers: `prefix` (within KEY_PREFIX), or KEY_PREFIX.
    pub fn scope(&self, prefix: Option<&str>) -> Result<String, ReplicationError> {
        let key_prefix = &self.replicator.config().source.key_prefix;
        let prefix = prefix.unwrap_or(key_prefix).to_owned();
        if !prefix.starts_with(key_prefix.as_str()) {
            return Err(ReplicationError::InvalidEvent(format!(
                "verify prefix {prefix:?} is outside KEY_PREFIX {key_prefix:?}"
            )));
        }
        Ok(prefix)
    }

    /// Every key under `prefix` (after `start_after`) of either listing, checked, in key
    /// order. A listing that fails ends the stream with its error.
    pub fn check_all(
        &self,
        prefix: &str,
        start_after: Option<String>,
        options: Options,
    ) -> impl Stream<Item = Result<Checked, ReplicationError>> + Send + '_ {
        self.check_until(prefix, start_after, options, None, Arc::default())
    }

    /// Like [`check_all`](Self::check_all), starting no new key at or after `stop_at`
    /// (checks already started finish and come out); `cut` is set if it stopped early.
    pub fn check_until(
        &self,
        prefix: &str,
        start_after: Option<String>,
        options: Options,
        stop_at: Option<Instant>,
        cut: Arc<AtomicBool>,
    ) -> impl Stream<Item = Result<Checked, ReplicationError>> + Send + '_ {
        let r = &self.replicator;
        crate::sync::listing::merged(
            r.source().clone(),
            r.destination().clone(),
            r.config().destination.prefix.clone(),
            prefix,
            start_after,
        )
        .take_while(move |_| {
            let go = stop_at.is_none_or(|t| Instant::now() < t);
            if !go {
                cut.store(true, AtomicOrdering::SeqCst);
            }
            futures::future::ready(go)
        })
        .map(move |action| async move { Ok(self.check(action?, options).await) })
        .buffered(self.config.concurrency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_rows_serialise_with_class_names() {
        let row = Checked {
            key: "a".into(),
            class: Class::WrongKey,
            found: None,
            repair: None,
            findings: vec![],
            checksum: None,
            size: 3,
            source_version: Some("v".into()),
            replica_version: None,
            lag_seconds: None,
        };
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["class"], "wrong-key");
        assert_eq!(json["key"], "a");
        assert!(json.get("found").is_none());
    }
}
