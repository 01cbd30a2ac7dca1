//! The scheduled sync: list both buckets in key order, merge-join them page by page, and
//! replicate what is missing or stale with the same engine as the event copier — within a
//! time budget, resumably, optionally fanning the copies out to an SQS queue.
//!
//! ```text
//! ListObjectsV2(source) ─┐                     ┌─▶ copy (engine)         ─┐
//!                        ├─ merge ─ decide ────┼─▶ check provenance, copy ├─ in order ─▶ checkpoint
//! ListObjectsV2(replica)─┘  (pure, plan.rs)    ├─▶ enqueue (fan-out)      │
//!                                              └─▶ destination-only      ─┘
//! ```
//!
//! [`Syncer::run`] is the phase script: take the lease, retry carried failures then work
//! through the listing, send what the fan-out holds, deletes, the upload sweep, save.

pub mod config;
mod deletes;
mod fanout;
mod inventory;
pub(crate) mod listing;
pub mod plan;
pub mod report;
mod run_state;
mod step;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tracing::{info, warn};

use crate::clock::now_ms;
use crate::error::ReplicationError;
use crate::replicate::Replicator;
use crate::rules::RuleSet;
use crate::state::checkpoint::{self, Acquired, Checkpoints};
pub use config::{InventoryRequest, SyncConfig, SYNC_VARIABLES};
pub use fanout::FanoutError;
use plan::{ListedObject, SyncAction};
pub use report::{FailedKey, SyncReport, REPORTED_KEYS};
use run_state::RunState;
pub use run_state::CARRIED_FAILURES;

/// The SQS client the fan-out uses.
pub use aws_sdk_sqs::Client as SqsClient;

/// Called with each key as its work completes (the CLI's progress bar).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// One run's request: overrides from the schedule's constant input, and the deadline.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// Sync only under this prefix (must be within KEY_PREFIX). Each prefix has its own
    /// checkpoint.
    pub prefix: Option<String>,
    /// Plan and report; write nothing (not even the checkpoint).
    pub dry_run: bool,
    /// Examine at most this many keys in this run.
    pub max_objects: Option<u64>,
    /// The invocation's deadline.
    pub deadline: Option<Instant>,
    /// Identifies this run in the checkpoint lease (the Lambda request id).
    pub run_id: String,
    /// Reconcile from S3 Inventory instead of listing both buckets (default: the
    /// INVENTORY_MANIFEST setting).
    pub inventory: Option<InventoryRequest>,
}

pub struct Syncer {
    replicator: Replicator,
    /// The deployment's rules, when this engine is one of several: a key is this pass's
    /// only when the rules choose this engine's rule for its destination.
    rules: Option<RuleSet>,
    checkpoints: Checkpoints,
    sqs: Option<aws_sdk_sqs::Client>,
    config: SyncConfig,
    region: Option<String>,
    progress: Option<Progress>,
}

/// When a run stops starting work, and when its copies stop starting parts.
struct Window {
    prefix: String,
    stop_at: Instant,
    copy_deadline: Instant,
    lease_until_ms: i64,
}

/// The answer of a run that found another run holding the lease.
fn busy_report(req: &SyncRequest, started: Instant) -> SyncReport {
    SyncReport {
        dry_run: req.dry_run,
        busy: true,
        delete_phase: "not reached".into(),
        duration_ms: started.elapsed().as_millis() as u64,
        ..Default::default()
    }
}

impl Syncer {
    pub fn new(
        replicator: Replicator,
        sqs: Option<aws_sdk_sqs::Client>,
        config: SyncConfig,
        region: Option<String>,
    ) -> Self {
        Self {
            checkpoints: Checkpoints::new(replicator.state().clone()),
            replicator,
            rules: None,
            sqs,
            config,
            region,
            progress: None,
        }
    }

    /// This engine's pass under the deployment's `rules`: it copies only the keys the rules
    /// route to its rule (a tag filter decides by each key's tags), and, when there are
    /// several rules, keeps a checkpoint of its own.
    pub fn for_rule_of(mut self, rules: RuleSet) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Whether `key` is this pass's: always for a deployment of one rule; else when the
    /// rules choose this engine's rule for its destination (its tags read only if a rule
    /// that could apply filters on them). Boxed: every key's step holds this future, and
    /// the SDK's inside it is large.
    pub(crate) fn owns<'a>(
        &'a self,
        key: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<bool, ReplicationError>> {
        Box::pin(async move {
            let Some(rules) = &self.rules else {
                return Ok(true);
            };
            let tags = if rules.needs_tags(key) {
                let tags = self.replicator.source().tags_if_present(key, None).await?;
                tags.unwrap_or_default().into_iter().collect()
            } else {
                Default::default()
            };
            let ours = &self.replicator.config().rule_id;
            Ok(rules.route(key, &tags).iter().any(|r| &r.id == ours))
        })
    }

