//! The [`Replicator`]: one source object in, one [`Outcome`] out.
//!
//! ```text
//! ObjectRequest ─scope─▶ facts (HEAD replica, read source, source order)
//!               ─plan::decide─▶ write or not ─transfer::choose─▶ CopyPlan
//!               ─execute─▶ PUT | CopyObject | multipart (parts streamed or copied) ─▶ Outcome
//! ```
//!
//! Every write is conditional (If-None-Match when there was no replica, If-Match on the
//! replica's ETag otherwise). A lost race means another writer got there first: read and
//! decide again.

mod attributes;
mod delete;
mod execute;
mod facts;
mod hold;
mod kept;
mod landed;
mod lock;
mod multipart;
mod parts;
mod sweep;
mod tags;

pub use sweep::Sweep;

use std::sync::atomic::{AtomicU8, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info};

use crate::budget::Budget;
use crate::clock::Stop;
use crate::config::{Config, NativeMode};
use crate::error::{Principal, ReplicationError};
use crate::facts::{Provenance, SourceObject};
use crate::outcome::{Method, Outcome, SkipReason};
use crate::plan::transfer::{self, Route};
use crate::plan::{self, Decision};
use crate::request::{ChangeKind, ObjectRequest};
use crate::s3::clients::Clients;
use crate::s3::{Bucket, Condition, Write};
use crate::state::uploads::Uploads;
use crate::state::{is_reserved, StateStore, RESERVED_SEGMENT};

/// How many times a conditional write is re-decided after losing a race.
const MAX_CONDITIONAL_ATTEMPTS: u32 = 5;

/// The copy engine, shared by every invocation of a warm function.
#[derive(Debug, Clone)]
pub struct Replicator {
    config: Arc<Config>,
    clients: Clients,
    source: Bucket,
    destination: Destination,
    budget: Budget,
}

/// Where replicas go, and what the engine has learnt about going there.
#[derive(Debug, Clone)]
struct Destination {
    bucket: Bucket,
    state: StateStore,
    uploads: Uploads,
    /// Whether the destination role can read the source (server-side copy): learnt from
    /// the first copy, remembered for the life of this process (a Lambda cold start).
    server_side: Arc<AtomicU8>,
    /// Whether the bucket has Object Lock: read before the first locked write, then
    /// remembered (a bucket's Object Lock, once enabled, cannot be disabled).
    object_lock: Arc<tokio::sync::OnceCell<bool>>,
}

const SERVER_SIDE_UNKNOWN: u8 = 0;
const SERVER_SIDE_YES: u8 = 1;
const SERVER_SIDE_NO: u8 = 2;

impl Destination {
    fn route(&self) -> Route {
        match self.server_side.load(AtomicOrdering::Relaxed) {
            SERVER_SIDE_NO => Route::Stream,
            _ => Route::ServerSide,
        }
    }

    /// Server-side copy was denied: stream from now on, if this is news (`true`).
    fn learn_denied(&self) -> bool {
        self.server_side
            .compare_exchange(
                SERVER_SIDE_UNKNOWN,
                SERVER_SIDE_NO,
                AtomicOrdering::Relaxed,
                AtomicOrdering::Relaxed,
            )
            .is_ok()
    }

    fn learn_allowed(&self) {
        let _ = self.server_side.compare_exchange(
            SERVER_SIDE_UNKNOWN,
            SERVER_SIDE_YES,
            AtomicOrdering::Relaxed,
            AtomicOrdering::Relaxed,
        );
    }
}

/// One copy attempt: what is copied, to where, on what condition.
struct Job<'a> {
    req: &'a ObjectRequest,
    dest_key: &'a str,
    source: &'a SourceObject,
    provenance: Provenance,
    /// The write's checksum: the source's own full-object one when it has one.
    checksum: crate::plan::checksum::ReplicaChecksum,
    condition: Condition,
    stop: &'a Stop,
}

/// A replica written.
struct Copied {
    method: Method,
    version_id: Option<String>,
    /// Parts an earlier, interrupted attempt had already uploaded (multipart only).
    parts_resumed: u64,
}

