//! The scheduled audit: a verification pass run by the scheduled-sync function within its
//! time budget, checkpointed and resumable exactly like a sync pass — its own checkpoint in
//! the same [`Checkpoints`] store (`verify/{SOURCE_BUCKET}/{scope}.json`), its own lease — with evidence.
//!
//! ```text
//! lease ─▶ listing from the checkpoint ─▶ check (key order) ─▶ manifest part (10,000 rows)
//!                                                     └─▶ checkpoint: after its last key,
//!                                                         totals += its totals, chain += its hash
//! pass complete ─▶ summary (totals, parts, chain) ─▶ new pass next run
//! ```
//!
//! Totals move into the checkpoint only together with the part that lists their objects and
//! the key the next run resumes after, so a run stopped anywhere (its deadline, a crash)
//! never counts an object twice: the keys after the checkpoint are checked again and their
//! part written again.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::info;

use super::evidence::{chain, Entry, Evidence, Written, PART_ENTRIES};
use super::{Class, Options, Tally, Verifier};
use crate::clock::now_ms;
use crate::error::{Principal, ReplicationError};
use crate::s3::Bucket;
use crate::state::checkpoint::{scope_name, Acquired, Checkpoint, Checkpoints};

/// How often a long run records its progress even between full parts.
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// One audit run's request.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    pub prefix: Option<String>,
    pub options: Options,
    pub deadline: Option<Instant>,
    /// Identifies this run in the checkpoint's lease (the Lambda request id).
    pub run_id: String,
}

/// A pass's progress, kept in its checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub pass: String,
    pub parts: u64,
    /// SHA-256 chain over the parts written so far (see [`super::evidence`]).
    pub chain: String,
    pub tally: Tally,
}

/// Where a completed pass's summary went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryWritten {
    pub bucket: String,
    #[serde(flatten)]
    pub written: Written,
    /// What S3 reports of the summary's Object Lock (AUDIT_BUCKET with default retention).
    pub lock_mode: Option<String>,
    pub retain_until: Option<String>,
}

/// The run's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditReport {
    /// This run's totals (the pass's are in `pass_totals`).
    pub run: Tally,
    pub pass_totals: Tally,
    pub pass: String,
    pub complete: bool,
    pub busy: bool,
    pub resumed_after: Option<String>,
    pub checkpoint: Option<String>,
    pub parts_written: u64,
    pub summary: Option<SummaryWritten>,
    pub duration_ms: u64,
}

impl AuditReport {
    /// The EMF document for this run: every class of this run's objects, and their sum.
    pub fn emf(&self, function: &str) -> serde_json::Value {
        use crate::metrics::{
            AUDIT_DURATION, AUDIT_INCOMPLETE, OBJECTS_VERIFIED, VERIFY_PROBLEMS, VERIFY_REPAIRED,
        };
        let mut metrics = vec![
            (OBJECTS_VERIFIED, json!(self.run.objects)),
            (VERIFY_PROBLEMS, json!(self.run.problem_count())),
            (VERIFY_REPAIRED, json!(self.run.repaired)),
            (AUDIT_INCOMPLETE, json!(u64::from(!self.complete))),
            (AUDIT_DURATION, json!(self.duration_ms)),
        ];
        for class in Class::ALL {
            metrics.push((class.metric(), json!(self.run.count(class))));
        }
        crate::metrics::emf_document(function, now_ms(), &metrics)
    }
}

/// Runs audit passes with one [`Verifier`].
pub struct Auditor {
    verifier: Verifier,
    checkpoints: Checkpoints,
    evidence: Evidence,
    time_margin: Duration,
}

/// One run's state between parts.
struct Run {
    key: String,
    checkpoint: Checkpoint,
    etag: Option<String>,
    progress: Progress,
    part: Vec<Entry>,
    part_tally: Tally,
    last_key: Option<String>,
    report: AuditReport,
    last_save: Instant,
}