    /// Where this pass keeps its checkpoint: per rule when there are several.
    fn checkpoint_scope(&self, name: &str) -> String {
        let several = self
            .rules
            .as_ref()
            .is_some_and(|r| r.rules().iter().filter(|r| r.enabled).count() > 1);
        if several {
            checkpoint::rule_checkpoint_name(&self.replicator.config().rule_id, name)
        } else {
            name.to_owned()
        }
    }

    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    pub fn replicator(&self) -> &Replicator {
        &self.replicator
    }

    /// How long before its deadline a run stops starting work (SYNC_TIME_MARGIN_SECONDS).
    pub fn time_margin(&self) -> Duration {
        self.config.time_margin
    }

    /// One run: resume the pass from the checkpoint, work until the listing ends or the time
    /// budget does, save the checkpoint.
    pub async fn run(&self, req: SyncRequest) -> Result<SyncReport, ReplicationError> {
        let window = self.window(&req)?;
        let bucket = &self.replicator.config().source.bucket;
        let inventory = req.inventory.as_ref().or(self.config.inventory.as_ref());
        let result = match inventory {
            None => {
                let key = self.checkpoints.key_named(
                    &self.checkpoint_scope(&checkpoint::checkpoint_name(bucket, &window.prefix)),
                );
                (Box::pin(self.run_leased(&req, &window, &key)).await, key)
            }
            Some(inventory) => {
                let key = self.checkpoints.key_named(&self.checkpoint_scope(
                    &checkpoint::inventory_checkpoint_name(bucket, &inventory.manifest),
                ));
                // Boxed, as the listing pass: a whole pass's state is large for the stack
                // of the thread that awaits the run.
                (
                    Box::pin(self.run_inventory(&req, inventory, &window, &key)).await,
                    key,
                )
            }
        };
        let (result, key) = result;
        // A run that fails midway (a checkpoint write it cannot make, a queue it cannot
        // reach) gives its lease back, so the next run need not wait for it to expire.
        if result.is_err() && !req.dry_run {
            self.checkpoints.release(&key, &req.run_id).await;
        }
        result
    }

