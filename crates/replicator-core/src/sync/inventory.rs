//! Reconcile from S3 Inventory: instead of listing the source (100,000 LIST calls for 100
//! million keys), read the inventory S3 already wrote — its CSV data files streamed,
//! decompressed and parsed in bounded memory — select what needs work, and copy it or fan it
//! out to the copier's queue, checkpointed by data file and row and time-budgeted like a
//! listing pass, resumable across invocations.
//!
//! A row is selected when it is a current object version under the sync's prefix; in heal
//! mode only what native replication FAILED or left PENDING too long (and what no rule
//! covers). The replica is then checked with one HEAD — or, with a destination inventory,
//! not at all where that inventory tells (see [`destination`]).

mod destination;
mod manifest;
mod rows;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use futures::StreamExt;
use tracing::{info, warn};

use super::config::InventoryRequest;
use super::plan::{ListedObject, SyncAction};
use super::run_state::{Mark, RunState, Step};
use super::{SyncReport, SyncRequest, Syncer, Window};
use crate::clock::now_ms;
use crate::config::NativeMode;
use crate::error::ReplicationError;
use crate::plan;
use crate::request::ObjectRequest;
use crate::s3::Bucket;
use crate::state::checkpoint::RowPosition;
use crate::state::is_reserved;
use destination::{DestinationIndex, Found};
use manifest::{parse_url, Manifest};
use rows::{Columns, Entry, Row};

/// Rows in flight per SYNC_CONCURRENCY slot: a few hundred bytes each.
const ROWS_PER_SLOT: usize = 64;

/// What one row came to, and whether it was selected for work.
struct Worked {
    key: String,
    step: Step,
    selected: bool,
}

/// Whose credentials read an inventory: the source's for its own, the destination role's
/// for the destination's.
#[derive(Clone, Copy)]
enum Side {
    Source,
    Destination,
}

/// What a pass reads: the manifest, the bucket its data files are in, and their columns.
struct Files<'a> {
    manifest: &'a Manifest,
    data: &'a Bucket,
    columns: &'a Columns,
}

