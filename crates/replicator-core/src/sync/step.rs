//! What the sync does with one key of the merge-join: nothing for a destination-only key
//! (the delete phase decides later); otherwise copy it with the engine — or, in a dry run
//! or with fan-out, find out with at most one HEAD whether a copy is needed, and report it
//! or enqueue it.

use std::time::Instant;

use tracing::warn;

use super::plan::SyncAction;
use super::run_state::Step;
use super::Syncer;
use crate::clock::now_ms;
use crate::outcome::Outcome;
use crate::request::{Listed, ObjectRequest};

impl Syncer {
    pub(super) async fn step(
        &self,
        action: SyncAction,
        dry_run: bool,
        copy_deadline: Instant,
        retry: bool,
    ) -> Step {
        let r = &self.replicator;
        let (object, certain, absent) = match action {
            SyncAction::DestinationOnly(_) => return Step::DestinationOnly,
            SyncAction::Missing(o) => (o, true, true),
            SyncAction::Changed(o) => (o, true, false),
            SyncAction::Check(o) => (o, false, false),
        };
        match self.owns(&object.key).await {
            Ok(true) => {}
            // Another rule's (of this destination, or of none): not this pass's work.
            Ok(false) => return Step::NotSelected,
            Err(e) => return Step::Failed(e.to_string()),
        }
        let mut request =
            ObjectRequest::created(r.config().source.bucket.clone(), object.key.clone());
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
            return self.decided(needed, dry_run, &object.key, object.size, &object.etag);
        }
        self.copied(&request, copy_deadline).await
    }

    /// A dry run's or a fan-out's answer for a key whose need of a copy is known: nothing,
    /// what a real run would copy, or the copier's message for it.
    pub(super) fn decided(
        &self,
        needed: bool,
        dry_run: bool,
        key: &str,
        size: u64,
        etag: &str,
    ) -> Step {
        match (needed, dry_run) {
            (false, _) => Step::Skipped,
            (true, true) => Step::WouldCopy,
            (true, false) => {
                let config = self.replicator.config();
                let planned = crate::event::encode::Planned {
                    bucket: &config.source.bucket,
                    key,
                    version_id: None,
                    size,
                    etag,
                    rule: self.rules.as_ref().map(|_| config.rule_id.as_str()),
                };
                Step::Enqueue(crate::event::encode::object_created(
                    &planned,
                    self.region.as_deref().unwrap_or_default(),
                    now_ms(),
                ))
            }
        }
    }

    /// Copies `request` with the engine, starting no part after `deadline`.
    pub(super) async fn copied(&self, request: &ObjectRequest, deadline: Instant) -> Step {
        match self.replicator.replicate_by(request, Some(deadline)).await {
            Ok(Outcome::Copied { bytes, .. }) => Step::Copied(bytes),
            // Still not copied: counted with the archived, saying a restore is under way.
            Ok(Outcome::RestoreRequested { tier, days, .. }) => Step::Archived(format!(
                "archived; a {tier} restore for {days} days was requested, and the first pass after it completes copies it"
            )),
            Ok(_) => Step::Skipped,
            Err(e @ crate::ReplicationError::Archived { .. }) => {
                warn!(key = %request.key, error = %e, "source archived; not copied");
                Step::Archived(e.to_string())
            }
            Err(e) => {
                warn!(key = %request.key, error = %e, "sync copy failed");
                Step::Failed(e.to_string())
            }
        }
    }
}