impl Replicator {
    pub fn new(config: Config, clients: Clients) -> Self {
        let dest = &config.destination;
        let source = Bucket::new(
            clients.source.clone(),
            &config.source.bucket,
            Principal::Function,
            None,
        );
        let bucket = Bucket::new(
            clients.destination.clone(),
            &dest.bucket,
            Principal::DestinationRole(dest.role_arn.clone()),
            Some(dest.kms_key_id.clone()),
        );
        let state = StateStore::new(
            bucket.clone(),
            &dest.prefix,
            &dest.kms_key_id,
            dest.bucket_key_enabled,
        );
        let initial = if config.transfer.server_side_copy {
            SERVER_SIDE_UNKNOWN
        } else {
            SERVER_SIDE_NO
        };
        Self {
            budget: Budget::new(config.transfer.max_in_flight_bytes),
            destination: Destination {
                bucket,
                uploads: Uploads::new(state.clone()),
                state,
                server_side: Arc::new(AtomicU8::new(initial)),
                object_lock: Arc::default(),
            },
            source,
            clients,
            config: Arc::new(config),
        }
    }

    /// This engine, sharing `budget` with others (every destination of one process).
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The source bucket, as the function's role reads it.
    pub fn source(&self) -> &Bucket {
        &self.source
    }

    /// The destination bucket, as the destination role writes it.
    pub fn destination(&self) -> &Bucket {
        &self.destination.bucket
    }

    /// The replicator's own state in the destination bucket.
    pub fn state(&self) -> &StateStore {
        &self.destination.state
    }

    /// The most object bytes held in memory at once so far, across all copies.
    pub fn peak_bytes_held(&self) -> u64 {
        self.budget.peak()
    }

    /// Replicates (or deletes, or skips) one object. `Ok` outcomes need no retry; an `Err`
    /// says whether a retry can help.
    pub async fn replicate(&self, req: &ObjectRequest) -> Result<Outcome, ReplicationError> {
        self.replicate_until(req, &Stop::never()).await
    }

    /// Like [`replicate`](Self::replicate), but starts no new part after `deadline`: a
    /// multipart copy still in progress then keeps its upload for the next attempt (which
    /// sends only the missing parts) and is reported as retryable.
    pub async fn replicate_by(
        &self,
        req: &ObjectRequest,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        self.replicate_until(req, &Stop::at(deadline)).await
    }

    /// Like [`replicate`](Self::replicate), asking `stop` before each part.
    pub async fn replicate_until(
        &self,
        req: &ObjectRequest,
        stop: &Stop,
    ) -> Result<Outcome, ReplicationError> {
        let Some(dest_key) = self.scope(req)? else {
            return Ok(skipped(SkipReason::OutOfScope));
        };
        match req.kind {
            ChangeKind::Created => match self.copy(req, &dest_key, stop, None).await {
                Err(e @ ReplicationError::Archived { .. }) => restore(self, req, e).await,
                other => other,
            },
            ChangeKind::DeleteMarkerCreated if self.config.destination.replicate_deletes => {
                delete::for_event(self, req, &dest_key).await
            }
            ChangeKind::DeleteMarkerCreated => Ok(skipped(SkipReason::DeletesNotReplicated)),
            ChangeKind::VersionDeleted => Ok(skipped(SkipReason::VersionDeleteNotReplicated)),
            ChangeKind::KeyDeleted if self.config.destination.replicate_deletes => {
                delete::for_event(self, req, &dest_key).await
            }
            ChangeKind::KeyDeleted => Ok(skipped(SkipReason::DeletesNotReplicated)),
            ChangeKind::Expired if self.config.destination.replicate_expirations => {
                delete::for_event(self, req, &dest_key).await
            }
            ChangeKind::Expired => Ok(skipped(SkipReason::ExpirationsNotReplicated)),
            ChangeKind::TagsChanged => tags::for_event(self, req, &dest_key).await,
        }
    }

    /// The replica key for a request, after every check that needs no request to S3:
    /// `None` when the key is outside KEY_PREFIX.
    fn scope(&self, req: &ObjectRequest) -> Result<Option<String>, ReplicationError> {
        if req.bucket != self.config.source.bucket {
            return Err(ReplicationError::ForeignBucket {
                bucket: req.bucket.clone(),
                expected: self.config.source.bucket.clone(),
            });
        }
        crate::key::validate_key(&req.key)?;
        if !req.key.starts_with(&self.config.source.key_prefix) {
            return Ok(None);
        }
        let dest_key = self.config.destination_key(&req.key);
        crate::key::validate_key(&dest_key)?;
        if is_reserved(&req.key) || is_reserved(&dest_key) {
            return Err(ReplicationError::Rejected {
                resource: self.source.resource(&req.key),
                message: format!(
                    "keys with a {RESERVED_SEGMENT} segment are reserved for the replicator's own \
                     state (this deployment's or another's sharing the destination bucket)"
                ),
            });
        }
        Ok(Some(dest_key))
    }

