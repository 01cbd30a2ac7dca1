//! Both listings, merge-joined in key order: each bucket is listed by its own task, pages
//! fetched ahead into a bounded channel, so memory does not grow with the bucket and
//! neither listing waits for the other's round trips.

use futures::Stream;
use tokio::sync::mpsc;

use super::plan::{decide_pair, merge_order, ListedObject, SyncAction};
use crate::error::ReplicationError;
use crate::s3::Bucket;
use crate::state::is_reserved;

/// How many listed objects each lister keeps ready (two pages).
const AHEAD: usize = 2000;

/// The merge-join of the source under `prefix` and the destination under
/// `{destination_prefix}{prefix}`, after `start_after` (a source key).
pub fn merged(
    source: Bucket,
    destination: Bucket,
    destination_prefix: String,
    prefix: &str,
    start_after: Option<String>,
) -> impl Stream<Item = Result<SyncAction, ReplicationError>> + Send + 'static {
    let source = spawn_lister(
        source,
        prefix.to_owned(),
        start_after.clone(),
        String::new(),
    );
    let replica = spawn_lister(
        destination,
        format!("{destination_prefix}{prefix}"),
        start_after.map(|k| format!("{destination_prefix}{k}")),
        destination_prefix,
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

/// Spawns a task listing `bucket` under `prefix` after `start_after`, sending each object
/// with `strip` removed from its key; keys with the reserved segment anywhere are left out
/// (the replicator's own state, this deployment's or another's, and source keys the copier
/// refuses). The task ends when the listing does, or when nobody reads any more.
fn spawn_lister(
    bucket: Bucket,
    prefix: String,
    start_after: Option<String>,
    strip: String,
) -> mpsc::Receiver<Result<ListedObject, ReplicationError>> {
    let (tx, rx) = mpsc::channel(AHEAD);
    tokio::spawn(async move {
        let mut token = None;
        loop {
            let (objects, next) = match bucket
                .list_page(&prefix, start_after.as_deref(), token.take())
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            for o in &objects {
                let Some(key) = o.key() else { continue };
                if is_reserved(key) {
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
            match next {
                Some(t) => token = Some(t),
                None => return,
            }
        }
    });
    rx
}
