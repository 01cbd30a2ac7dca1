//! A run's bookkeeping, updated in key order as each key's work completes: the counts of
//! the answer, the checkpoint and when it was last saved, failed keys carried to the next
//! run, fan-out messages not yet sent, and the candidates for the delete phase.

use std::time::{Duration, Instant};

use super::fanout::Fanout;
use super::report::{FailedKey, SyncReport, REPORTED_KEYS};
use crate::error::ReplicationError;
use crate::state::checkpoint::{Checkpoint, Checkpoints, RowPosition};

/// How many failed keys a checkpoint carries to the next run, and how many bytes of keys at
/// most (so that the checkpoint stays far below the state store's 1 MiB cap).
pub const CARRIED_FAILURES: usize = 1000;
const CARRIED_FAILURE_BYTES: usize = 256 * 1024;
/// How often a long run saves its progress.
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// Where a pass stands once a key's work is recorded: after a listed key, or after a row of
/// an inventory's data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    Key(String),
    Row(RowPosition),
}

/// What processing one key came to.
pub enum Step {
    Copied(u64),
    Skipped,
    /// An inventory row that is not work for this pass (a noncurrent version, a delete
    /// marker, a key outside the prefix): counted as a row only.
    NotSelected,
    Failed(String),
    /// The source is archived and not restored: reported and counted, not a failure to
    /// carry (it fails the same way until someone restores it).
    Archived(String),
    DestinationOnly,
    WouldCopy,
    Enqueue(String),
}

pub struct RunState<'a> {
    pub report: SyncReport,
    pub checkpoint: Checkpoint,
    checkpoints: &'a Checkpoints,
    key: String,
    etag: Option<String>,
    last_save: Instant,
    /// Fan-out: messages not yet sent, and the last key recorded since the first of them
    /// (the checkpoint stays behind messages not yet sent).
    fanout: Option<Fanout>,
    behind: Option<Mark>,
    pub delete_candidates: Vec<String>,
    max_deletes: u64,
    /// Source keys seen in the listing this run.
    pub source_seen: u64,
    new_failures: Vec<String>,
    /// Failed keys carried in from the checkpoint, and how many of them were retried.
    pub carried: Vec<String>,
    retried: usize,
    pub dry_run: bool,
    /// This run starts a pass (none was under way).
    pub new_pass: bool,
}

impl<'a> RunState<'a> {
    pub fn new(
        checkpoints: &'a Checkpoints,
        key: String,
        checkpoint: Checkpoint,
        etag: Option<String>,
        report: SyncReport,
        fanout: Option<Fanout>,
        max_deletes: u64,
    ) -> Self {
        let dry_run = report.dry_run;
        Self {
            report,
            checkpoint,
            checkpoints,
            key,
            etag,
            last_save: Instant::now(),
            fanout,
            behind: None,
            delete_candidates: Vec::new(),
            max_deletes,
            source_seen: 0,
            new_failures: Vec::new(),
            carried: Vec::new(),
            retried: 0,
            dry_run,
            new_pass: false,
        }
    }

    /// Records a listed key's work (`retry`: a failed key carried from an earlier run, which
    /// does not move the pass).
    pub async fn record(
        &mut self,
        key: String,
        retry: bool,
        step: Step,
    ) -> Result<(), ReplicationError> {
        let mark = (!retry).then(|| Mark::Key(key.clone()));
        self.record_at(key, mark, step).await
    }

    /// Records one key's work, then moves the pass to `mark` (none: it stays).
    pub async fn record_at(
        &mut self,
        key: String,
        mark: Option<Mark>,
        step: Step,
    ) -> Result<(), ReplicationError> {
        let retry = mark.is_none();
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
            Step::NotSelected => {}
            Step::Failed(error) => self.fail(key.clone(), error),
            Step::Archived(error) => {
                self.report.archived += 1;
                if self.report.archived_keys.len() < REPORTED_KEYS {
                    self.report.archived_keys.push(FailedKey {
                        key: key.clone(),
                        error,
                    });
                }
            }
            Step::DestinationOnly => {
                self.report.destination_only += 1;
                SyncReport::note(&mut self.report.destination_only_keys, &key);
                if self.delete_candidates.len() as u64 <= self.max_deletes {
                    self.delete_candidates.push(key.clone());
                }
            }
            Step::WouldCopy => {
                self.report.would_copy_count += 1;
                SyncReport::note(&mut self.report.would_copy, &key);
            }
            Step::Enqueue(body) => {
                let fanout = self
                    .fanout
                    .as_mut()
                    .expect("messages exist only with a queue");
                fanout.push(key.clone(), body);
                if let Some(mark) = mark {
                    self.behind = Some(mark);
                }
                if fanout.is_full() {
                    self.flush().await?;
                }
                return Ok(());
            }
        }
        let Some(mark) = mark else {
            return Ok(());
        };
        if self.fanout.as_ref().is_some_and(|f| !f.is_empty()) {
            // Keep the checkpoint behind notifications not yet sent.
            self.behind = Some(mark);
            return Ok(());
        }
        self.advance(mark).await
    }

    /// Failed keys for the next run: this run's, and carried ones it did not get to.
    pub fn pending_failures(&self) -> Vec<String> {
        let mut bytes = 0;
        self.new_failures
            .iter()
            .chain(self.carried.iter().skip(self.retried))
            .take(CARRIED_FAILURES)
            .take_while(|k| {
                bytes += k.len();
                bytes <= CARRIED_FAILURE_BYTES
            })
            .cloned()
            .collect()
    }

    pub fn fail(&mut self, key: String, error: String) {
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

    async fn advance(&mut self, mark: Mark) -> Result<(), ReplicationError> {
        match mark {
            Mark::Key(key) => self.checkpoint.start_after = Some(key),
            Mark::Row(position) => self.checkpoint.position = Some(position),
        }
        if !self.dry_run && self.last_save.elapsed() >= SAVE_EVERY {
            // Progress is saved as it goes, so a run killed at its timeout loses little.
            self.checkpoint.failed = self.pending_failures();
            self.save().await?;
        }
        Ok(())
    }

    /// Sends pending fan-out messages, then lets the checkpoint catch up.
    pub async fn flush(&mut self) -> Result<(), ReplicationError> {
        let Some(fanout) = self.fanout.as_mut() else {
            return Ok(());
        };
        let sent = fanout.send().await;
        self.report.enqueued += sent.enqueued.len() as u64;
        for (key, error) in sent.failed {
            self.fail(key, error.to_string());
        }
        match self.behind.take() {
            Some(last) => self.advance(last).await,
            None => Ok(()),
        }
    }

    pub async fn save(&mut self) -> Result<(), ReplicationError> {
        match self
            .checkpoints
            .write(&self.key, &self.checkpoint, self.etag.as_deref())
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
