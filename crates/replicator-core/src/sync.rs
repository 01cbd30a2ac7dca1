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

pub mod checkpoint;
pub mod plan;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::ConfigError;
use crate::copy::{now_ms, Replicator};
use crate::error::{classify, Principal, ReplicationError, Request};
use crate::request::{Listed, ObjectRequest, Outcome};
use checkpoint::{checkpoint_key, Acquired, Checkpoint, RESERVED_PREFIX};
use plan::{decide_pair, merge_order, ListedObject, SyncAction};

/// How many keys each list in the response holds at most.
pub const REPORTED_KEYS: usize = 100;
/// How many failed keys a checkpoint carries to the next run.
pub const CARRIED_FAILURES: usize = 1000;
/// How often a long run saves its progress.
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// The sync's own settings (the engine's come from [`crate::Config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    pub concurrency: usize,
    pub delete: bool,
    pub max_deletes: u64,
    pub queue_url: Option<String>,
    /// Stop starting work this long before the invocation's deadline.
    pub time_margin: Duration,
}

pub const SYNC_VARIABLES: &[&str] = &[
    "SYNC_CONCURRENCY",
    "SYNC_DELETE",
    "SYNC_MAX_DELETES",
    "SYNC_QUEUE_URL",
    "SYNC_TIME_MARGIN_SECONDS",
];

impl SyncConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let number =
            |variable: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| match get(
                variable,
            ) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().ok().filter(|n| range.contains(n)).ok_or(
                    ConfigError::Invalid {
                        variable,
                        value: v,
                        expected: format!(
                            "a whole number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    },
                ),
            };
        let delete = match get("SYNC_DELETE")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    variable: "SYNC_DELETE",
                    value: other.to_owned(),
                    expected: "true or false".into(),
                })
            }
        };
        let queue_url = get("SYNC_QUEUE_URL");
        if let Some(url) = &queue_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::Invalid {
                    variable: "SYNC_QUEUE_URL",
                    value: url.clone(),
                    expected: "an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
                        .into(),
                });
            }
        }
        Ok(Self {
            concurrency: number("SYNC_CONCURRENCY", 32, 1..=1024)? as usize,
            delete,
            max_deletes: number("SYNC_MAX_DELETES", 100, 0..=1_000_000)?,
            queue_url,
            time_margin: Duration::from_secs(number("SYNC_TIME_MARGIN_SECONDS", 30, 1..=600)?),
        })
    }
}

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
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FailedKey {
    pub key: String,
    pub error: String,
}

/// The run's answer.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SyncReport {
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub bytes: u64,
    pub destination_only: u64,
    pub deleted: u64,
    pub enqueued: u64,
    /// Multipart uploads left by interrupted copies that another copy has since made
    /// useless, aborted after a complete pass.
    pub uploads_aborted: u64,
    /// False when the run stopped early (time, max_objects, another run's lease) and work
    /// remains for the next run.
    pub complete: bool,
    pub dry_run: bool,
    /// Another run holds the checkpoint's lease; this one did nothing.
    pub busy: bool,
    /// Where this run started, and where the next will.
    pub resumed_after: Option<String>,
    pub checkpoint: Option<String>,
    pub failed_keys: Vec<FailedKey>,
    pub destination_only_keys: Vec<String>,
    /// Dry run: what a real run would copy.
    pub would_copy: Vec<String>,
    pub would_copy_count: u64,
    /// What happened to deletes (SYNC_DELETE): done, refused and why, or off.
    pub delete_phase: String,
    pub duration_ms: u64,
}

impl SyncReport {
    /// The EMF document for this run.
    pub fn emf(&self, function: &str) -> serde_json::Value {
        crate::metrics::emf_document(
            function,
            now_ms(),
            &[
                ("ObjectsCopied", "Count", json!(self.copied)),
                ("ObjectsSkipped", "Count", json!(self.skipped)),
                ("ObjectsFailed", "Count", json!(self.failed)),
                ("BytesCopied", "Bytes", json!(self.bytes)),
                ("DestinationOnly", "Count", json!(self.destination_only)),
                ("ObjectsEnqueued", "Count", json!(self.enqueued)),
                ("ReplicasDeleted", "Count", json!(self.deleted)),
                ("UploadsAborted", "Count", json!(self.uploads_aborted)),
                ("SyncIncomplete", "Count", json!(u64::from(!self.complete))),
                ("PendingFailures", "Count", json!(self.failed_keys.len())),
                ("SyncDuration", "Milliseconds", json!(self.duration_ms)),
            ],
        )
    }
}