    /// Copies the current source version over a replica found bad (corrupt bytes, the
    /// wrong key) although its provenance names that version: replaced with If-Match on
    /// `bad_etag`, and only while the replica is still that object. Anything else at the
    /// replica key is decided as usual.
    pub async fn replace_bad(
        &self,
        req: &ObjectRequest,
        bad_etag: &str,
    ) -> Result<Outcome, ReplicationError> {
        let Some(dest_key) = self.scope(req)? else {
            return Ok(skipped(SkipReason::OutOfScope));
        };
        self.copy(req, &dest_key, &Stop::never(), Some(bad_etag))
            .await
    }

    /// facts → decide → choose → execute, again after a lost race. A replica whose ETag is
    /// `bad` is replaced even when it names the source version.
    async fn copy(
        &self,
        req: &ObjectRequest,
        dest_key: &str,
        stop: &Stop,
        bad: Option<&str>,
    ) -> Result<Outcome, ReplicationError> {
        let mut read = facts::Reading::default();
        for attempt in 1..=MAX_CONDITIONAL_ATTEMPTS {
            let replica = facts::replica(self, req, dest_key, attempt).await?;
            let condemned = replica.as_ref().filter(|r| Some(r.etag.as_str()) == bad);
            if condemned.is_none() && plan::replica_made_from(req, replica.as_ref()) {
                let replica = replica.expect("a replica made from the request's version");
                if let Some(p) = replica
                    .provenance
                    .as_ref()
                    .filter(|_| req.size.is_some_and(|s| self.multipart_sized(s)))
                {
                    kept::abandon_kept(self, dest_key, p.version_id.as_deref(), &p.etag).await;
                }
                return lock::follow(self, req, dest_key, &replica).await;
            }
            let route = self.destination.route();
            let headers_first = replica.as_ref().is_some_and(|r| r.is_native())
                || matches!(self.config.source.native, NativeMode::Heal { .. });
            if !read
                .ensure(self, req, route, attempt, headers_first)
                .await?
            {
                return Ok(skipped(SkipReason::SourceGone));
            }
            let source = read.get().expect("read above");
            if let Some(reason) = self.left_to_native(req, &source.object) {
                return Ok(skipped(reason));
            }
            let facts = source.object.facts(req.sequencer.clone());
            let order = facts::order(self, req, source, &facts, replica.as_ref(), attempt).await?;
            let condition = match plan::decide(&facts, replica.as_ref(), order) {
                Decision::UpToDate if condemned.is_some() => {
                    Condition::Matches(condemned.expect("checked").etag.clone())
                }
                Decision::Create => Condition::Absent,
                Decision::Replace { replica_etag } => Condition::Matches(replica_etag),
                decision => {
                    // Not written: an upload a stopped attempt kept for this version is
                    // useless now.
                    if self.multipart_sized(source.object.size) {
                        let s = &source.object;
                        kept::abandon_kept(self, dest_key, s.version_id.as_deref(), &s.etag).await;
                    }
                    if let (Decision::UpToDate, Some(replica)) = (&decision, &replica) {
                        let lock = &source.object.lock;
                        return lock::up_to_date(self, dest_key, replica, lock).await;
                    }
                    return Ok(skipped(match decision {
                        Decision::UpToDate => SkipReason::UpToDate,
                        Decision::NativeReplicaOfUnknownVersion => {
                            SkipReason::NativeReplicaOfUnknownVersion
                        }
                        _ => SkipReason::ReplicaIsNewer,
                    }));
                }
            };
            let size = source.object.size;
            let copy_plan = transfer::choose(size, &self.config.limits(), route, stop.time_left())
                .map_err(|e| ReplicationError::Rejected {
                    resource: self.source.resource(&req.key),
                    message: e.to_string(),
                })?;
            let checksum = crate::plan::checksum::replica_checksum(
                source.object.checksum.as_ref(),
                copy_plan.parts().is_some(),
                self.config.transfer.checksum_algorithm.to_sdk(),
            );
            let job = Job {
                req,
                dest_key,
                source: &source.object,
                provenance: attributes::provenance(req, &source.object, &checksum),
                checksum,
                condition,
                stop,
            };
            match execute::run(self, &job, copy_plan, read.body()).await {
                Ok(Write::Done(done)) => {
                    if route == Route::ServerSide {
                        self.destination.learn_allowed();
                    }
                    info!(bytes = size, method = ?done.method, version_id = ?done.version_id, "replica written");
                    return Ok(Outcome::Copied {
                        bytes: size,
                        method: done.method,
                        replica_version_id: done.version_id,
                        parts_resumed: done.parts_resumed,
                    });
                }
                Ok(Write::LostRace) => {
                    debug!(attempt, "conditional write lost a race; deciding again");
                }
                // The destination role may not read the source: stream from now on.
                Err(ReplicationError::AccessDenied { .. })
                    if route == Route::ServerSide && self.destination.learn_denied() =>
                {
                    info!("server-side copy denied; streaming through the function from now on");
                    read = facts::Reading::default();
                }
                Err(e) => return Err(e),
            }
        }
        Err(ReplicationError::Contended {
            resource: self.destination.bucket.resource(dest_key),
            attempts: MAX_CONDITIONAL_ATTEMPTS,
        })
    }

