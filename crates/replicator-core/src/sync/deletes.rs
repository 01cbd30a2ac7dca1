//! The delete phase (SYNC_DELETE): destination-only replicas that carry provenance and whose
//! source key is still absent get a delete marker — all of them or, above
//! SYNC_MAX_DELETES, none; and never after a listing that failed or found no source object.

use tracing::warn;

use super::run_state::RunState;
use crate::replicate::Replicator;

pub async fn phase(
    state: &mut RunState<'_>,
    replicator: &Replicator,
    enabled: bool,
    max_deletes: u64,
    listing_ok: bool,
) {
    let report = &mut state.report;
    if !listing_ok {
        report.delete_phase = "refused: the listing failed".into();
        return;
    }
    if !enabled {
        return;
    }
    if state.dry_run {
        report.delete_phase = format!(
            "dry run: {} candidate(s), none deleted",
            report.destination_only
        );
        return;
    }
    if report.destination_only > max_deletes {
        report.delete_phase = format!(
            "refused: {} destination-only objects exceed SYNC_MAX_DELETES={max_deletes}; nothing deleted",
            report.destination_only
        );
        warn!("{}", report.delete_phase);
        return;
    }
    if state.source_seen == 0 && report.destination_only > 0 {
        report.delete_phase =
            "refused: the source listing returned no objects in this run; nothing deleted".into();
        warn!("{}", report.delete_phase);
        return;
    }
    for key in std::mem::take(&mut state.delete_candidates) {
        match replicator.delete_orphan(&key).await {
            Ok(true) => state.report.deleted += 1,
            Ok(false) => {}
            Err(e) => state.fail(key, e.to_string()),
        }
    }
    state.report.delete_phase = format!("done: {} deleted", state.report.deleted);
}