/// What processing one key came to.
enum Step {
    Copied(u64),
    Skipped,
    Failed(String),
    DestinationOnly,
    WouldCopy,
    Enqueue(String),
}

/// The SQS client the fan-out uses.
pub use aws_sdk_sqs::Client as SqsClient;

/// Called with each key as its work completes (the CLI's progress bar).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

pub struct Syncer {
    replicator: Replicator,
    sqs: Option<aws_sdk_sqs::Client>,
    config: SyncConfig,
    region: Option<String>,
    progress: Option<Progress>,
}

impl Syncer {
    pub fn new(
        replicator: Replicator,
        sqs: Option<aws_sdk_sqs::Client>,
        config: SyncConfig,
        region: Option<String>,
    ) -> Self {
        Self {
            replicator,
            sqs,
            config,
            region,
            progress: None,
        }
    }

    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    pub fn replicator(&self) -> &Replicator {
        &self.replicator
    }

    /// One run: resume the pass from the checkpoint, work until the listing ends or the time
    /// budget does, save the checkpoint.
    pub async fn run(&self, req: SyncRequest) -> Result<SyncReport, ReplicationError> {
        let (run_id, dry_run) = (req.run_id.clone(), req.dry_run);
        let prefix = req
            .prefix
            .clone()
            .unwrap_or_else(|| self.replicator.config().key_prefix.clone());
        let result = self.run_leased(req).await;
        // A run that fails midway (a checkpoint write it cannot make, a queue it cannot
        // reach) gives its lease back, so the next run need not wait for it to expire.
        if result.is_err() && !dry_run {
            let key = checkpoint_key(&self.replicator.config().destination_prefix, &prefix);
            self.replicator.release_checkpoint(&key, &run_id).await;
        }
        result
    }

    async fn run_leased(&self, req: SyncRequest) -> Result<SyncReport, ReplicationError> {
        let started = Instant::now();
        let cfg = self.replicator.config();
        let prefix = req.prefix.clone().unwrap_or_else(|| cfg.key_prefix.clone());
        if !prefix.starts_with(&cfg.key_prefix) {
            return Err(ReplicationError::InvalidEvent(format!(
                "sync prefix {prefix:?} is outside KEY_PREFIX {:?}",
                cfg.key_prefix
            )));
        }
        let deadline = req
            .deadline
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(15 * 60));
        let stop_at = deadline
            .checked_sub(self.config.time_margin)
            .unwrap_or_else(Instant::now);
        // Copies start no new part after this; their last parts and the checkpoint fit after.
        let copy_deadline = deadline
            .checked_sub(self.config.time_margin / 2)
            .unwrap_or_else(Instant::now);
        let key = checkpoint_key(&cfg.destination_prefix, &prefix);
        let mut report = SyncReport {
            dry_run: req.dry_run,
            delete_phase: if self.config.delete {
                "not reached".into()
            } else {
                "off (SYNC_DELETE=false)".into()
            },
            ..Default::default()
        };

        let (mut checkpoint, mut etag) = if req.dry_run {
            (Checkpoint::default(), None)
        } else {
            let lease_ms = (deadline.saturating_duration_since(Instant::now())
                + Duration::from_secs(60))
            .as_millis() as i64;
            match self
                .replicator
                .acquire_checkpoint(&key, &req.run_id, now_ms(), now_ms() + lease_ms)
                .await?
            {
                Acquired::Held(stored) => (stored.checkpoint, stored.etag),
                Acquired::Busy(lease) => {
                    info!(owner = %lease.owner, "another sync run holds the checkpoint; stopping");
                    report.busy = true;
                    report.delete_phase = "not reached".into();
                    report.duration_ms = started.elapsed().as_millis() as u64;
                    return Ok(report);
                }
            }
        };
        if checkpoint.pass_started_ms == 0 {
            checkpoint.pass_started_ms = now_ms();
            checkpoint.start_after = None;
        }
        report.resumed_after = checkpoint.start_after.clone();

        let mut state = RunState {
            syncer: self,
            report,
            checkpoint,
            key: key.clone(),
            etag: etag.take(),
            last_save: Instant::now(),
            batch: Vec::new(),
            delete_candidates: Vec::new(),
            source_seen: 0,
            new_failures: Vec::new(),
            carried: Vec::new(),
            retried: 0,
            dry_run: req.dry_run,
        };