    /// Heal mode: whether native replication's status of the source version leaves it to
    /// native replication (completed, or pending within its grace period). A version named
    /// by a native failure event is copied whatever its status says.
    fn left_to_native(&self, req: &ObjectRequest, source: &SourceObject) -> Option<SkipReason> {
        let NativeMode::Heal { pending_grace_s } = self.config.source.native else {
            return None;
        };
        if req.native_failure.is_some() {
            return None;
        }
        plan::heal(
            source.native,
            source.last_modified,
            crate::clock::now_ms() / 1000,
            pending_grace_s,
        )
    }

    /// Whether an object of `size` bytes is copied in parts (and so may have kept uploads).
    fn multipart_sized(&self, size: u64) -> bool {
        size > self.config.transfer.multipart_threshold
    }

    /// Whether the replica is known to be up to date for a request, from one HEAD.
    pub async fn replica_is_current(&self, req: &ObjectRequest) -> Result<bool, ReplicationError> {
        let dest_key = self.config.destination_key(&req.key);
        let replica = facts::replica(self, req, &dest_key, 2).await?;
        Ok(plan::replica_made_from(req, replica.as_ref()))
    }

    /// Deletes (a delete marker, in a versioned bucket) a destination-only replica if it
    /// carries provenance and its source key does not exist. `Ok(false)` when it was kept.
    pub async fn delete_orphan(&self, key: &str) -> Result<bool, ReplicationError> {
        delete::orphan(self, key).await
    }

    /// Aborts the multipart uploads nobody will finish: recorded ones no copy holds whose
    /// replica has since been written from the same source version or a newer one, and the
    /// destination role's unrecorded ones older than the upload lease (see
    /// `replicate/sweep.rs`). An upload that can still be resumed is kept. What cannot be
    /// read or aborted is logged and left to the next sweep and the bucket's lifecycle rule.
    pub async fn sweep_abandoned_uploads(&self, until: Instant) -> Result<Sweep, ReplicationError> {
        sweep::abandoned_uploads(self, until).await
    }
}

/// An archived source version: with RESTORE_ARCHIVED its restore is started and the object
/// reported as pending; without it, the error stands.
async fn restore(
    r: &Replicator,
    req: &ObjectRequest,
    archived: ReplicationError,
) -> Result<Outcome, ReplicationError> {
    let Some(restore) = r.config.source.restore else {
        return Err(archived);
    };
    let answer = r
        .source
        .restore(&req.key, req.version_id.as_deref(), restore)
        .await?;
    let in_progress = answer == crate::s3::Restoring::AlreadyInProgress;
    info!(
        tier = restore.tier.as_str(),
        days = restore.days,
        in_progress,
        "source archived; restore requested, copied when it completes"
    );
    Ok(Outcome::RestoreRequested {
        tier: restore.tier.as_str().to_owned(),
        days: restore.days,
        in_progress,
    })
}

fn skipped(reason: SkipReason) -> Outcome {
    Outcome::Skipped { reason }
}