impl Auditor {
    /// Evidence goes to AUDIT_BUCKET when set (as the destination role), else to the
    /// destination bucket; `time_margin` is the sync's SYNC_TIME_MARGIN_SECONDS.
    pub fn new(verifier: Verifier, time_margin: Duration) -> Self {
        let r = verifier.replicator();
        let dest = &r.config().destination;
        let bucket = match &verifier.config().audit_bucket {
            Some(name) => Bucket::new(
                r.clients().destination.clone(),
                name,
                Principal::DestinationRole(dest.role_arn.clone()),
                Some(dest.kms_key_id.clone()),
            ),
            None => r.destination().clone(),
        };
        Self {
            evidence: Evidence::new(
                bucket,
                &format!(
                    "{}{}/",
                    crate::permissions::audit_prefix(&dest.prefix),
                    r.config().source.bucket
                ),
                &dest.kms_key_id,
                dest.bucket_key_enabled,
            ),
            checkpoints: Checkpoints::new(r.state().clone()),
            verifier,
            time_margin,
        }
    }

    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }

    /// The checkpoint key of an audit over `prefix` with `options` (deep passes apart).
    pub fn checkpoint_key(&self, prefix: &str, options: Options) -> String {
        let deep = if options.deep { "-deep" } else { "" };
        let source = &self.verifier.replicator().config().source.bucket;
        self.checkpoints.key_named(&format!(
            "verify/{source}/{}{deep}.json",
            scope_name(prefix)
        ))
    }

    /// One run: resume the pass, check until the listing or the time budget ends, record.
    pub async fn run(&self, req: AuditRequest) -> Result<AuditReport, ReplicationError> {
        let started = Instant::now();
        let prefix = self.verifier.scope(req.prefix.as_deref())?;
        let deadline = req
            .deadline
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(15 * 60));
        let stop_at = deadline
            .checked_sub(self.time_margin)
            .unwrap_or_else(Instant::now);
        let lease_until = now_ms()
            + (deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(60))
                .as_millis() as i64;
        let key = self.checkpoint_key(&prefix, req.options);
        let mut run = match self
            .checkpoints
            .acquire(&key, &req.run_id, now_ms(), lease_until)
            .await?
        {
            Acquired::Held(stored) => self.begin(key.clone(), *stored, &prefix, req.options),
            Acquired::Busy(lease) => {
                info!(owner = %lease.owner, "another audit run holds the checkpoint; stopping");
                return Ok(AuditReport {
                    busy: true,
                    duration_ms: started.elapsed().as_millis() as u64,
                    ..AuditReport::default()
                });
            }
        };
        let result = match self.resolved(&key).await {
            Ok(verifier) => {
                self.work(&verifier, &mut run, &prefix, req.options, stop_at)
                    .await
            }
            Err(e) => Err(e),
        };
        let result = match result {
            Ok(complete) => self.finish(run, complete, &prefix, req.options).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.checkpoints.release(&key, &req.run_id).await;
        }
        let mut report = result?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        info!(
            verified = report.run.objects,
            problems = report.run.problem_count(),
            complete = report.complete,
            "audit run finished"
        );
        Ok(report)
    }

    fn begin(
        &self,
        key: String,
        stored: crate::state::checkpoint::Stored,
        prefix: &str,
        options: Options,
    ) -> Run {
        let mut checkpoint = stored.checkpoint;
        let progress = checkpoint
            .audit
            .take()
            .and_then(|v| serde_json::from_value::<Progress>(v).ok())
            .filter(|_| checkpoint.pass_started_ms != 0);
        let progress = progress.unwrap_or_else(|| {
            checkpoint.pass_started_ms = now_ms();
            checkpoint.start_after = None;
            let pass = pass_id(checkpoint.pass_started_ms, prefix, options);
            Progress {
                chain: pass.clone(),
                pass,
                parts: 0,
                tally: Tally::keeping(0),
            }
        });
        Run {
            key,
            report: AuditReport {
                pass: progress.pass.clone(),
                resumed_after: checkpoint.start_after.clone(),
                run: Tally::keeping(0),
                ..AuditReport::default()
            },
            checkpoint,
            etag: stored.etag,
            progress,
            part: Vec::new(),
            part_tally: Tally::keeping(0),
            last_key: None,
            last_save: Instant::now(),
        }
    }

    /// The verifier, with the key ARN replicas must name when DESTINATION_KMS_KEY_ID is an
    /// alias ARN: the one S3 reports on the checkpoint, just written with that alias.
    async fn resolved(&self, checkpoint_key: &str) -> Result<Verifier, ReplicationError> {
        let alias = &self.verifier.replicator().config().destination.kms_key_id;
        if !alias.contains(":alias/") {
            return Ok(self.verifier.clone());
        }
        let head = self
            .checkpoints
            .store()
            .bucket()
            .head(checkpoint_key, None)
            .await?;
        match head.as_ref().and_then(|h| h.ssekms_key_id()) {
            Some(arn) => Ok(self.verifier.clone().with_kms_key_arn(arn)),
            None => Err(ReplicationError::Rejected {
                resource: self.checkpoints.store().bucket().resource(checkpoint_key),
                message: format!("S3 names no KMS key on the checkpoint written with {alias}"),
            }),
        }
    }

    /// Checks from the checkpoint on; `true` when the listing was worked to its end.
    async fn work(
        &self,
        verifier: &Verifier,
        run: &mut Run,
        prefix: &str,
        options: Options,
        stop_at: Instant,
    ) -> Result<bool, ReplicationError> {
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut checked = std::pin::pin!(verifier.check_until(
            prefix,
            run.checkpoint.start_after.clone(),
            options,
            Some(stop_at),
            cut.clone(),
        ));
        while let Some(item) = checked.next().await {
            let c = item?;
            run.report.run.add(&c);
            run.part_tally.add(&c);
            run.part.push(Entry::from(&c));
            run.last_key = Some(c.key);
            if run.part.len() >= PART_ENTRIES || run.last_save.elapsed() >= SAVE_EVERY {
                self.record_part(run).await?;
            }
        }
        Ok(!cut.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Writes the part held, then moves its totals and last key into the checkpoint.
    async fn record_part(&self, run: &mut Run) -> Result<(), ReplicationError> {
        if run.part.is_empty() {
            return Ok(());
        }
        let written = self
            .evidence
            .write_part(&run.progress.pass, run.progress.parts, &run.part)
            .await?;
        run.progress.parts += 1;
        run.progress.chain = chain(&run.progress.chain, &written.sha256);
        run.progress.tally.merge(&run.part_tally);
        run.checkpoint.start_after = run.last_key.clone();
        run.part.clear();
        run.part_tally = Tally::keeping(0);
        run.report.parts_written += 1;
        self.save(run).await
    }

    async fn save(&self, run: &mut Run) -> Result<(), ReplicationError> {
        let mut checkpoint = run.checkpoint.clone();
        checkpoint.audit = Some(serde_json::to_value(&run.progress).expect("progress serialises"));
        match self
            .checkpoints
            .write(&run.key, &checkpoint, run.etag.as_deref())
            .await?
        {
            Some(etag) => {
                run.etag = Some(etag);
                run.last_save = Instant::now();
                Ok(())
            }
            None => Err(ReplicationError::Contended {
                resource: format!("audit checkpoint {}", run.key),
                attempts: 1,
            }),
        }
    }

    /// Records the last part; a complete pass gets its summary and the next run a new pass.
    async fn finish(
        &self,
        mut run: Run,
        complete: bool,
        prefix: &str,
        options: Options,
    ) -> Result<AuditReport, ReplicationError> {
        self.record_part(&mut run).await?;
        run.report.complete = complete;
        run.report.pass_totals = run.progress.tally.clone();
        if complete {
            run.report.summary = Some(self.summarise(&run, prefix, options).await?);
            run.checkpoint.pass_started_ms = 0;
            run.checkpoint.start_after = None;
            run.checkpoint.last_complete_ms = Some(now_ms());
            run.progress = Progress::default();
        }
        run.checkpoint.lease = None;
        run.report.checkpoint = run.checkpoint.start_after.clone();
        if complete {
            // The pass is over: nothing of it stays in the checkpoint.
            let mut checkpoint = run.checkpoint.clone();
            checkpoint.audit = None;
            run.etag = self
                .checkpoints
                .write(&run.key, &checkpoint, run.etag.as_deref())
                .await?
                .ok_or_else(|| ReplicationError::Contended {
                    resource: format!("audit checkpoint {}", run.key),
                    attempts: 1,
                })
                .map(Some)?;
        } else {
            self.save(&mut run).await?;
        }
        Ok(run.report)
    }

    async fn summarise(
        &self,
        run: &Run,
        prefix: &str,
        options: Options,
    ) -> Result<SummaryWritten, ReplicationError> {
        let p = &run.progress;
        let config = self.verifier.replicator().config();
        let parts: Vec<String> = (0..p.parts)
            .map(|n| self.evidence.part_key(&p.pass, n))
            .collect();
        let summary = json!({
            "pass": p.pass,
            "started": crate::clock::rfc3339(run.checkpoint.pass_started_ms),
            "finished": crate::clock::rfc3339(now_ms()),
            "source_bucket": config.source.bucket,
            "destination_bucket": config.destination.bucket,
            "destination_prefix": config.destination.prefix,
            "prefix": prefix,
            "kms_key": self.verifier.kms_key_arn(),
            "options": options,
            "totals": p.tally,
            "problems": p.tally.problem_count(),
            "parts": parts,
            "chain": p.chain,
            "chain_rule": "chain = pass; for each part in order: chain = hex(SHA-256(chain + hex(SHA-256(part bytes))))",
        });
        let written = self.evidence.write_summary(&p.pass, &summary).await?;
        let head = self
            .evidence
            .bucket()
            .head(&written.key, written.version_id.as_deref())
            .await?;
        Ok(SummaryWritten {
            bucket: self.evidence.bucket().name().to_owned(),
            lock_mode: head
                .as_ref()
                .and_then(|h| h.object_lock_mode())
                .map(|m| m.as_str().to_owned()),
            retain_until: head
                .as_ref()
                .and_then(|h| h.object_lock_retain_until_date())
                .map(|d| crate::clock::rfc3339(d.to_millis().unwrap_or(0))),
            written,
        })
    }
}

/// `20260101T000000Z-all`, `…-prefix-logs%2F-deep`: when the pass started, and its scope.
fn pass_id(started_ms: i64, prefix: &str, options: Options) -> String {
    let stamp: String = crate::clock::rfc3339(started_ms)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let deep = if options.deep { "-deep" } else { "" };
    format!("{stamp}-{}{deep}", scope_name(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{declared, listed_for};
    use crate::metrics::Emitter;

    #[test]
    fn the_audit_report_emits_exactly_its_listed_metrics() {
        let mut emitted = declared(&AuditReport::default().emf("fn"));
        let mut listed = listed_for(Emitter::Audit);
        emitted.sort();
        listed.sort();
        assert_eq!(emitted, listed);
    }

    #[test]
    fn pass_ids_sort_by_time_and_name_their_scope() {
        let id = pass_id(
            1_767_225_600_000,
            "logs/",
            Options {
                deep: true,
                ..Options::default()
            },
        );
        assert_eq!(id, "20260101T000000Z-prefix-logs%2F-deep");
        let report = AuditReport::default();
        let doc = report.emf("fn");
        for class in Class::ALL {
            assert_eq!(doc[class.metric().name], 0, "{class}");
        }
        assert_eq!(doc["ObjectsVerified"], 0);
    }
}