        // 1. Keys that failed before are retried first.
        state.carried = std::mem::take(&mut state.checkpoint.failed);
        let retries = futures::stream::iter(state.carried.clone().into_iter().map(|k| {
            Ok(SyncAction::Check(ListedObject {
                key: k,
                size: 0,
                etag: String::new(),
                last_modified: 0,
            }))
        }));
        // 2. Then the listing, from where the pass stands.
        let cut = Arc::new(AtomicBool::new(false));
        let examined = Arc::new(AtomicU64::new(0));
        let listing = self.merged_listing(&prefix, state.checkpoint.start_after.clone());
        let max = req.max_objects.unwrap_or(u64::MAX);
        let work = retries
            .map(|a| (true, a))
            .chain(listing.map(|a| (false, a)))
            .take_while(|_| {
                let go =
                    Instant::now() < stop_at && examined.fetch_add(1, AtomicOrdering::SeqCst) < max;
                if !go {
                    cut.store(true, AtomicOrdering::SeqCst);
                }
                futures::future::ready(go)
            })
            .map(|(retry, action)| async move {
                let action = action?;
                let key = action.key().to_owned();
                let step = self
                    .process(action, req.dry_run, copy_deadline, retry)
                    .await;
                Ok::<_, ReplicationError>((key, retry, step))
            })
            .buffered(self.config.concurrency);
        let mut listing_error = None;
        {
            // Scoped: dropping the stream stops the listing tasks.
            let mut work = std::pin::pin!(work);
            while let Some(item) = work.next().await {
                match item {
                    Ok((key, retry, step)) => state.record(key, retry, step).await?,
                    Err(e) => {
                        listing_error = Some(e);
                        break;
                    }
                }
            }
        }
        state.flush().await?;
        let complete = listing_error.is_none() && !cut.load(AtomicOrdering::SeqCst);

        // 3. Deletes, only after a listing that did not fail.
        if listing_error.is_none() {
            state.delete_phase().await;
        } else {
            state.report.delete_phase = "refused: the listing failed".into();
        }

        // 4. After a complete pass, abort the uploads interrupted copies left behind that
        //    no copy will resume.
        if complete && !req.dry_run {
            match self.replicator.sweep_abandoned_uploads(stop_at).await {
                Ok(n) => state.report.uploads_aborted = n,
                Err(e) => warn!(error = %e, "could not sweep abandoned multipart uploads"),
            }
        }

        // 5. Save where the pass stands, and release the lease.
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
        let mut report = state.report;
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

    /// What to do with one key.
    async fn process(
        &self,
        action: SyncAction,
        dry_run: bool,
        copy_deadline: Instant,
        retry: bool,
    ) -> Step {
        let r = &self.replicator;
        let cfg = r.config();
        let (object, certain, absent) = match action {
            SyncAction::DestinationOnly(_) => return Step::DestinationOnly,
            SyncAction::Missing(o) => (o, true, true),
            SyncAction::Changed(o) => (o, true, false),
            SyncAction::Check(o) => (o, false, false),
        };
        let mut request = ObjectRequest::created(cfg.source_bucket.clone(), object.key.clone());
        if !retry {
            request.size = Some(object.size);
            request.listed = Some(Listed {
                etag: object.etag.clone(),
                last_modified: object.last_modified,
                size: object.size,
                replica_absent: absent,
            });
        }
        if dry_run || self.sqs.is_some() {
            // Decide whether a copy is needed without writing: one HEAD of the replica when
            // the listings could not tell.
            let needed = certain
                || match r.replica_is_current(&request).await {
                    Ok(current) => !current,
                    Err(e) => return Step::Failed(e.to_string()),
                };
            return match (needed, dry_run) {
                (false, _) => Step::Skipped,
                (true, true) => Step::WouldCopy,
                (true, false) => Step::Enqueue(self.notification(&object)),
            };
        }
        match r.replicate_by(&request, Some(copy_deadline)).await {
            Ok(Outcome::Copied { bytes, .. }) => Step::Copied(bytes),
            Ok(_) => Step::Skipped,
            Err(e) => {
                warn!(key = %object.key, error = %e, "sync copy failed");
                Step::Failed(e.to_string())
            }
        }
    }