impl Syncer {
    /// A pass over the rows of one source inventory. A pass under way goes on with the
    /// manifest it started on; a new pass takes the newest one — and when that is the one the
    /// last complete pass read, only the keys that failed are tried again.
    pub(super) async fn run_inventory(
        &self,
        req: &SyncRequest,
        inventory: &InventoryRequest,
        window: &Window,
        key: &str,
    ) -> Result<SyncReport, ReplicationError> {
        let started = Instant::now();
        let Some(mut state) = self.begin(req, window, key).await? else {
            return Ok(super::busy_report(req, started));
        };
        let under_way = (!state.new_pass)
            .then(|| state.checkpoint.manifest.clone())
            .flatten();
        let (url, manifest, data) = match under_way {
            Some(url) => match self.manifest(&url, Side::Source).await? {
                Some((manifest, data)) => (url, manifest, data),
                None => {
                    warn!(manifest = %url, "the inventory this pass started on is gone; a new pass starts on the newest");
                    state.checkpoint.position = None;
                    self.newest(&inventory.manifest, Side::Source).await?
                }
            },
            None => self.newest(&inventory.manifest, Side::Source).await?,
        };
        let done_before = state.new_pass
            && state.checkpoint.last_complete_ms.is_some()
            && state.checkpoint.manifest.as_deref() == Some(url.as_str());
        state.checkpoint.manifest = Some(url.clone());
        state.report.inventory_manifest = Some(url);
        self.retry_carried(&mut state, req, window).await?;
        if done_before {
            info!("this inventory was reconciled by an earlier pass; only failed keys were tried again");
            if !req.dry_run {
                self.sweep(&mut state, window).await;
            }
            let mut report = self.finish(state, true).await?;
            report.duration_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
        let columns = Columns::from_schema(&manifest.file_schema)?;
        let mut index = match &inventory.destination_manifest {
            Some(url) => Some(self.destination_index(url).await?),
            None => None,
        };
        let (cut, read_error) = self
            .rows(
                &mut state,
                req,
                window,
                Files {
                    manifest: &manifest,
                    data: &data,
                    columns: &columns,
                },
                index.as_mut(),
            )
            .await?;
        state.flush().await?;
        let complete = !cut && read_error.is_none();
        if complete {
            state.checkpoint.position = None;
            if !req.dry_run {
                self.sweep(&mut state, window).await;
            }
        }
        let mut report = self.finish(state, complete).await?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        info!(
            rows = report.inventory_rows,
            selected = report.inventory_selected,
            copied = report.copied,
            enqueued = report.enqueued,
            complete = report.complete,
            "inventory pass finished"
        );
        match read_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// The rows from where the pass stands, each row's work recorded in the files' order.
    /// Returns whether the run stopped early (time, max_objects), and the error that stopped
    /// it reading a data file (the pass stays before the row it could not read).
    async fn rows(
        &self,
        state: &mut RunState<'_>,
        req: &SyncRequest,
        window: &Window,
        files: Files<'_>,
        index: Option<&mut DestinationIndex>,
    ) -> Result<(bool, Option<ReplicationError>), ReplicationError> {
        let Files {
            manifest,
            data,
            columns,
        } = files;
        let start = state.checkpoint.position.unwrap_or_default();
        let max = req.max_objects.unwrap_or(u64::MAX);
        let examined = AtomicU64::new(0);
        let cut = AtomicBool::new(false);
        let slots = tokio::sync::Semaphore::new(self.config.concurrency);
        let index = tokio::sync::Mutex::new(index);
        for (file, data_file) in manifest.files.iter().enumerate().skip(start.file as usize) {
            let file = file as u64;
            let skip = if file == start.file { start.row } else { 0 };
            let rows = match rows::stream(data, &data_file.key, columns.clone()).await {
                Ok(rows) => rows,
                Err(e) => return Ok((false, Some(e))),
            };
            let (examined, cut, slots, index) = (&examined, &cut, &slots, &index);
            // Rows are taken in order until the time or max_objects is up, or one cannot be
            // read; each is looked up in the destination inventory, in order; the selected
            // ones then work SYNC_CONCURRENCY at a time (`slots`), and every row is recorded
            // in order. Most rows are no work at all: the window of rows in flight is wide, so
            // that a few slow copies do not hold the rest back.
            let work = rows
                .enumerate()
                .skip(skip as usize)
                .take_while(move |_| {
                    let go = Instant::now() < window.stop_at
                        && examined.fetch_add(1, Ordering::Relaxed) < max;
                    if !go {
                        cut.store(true, Ordering::Relaxed);
                    }
                    futures::future::ready(go)
                })
                .scan(false, |failed, (at, entry)| {
                    let next = (!*failed).then_some((at, entry));
                    *failed |= next.as_ref().is_some_and(|(_, e)| e.is_err());
                    futures::future::ready(next)
                })
                .then(move |(at, entry)| async move {
                    let entry = entry?;
                    let found = match (&entry, index.lock().await.as_deref_mut()) {
                        (Entry::Row(row), Some(index)) => index.find(&row.key).await,
                        _ => Found::Unknown,
                    };
                    let position = RowPosition {
                        file,
                        row: at as u64 + 1,
                    };
                    Ok::<_, ReplicationError>((position, entry, found))
                })
                .map(move |looked_up| async move {
                    let (position, entry, found) = looked_up?;
                    let worked = self.row_step(entry, found, req.dry_run, window, slots);
                    Ok::<_, ReplicationError>((position, worked.await))
                })
                .buffered(self.config.concurrency * ROWS_PER_SLOT)
                // Boxed, so that the run's future is Send (the closures borrow).
                .boxed();
            let mut work = work;
            while let Some(done) = work.next().await {
                let (position, worked) = match done {
                    Ok(done) => done,
                    // Nothing comes after it: the rows before it are all recorded.
                    Err(e) => return Ok((false, Some(e))),
                };
                if let Some(progress) = &self.progress {
                    progress(&worked.key);
                }
                state.report.inventory_rows += 1;
                state.report.inventory_selected += u64::from(worked.selected);
                state
                    .record_at(worked.key, Some(Mark::Row(position)), worked.step)
                    .await?;
            }
            if cut.load(Ordering::Relaxed) {
                return Ok((true, None));
            }
            // The whole file is done: the next run starts at the next one.
            state.flush().await?;
            state.checkpoint.position = Some(RowPosition {
                file: file + 1,
                row: 0,
            });
        }
        Ok((false, None))
    }

    /// Keys that failed in earlier runs of the pass, tried again first.
    async fn retry_carried(
        &self,
        state: &mut RunState<'_>,
        req: &SyncRequest,
        window: &Window,
    ) -> Result<(), ReplicationError> {
        let carried = state.carried.clone();
        let work = futures::stream::iter(carried)
            .take_while(|_| futures::future::ready(Instant::now() < window.stop_at))
            .map(|key| async move {
                let action = SyncAction::Check(ListedObject {
                    key: key.clone(),
                    size: 0,
                    etag: String::new(),
                    last_modified: 0,
                });
                let step = self
                    .step(action, req.dry_run, window.copy_deadline, true)
                    .await;
                (key, step)
            })
            .buffered(self.config.concurrency);
        let mut work = std::pin::pin!(work);
        while let Some((key, step)) = work.next().await {
            state.record(key, true, step).await?;
        }
        Ok(())
    }

    /// The newest manifest `url` names (itself, or the newest complete one under a
    /// location), read.
    async fn newest(
        &self,
        url: &str,
        side: Side,
    ) -> Result<(String, Manifest, Bucket), ReplicationError> {
        let (bucket, key) = parse_url(url)?;
        let key = manifest::locate(&self.reader(side, &bucket), &key).await?;
        let url = format!("s3://{bucket}/{key}");
        match self.manifest(&url, side).await? {
            Some((manifest, data)) => Ok((url, manifest, data)),
            None => Err(ReplicationError::InvalidEvent(format!(
                "inventory manifest {url} does not exist"
            ))),
        }
    }

    /// The bucket `bucket`, read with `side`'s credentials.
    fn reader(&self, side: Side, bucket: &str) -> Bucket {
        let r = &self.replicator;
        let side = match side {
            Side::Source => r.source(),
            Side::Destination => r.destination(),
        };
        Bucket::new(
            side.client().clone(),
            bucket,
            side.principal().clone(),
            None,
        )
    }

    /// The manifest at `url` (`None`: there is none), and the bucket holding its data files.
    async fn manifest(
        &self,
        url: &str,
        side: Side,
    ) -> Result<Option<(Manifest, Bucket)>, ReplicationError> {
        let cfg = self.replicator.config();
        let listed = match side {
            Side::Source => &cfg.source.bucket,
            Side::Destination => &cfg.destination.bucket,
        };
        let (bucket, key) = parse_url(url)?;
        let Some(manifest) = Manifest::read(&self.reader(side, &bucket), &key, listed).await?
        else {
            return Ok(None);
        };
        let data = self.reader(side, manifest.data_bucket());
        Ok(Some((manifest, data)))
    }

    async fn destination_index(&self, url: &str) -> Result<DestinationIndex, ReplicationError> {
        let (_, manifest, data) = self.newest(url, Side::Destination).await?;
        let columns = Columns::from_schema(&manifest.file_schema)?;
        let rows = futures::stream::iter(manifest.files)
            .then(move |file| {
                let (data, columns) = (data.clone(), columns.clone());
                async move { rows::stream(&data, &file.key, columns).await }
            })
            .flat_map(|rows| match rows {
                Ok(rows) => rows.boxed(),
                Err(e) => futures::stream::once(async { Err(e) }).boxed(),
            });
        Ok(DestinationIndex::new(
            Box::pin(rows),
            self.replicator.config().destination.prefix.clone(),
        ))
    }

    /// One row's work: not selected, up to date, or copied (or enqueued, or reported in a
    /// dry run).
    async fn row_step(
        &self,
        entry: Entry,
        found: Found,
        dry_run: bool,
        window: &Window,
        slots: &tokio::sync::Semaphore,
    ) -> Worked {
        let not_selected = |key: String| Worked {
            key,
            step: Step::NotSelected,
            selected: false,
        };
        let row = match entry {
            Entry::Row(row) => row,
            Entry::Refused { key, error } => {
                return Worked {
                    key,
                    step: Step::Failed(error.to_string()),
                    selected: true,
                }
            }
        };
        let cfg = self.replicator.config();
        let in_scope = row.key.starts_with(&window.prefix) && !is_reserved(&row.key);
        if !row.latest || row.delete_marker || !in_scope {
            return not_selected(row.key);
        }
        if let NativeMode::Heal { pending_grace_s } = cfg.source.native {
            let left = plan::heal(
                row.native,
                row.last_modified,
                now_ms() / 1000,
                pending_grace_s,
            );
            if left.is_some() {
                return Worked {
                    key: row.key,
                    step: Step::Skipped,
                    selected: false,
                };
            }
        }
        let _slot = slots.acquire().await.expect("never closed");
        // Boxed: a row waiting in the window costs a pointer, not a copy's whole state.
        let step = Box::pin(self.selected_step(&row, found, dry_run, window)).await;
        Worked {
            key: row.key,
            step,
            selected: true,
        }
    }

    /// A selected row: is its replica made from the row's version? If not, the key's
    /// *current* version is copied (or enqueued) — an inventory is up to a day old, and the
    /// engine, reading the source afresh, never goes back in time. A copy checks the replica
    /// itself; a dry run and the fan-out ask with one HEAD, unless the destination inventory
    /// told.
    async fn selected_step(&self, row: &Row, found: Found, dry_run: bool, window: &Window) -> Step {
        let r = &self.replicator;
        match self.owns(&row.key).await {
            Ok(true) => {}
            Ok(false) => return Step::NotSelected,
            Err(e) => return Step::Failed(e.to_string()),
        }
        let current = ObjectRequest::created(r.config().source.bucket.clone(), row.key.clone());
        if matches!(&found, Found::NativeReplica(v) if v.is_some() && *v == row.version_id) {
            return Step::Skipped;
        }
        if dry_run || self.sqs.is_some() {
            let needed = match found {
                Found::Missing => true,
                _ => {
                    let listed = current.clone().with_version(row.version_id.clone());
                    match r.replica_is_current(&listed).await {
                        Ok(current) => !current,
                        Err(e) => return Step::Failed(e.to_string()),
                    }
                }
            };
            return self.decided(needed, dry_run, &row.key, row.size, &row.etag);
        }
        self.copied(&current, window.copy_deadline).await
    }
}