    fn window(&self, req: &SyncRequest) -> Result<Window, ReplicationError> {
        let key_prefix = &self.replicator.config().source.key_prefix;
        let prefix = req.prefix.clone().unwrap_or_else(|| key_prefix.clone());
        if !prefix.starts_with(key_prefix.as_str()) {
            return Err(ReplicationError::InvalidEvent(format!(
                "sync prefix {prefix:?} is outside KEY_PREFIX {key_prefix:?}"
            )));
        }
        let deadline = req
            .deadline
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(15 * 60));
        let margin = self.config.time_margin;
        let left = deadline.saturating_duration_since(Instant::now());
        Ok(Window {
            prefix,
            stop_at: deadline.checked_sub(margin).unwrap_or_else(Instant::now),
            // Copies start no new part after this; their last parts and the checkpoint fit.
            copy_deadline: deadline
                .checked_sub(margin / 2)
                .unwrap_or_else(Instant::now),
            lease_until_ms: now_ms() + (left + Duration::from_secs(60)).as_millis() as i64,
        })
    }

    async fn run_leased(
        &self,
        req: &SyncRequest,
        window: &Window,
        key: &str,
    ) -> Result<SyncReport, ReplicationError> {
        let started = Instant::now();
        let Some(mut state) = self.begin(req, window, key).await? else {
            return Ok(busy_report(req, started));
        };
        let (listing_error, cut) = self.work(&mut state, req, window).await?;
        state.flush().await?;
        let complete = listing_error.is_none() && !cut;
        deletes::phase(
            &mut state,
            &self.replicator,
            self.config.delete,
            self.config.max_deletes,
            listing_error.is_none(),
        )
        .await;
        if complete && !req.dry_run {
            self.sweep(&mut state, window).await;
        }
        let mut report = self.finish(state, complete).await?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        info!(
            copied = report.copied,
            skipped = report.skipped,
            failed = report.failed,
            destination_only = report.destination_only,
            complete = report.complete,
            "sync run finished"
        );
        match listing_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// After a complete pass, of either kind: aborts the uploads interrupted copies left
    /// behind that no copy will resume.
    async fn sweep(&self, state: &mut RunState<'_>, window: &Window) {
        match self
            .replicator
            .sweep_abandoned_uploads(window.stop_at)
            .await
        {
            Ok(sweep) => {
                state.report.uploads_aborted = sweep.aborted;
                state.report.state_unreadable = sweep.unreadable;
            }
            Err(e) => warn!(error = %e, "could not sweep abandoned multipart uploads"),
        }
    }

    /// Takes the checkpoint's lease (not for a dry run); `None` when another run holds it.
    async fn begin(
        &self,
        req: &SyncRequest,
        window: &Window,
        key: &str,
    ) -> Result<Option<RunState<'_>>, ReplicationError> {
        let (mut checkpoint, etag) = if req.dry_run {
            Default::default()
        } else {
            match self
                .checkpoints
                .acquire(key, &req.run_id, now_ms(), window.lease_until_ms)
                .await?
            {
                Acquired::Held(stored) => (stored.checkpoint, stored.etag),
                Acquired::Busy(lease) => {
                    info!(owner = %lease.owner, "another sync run holds the checkpoint; stopping");
                    return Ok(None);
                }
            }
        };
        let new_pass = checkpoint.pass_started_ms == 0;
        if new_pass {
            checkpoint.pass_started_ms = now_ms();
            checkpoint.start_after = None;
            checkpoint.position = None;
        }
        let report = SyncReport {
            dry_run: req.dry_run,
            resumed_after: checkpoint.start_after.clone(),
            delete_phase: if self.config.delete {
                "not reached".into()
            } else {
                "off (SYNC_DELETE=false)".into()
            },
            ..Default::default()
        };
        let fanout = self
            .sqs
            .clone()
            .zip(self.config.queue_url.clone())
            .map(|(sqs, url)| fanout::Fanout::new(sqs, url));
        let mut state = RunState::new(
            &self.checkpoints,
            key.to_owned(),
            checkpoint,
            etag,
            report,
            fanout,
            self.config.max_deletes,
        );
        state.carried = std::mem::take(&mut state.checkpoint.failed);
        state.new_pass = new_pass;
        Ok(Some(state))
    }

    /// Keys that failed before, then the listing from where the pass stands, each key's
    /// work recorded in key order. Returns the listing's error, if it failed, and whether
    /// the run stopped early (time, max_objects).
    async fn work(
        &self,
        state: &mut RunState<'_>,
        req: &SyncRequest,
        window: &Window,
    ) -> Result<(Option<ReplicationError>, bool), ReplicationError> {
        let retries = futures::stream::iter(state.carried.clone().into_iter().map(|key| {
            Ok(SyncAction::Check(ListedObject {
                key,
                size: 0,
                etag: String::new(),
                last_modified: 0,
            }))
        }));
        let r = &self.replicator;
        let listing = listing::merged(
            r.source().clone(),
            r.destination().clone(),
            r.config().destination.prefix.clone(),
            &window.prefix,
            state.checkpoint.start_after.clone(),
        );
        let cut = Arc::new(AtomicBool::new(false));
        let examined = Arc::new(AtomicU64::new(0));
        let max = req.max_objects.unwrap_or(u64::MAX);
        let work = retries
            .map(|a| (true, a))
            .chain(listing.map(|a| (false, a)))
            .take_while(|_| {
                let go = Instant::now() < window.stop_at
                    && examined.fetch_add(1, AtomicOrdering::SeqCst) < max;
                if !go {
                    cut.store(true, AtomicOrdering::SeqCst);
                }
                futures::future::ready(go)
            })
            .map(|(retry, action)| async move {
                let action = action?;
                let key = action.key().to_owned();
                let step = self
                    .step(action, req.dry_run, window.copy_deadline, retry)
                    .await;
                Ok::<_, ReplicationError>((key, retry, step))
            })
            .buffered(self.config.concurrency);
        let mut work = std::pin::pin!(work);
        while let Some(item) = work.next().await {
            match item {
                Ok((key, retry, step)) => {
                    if let Some(progress) = &self.progress {
                        progress(&key);
                    }
                    state.record(key, retry, step).await?
                }
                Err(e) => return Ok((Some(e), cut.load(AtomicOrdering::SeqCst))),
            }
        }
        Ok((None, cut.load(AtomicOrdering::SeqCst)))
    }

    /// Saves where the pass stands and releases the lease.
    async fn finish(
        &self,
        mut state: RunState<'_>,
        complete: bool,
    ) -> Result<SyncReport, ReplicationError> {
        state.report.complete = complete;
        state.checkpoint.failed = state.pending_failures();
        if complete {
            state.checkpoint.pass_started_ms = 0;
            state.checkpoint.start_after = None;
            state.checkpoint.last_complete_ms = Some(now_ms());
        }
        state.checkpoint.lease = None;
        state.report.checkpoint = state.checkpoint.start_after.clone();
        if !state.dry_run {
            state.save().await?;
        }
        Ok(state.report)
    }
}