    /// An S3 `ObjectCreated` notification for `object`, as the event copier consumes it.
    fn notification(&self, object: &ListedObject) -> String {
        let bucket = &self.replicator.config().source_bucket;
        let now = chrono_like_now();
        json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": self.region.clone().unwrap_or_default(),
            "eventTime": now,
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "s3-fallback-replicator-sync"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "scheduled-sync",
                "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {
                    "key": crate::key::encode_event_key(&object.key),
                    "size": object.size,
                    "eTag": object.etag.trim_matches('"'),
                }
            }
        }]})
        .to_string()
    }

    /// Both listings, merge-joined in key order, each fetched ahead by its own task.
    fn merged_listing(
        &self,
        prefix: &str,
        start_after: Option<String>,
    ) -> impl Stream<Item = Result<SyncAction, ReplicationError>> + Send + 'static {
        let cfg = self.replicator.config();
        let clients = self.replicator.clients();
        let source = spawn_lister(
            clients.source.clone(),
            cfg.source_bucket.clone(),
            prefix.to_owned(),
            start_after.clone(),
            String::new(),
            Principal::Function,
        );
        let dest_prefix = cfg.destination_prefix.clone();
        let replica = spawn_lister(
            clients.destination.clone(),
            cfg.destination_bucket.clone(),
            format!("{dest_prefix}{prefix}"),
            start_after.map(|k| format!("{dest_prefix}{k}")),
            dest_prefix,
            Principal::DestinationRole(cfg.destination_role_arn.clone()),
        );
        futures::stream::unfold(
            (
                source,
                replica,
                None::<ListedObject>,
                None::<ListedObject>,
                false,
            ),
            |(mut s, mut r, mut sh, mut rh, failed)| async move {
                if failed {
                    return None;
                }
                if sh.is_none() {
                    match s.recv().await {
                        Some(Ok(o)) => sh = Some(o),
                        Some(Err(e)) => return Some((Err(e), (s, r, None, None, true))),
                        None => {}
                    }
                }
                if rh.is_none() {
                    match r.recv().await {
                        Some(Ok(o)) => rh = Some(o),
                        Some(Err(e)) => return Some((Err(e), (s, r, None, None, true))),
                        None => {}
                    }
                }
                let (take_s, take_r) = merge_order(sh.as_ref(), rh.as_ref());
                let a = if take_s { sh.take() } else { None };
                let b = if take_r { rh.take() } else { None };
                decide_pair(a, b).map(|action| (Ok(action), (s, r, sh, rh, false)))
            },
        )
    }
}

/// The run's mutable state, updated in key order.
struct RunState<'a> {
    syncer: &'a Syncer,
    report: SyncReport,
    checkpoint: Checkpoint,
    key: String,
    etag: Option<String>,
    last_save: Instant,
    /// Fan-out: notifications not yet sent, with the keys they cover (in order).
    batch: Vec<(String, Option<String>)>,
    delete_candidates: Vec<String>,
    source_seen: u64,
    new_failures: Vec<String>,
    /// Failed keys carried in from the checkpoint, and how many of them were retried.
    carried: Vec<String>,
    retried: usize,
    dry_run: bool,
}

impl RunState<'_> {
    async fn record(
        &mut self,
        key: String,
        retry: bool,
        step: Step,
    ) -> Result<(), ReplicationError> {
        if retry {
            self.retried += 1;
        } else if !matches!(step, Step::DestinationOnly) {
            self.source_seen += 1;
        }
        match step {
            Step::Copied(bytes) => {
                self.report.copied += 1;
                self.report.bytes += bytes;
            }
            Step::Skipped => self.report.skipped += 1,
            Step::Failed(error) => self.fail(key.clone(), error),
            Step::DestinationOnly => {
                self.report.destination_only += 1;
                if self.report.destination_only_keys.len() < REPORTED_KEYS {
                    self.report.destination_only_keys.push(key.clone());
                }
                if self.delete_candidates.len() as u64 <= self.syncer.config.max_deletes {
                    self.delete_candidates.push(key.clone());
                }
            }
            Step::WouldCopy => {
                self.report.would_copy_count += 1;
                if self.report.would_copy.len() < REPORTED_KEYS {
                    self.report.would_copy.push(key.clone());
                }
            }
            Step::Enqueue(body) => {
                self.batch.push((key.clone(), Some(body)));
                if self.batch.iter().filter(|(_, b)| b.is_some()).count() >= 10 {
                    self.flush().await?;
                }
                return Ok(());
            }
        }
        if retry {
            return Ok(());
        }
        if !self.batch.is_empty() {
            // Keep the checkpoint behind notifications not yet sent.
            self.batch.push((key, None));
            return Ok(());
        }
        self.advance(key).await
    }

    /// Failed keys for the next run: this run's, and carried ones it did not get to.
    fn pending_failures(&self) -> Vec<String> {
        let mut keys = self.new_failures.clone();
        keys.extend(self.carried.iter().skip(self.retried).cloned());
        keys.truncate(CARRIED_FAILURES);
        keys
    }

    fn fail(&mut self, key: String, error: String) {
        self.report.failed += 1;
        if self.report.failed_keys.len() < REPORTED_KEYS {
            self.report.failed_keys.push(FailedKey {
                key: key.clone(),
                error,
            });
        }
        if self.new_failures.len() < CARRIED_FAILURES {
            self.new_failures.push(key);
        }
    }

    async fn advance(&mut self, key: String) -> Result<(), ReplicationError> {
        self.checkpoint.start_after = Some(key);
        if !self.dry_run && self.last_save.elapsed() >= SAVE_EVERY {
            // Progress is saved as it goes, so a run killed at its timeout loses little.
            self.checkpoint.failed = self.pending_failures();
            self.save().await?;
        }
        Ok(())
    }

    /// Sends pending notifications with SendMessageBatch (10 per request).
    async fn flush(&mut self) -> Result<(), ReplicationError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let sqs = self
            .syncer
            .sqs
            .as_ref()
            .expect("batches exist only with a queue");
        let url = self.syncer.config.queue_url.clone().unwrap_or_default();
        let entries: Vec<_> = batch
            .iter()
            .filter_map(|(k, b)| b.as_ref().map(|b| (k, b)))
            .enumerate()
            .map(|(i, (_, body))| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let keys: Vec<&String> = batch
            .iter()
            .filter(|(_, b)| b.is_some())
            .map(|(k, _)| k)
            .collect();
        let sent = sqs
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await;
        match sent {
            Ok(out) => {
                let failed: Vec<usize> = out
                    .failed()
                    .iter()
                    .filter_map(|f| f.id().parse().ok())
                    .collect();
                for (i, key) in keys.iter().enumerate() {
                    if failed.contains(&i) {
                        self.fail(
                            (*key).clone(),
                            "SQS SendMessageBatch refused this entry".into(),
                        );
                    } else {
                        self.report.enqueued += 1;
                    }
                }
            }
            Err(e) => {
                let err = classify_sqs(&url, e);
                for key in keys {
                    self.fail(key.clone(), err.clone());
                }
            }
        }
        if let Some((last, _)) = batch.last() {
            self.advance(last.clone()).await?;
        }
        Ok(())
    }

    /// SYNC_DELETE: delete destination-only replicas that carry provenance and whose
    /// source key is still absent — all of them or, above SYNC_MAX_DELETES, none.
    async fn delete_phase(&mut self) {
        let config = &self.syncer.config;
        if !config.delete {
            return;
        }
        if self.dry_run {
            self.report.delete_phase = format!(
                "dry run: {} candidate(s), none deleted",
                self.report.destination_only
            );
            return;
        }
        if self.report.destination_only > config.max_deletes {
            self.report.delete_phase = format!(
                "refused: {} destination-only objects exceed SYNC_MAX_DELETES={}; nothing deleted",
                self.report.destination_only, config.max_deletes
            );
            warn!("{}", self.report.delete_phase);
            return;
        }
        if self.source_seen == 0 && self.report.destination_only > 0 {
            self.report.delete_phase =
                "refused: the source listing returned no objects in this run; nothing deleted"
                    .into();
            warn!("{}", self.report.delete_phase);
            return;
        }
        let r = &self.syncer.replicator;
        let candidates = std::mem::take(&mut self.delete_candidates);
        for key in candidates {
            match r.delete_orphan(&key).await {
                Ok(true) => self.report.deleted += 1,
                Ok(false) => {}
                Err(e) => self.fail(key, e.to_string()),
            }
        }
        self.report.delete_phase = format!("done: {} deleted", self.report.deleted);
    }

    async fn save(&mut self) -> Result<(), ReplicationError> {
        let r = &self.syncer.replicator;
        match r
            .write_checkpoint(&self.key, &self.checkpoint, self.etag.as_deref())
            .await?
        {
            Some(etag) => {
                self.etag = Some(etag);
                self.last_save = Instant::now();
                Ok(())
            }
            None => Err(ReplicationError::Contended {
                resource: format!("checkpoint {}", self.key),
                attempts: 1,
            }),
        }
    }
}

fn classify_sqs<E>(
    url: &str,
    e: aws_sdk_sqs::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = match &e {
        aws_sdk_sqs::error::SdkError::ServiceError(s) => {
            s.err().code().unwrap_or("unknown").to_owned()
        }
        _ => "no response".to_owned(),
    };
    format!(
        "sqs:SendMessage to {url} failed ({code}): {}",
        crate::error::error_chain(&e)
    )
}

/// Spawns a task listing `bucket` under `prefix` after `start_after`, sending each object
/// with `strip` removed from its key; objects under the reserved prefix are left out.
fn spawn_lister(
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    start_after: Option<String>,
    strip: String,
    principal: Principal,
) -> mpsc::Receiver<Result<ListedObject, ReplicationError>> {
    let (tx, rx) = mpsc::channel(2000);
    tokio::spawn(async move {
        let reserved = format!("{strip}{RESERVED_PREFIX}");
        let mut pages = client
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(&prefix)
            .set_start_after(start_after)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let req = Request {
                        action: "s3:ListBucket",
                        bucket: bucket.clone(),
                        key: None,
                        principal: principal.clone(),
                        kms_key: None,
                    };
                    let _ = tx.send(Err(classify(&req, e))).await;
                    return;
                }
            };
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                if key.starts_with(&reserved) {
                    continue;
                }
                let Some(relative) = key.strip_prefix(strip.as_str()) else {
                    continue;
                };
                let listed = ListedObject {
                    key: relative.to_owned(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    etag: o.e_tag().unwrap_or_default().to_owned(),
                    last_modified: o.last_modified().map(|t| t.secs()).unwrap_or(0),
                };
                if tx.send(Ok(listed)).await.is_err() {
                    return; // the run stopped reading
                }
            }
        }
    });
    rx
}

/// RFC 3339 UTC timestamp with milliseconds, as S3 writes eventTime.
fn chrono_like_now() -> String {
    aws_smithy_types::DateTime::from_millis(now_ms())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

impl Replicator {
    /// Deletes (a delete marker, in a versioned bucket) a destination-only replica if it
    /// carries provenance and its source key does not exist. `Ok(false)` when it was kept.
    pub(crate) async fn delete_orphan(&self, key: &str) -> Result<bool, ReplicationError> {
        let cfg = self.config();
        let dest_key = cfg.destination_key(key);
        let Some(replica) = self.head_replica(&dest_key).await? else {
            return Ok(false);
        };
        if replica.provenance.is_none() {
            return Ok(false);
        }
        let source = ObjectRequest::created(cfg.source_bucket.clone(), key.to_owned());
        if self.head_source(&source).await?.is_some() {
            return Ok(false);
        }
        self.clients()
            .destination
            .delete_object()
            .bucket(&cfg.destination_bucket)
            .key(&dest_key)
            .send()
            .await
            .map_err(|e| classify(&self.dest_request("s3:DeleteObject", Some(&dest_key)), e))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sync_variables_lists_exactly_what_is_read() {
        let read = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let _ = SyncConfig::from_lookup(|k| {
            read.borrow_mut().insert(k.to_owned());
            None
        });
        let listed: std::collections::BTreeSet<String> =
            SYNC_VARIABLES.iter().map(|v| v.to_string()).collect();
        assert_eq!(read.into_inner(), listed);
    }

    #[test]
    fn sync_settings_are_validated_by_name() {
        let load = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            SyncConfig::from_lookup(|k| m.get(k).cloned())
        };
        let d = load(&[]).unwrap();
        assert_eq!((d.concurrency, d.delete, d.max_deletes), (32, false, 100));
        for (k, v) in [
            ("SYNC_CONCURRENCY", "0"),
            ("SYNC_DELETE", "sure"),
            ("SYNC_MAX_DELETES", "-1"),
            ("SYNC_QUEUE_URL", "my-queue"),
            ("SYNC_TIME_MARGIN_SECONDS", "0"),
        ] {
            let err = load(&[(k, v)]).unwrap_err();
            assert!(err.to_string().contains(k), "{err}");
        }
    }
}
