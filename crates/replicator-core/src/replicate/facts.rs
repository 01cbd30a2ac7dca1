//! Gathering what the decision needs: the replica's HEAD, the source version (its headers,
//! and for a small streamed object its body in the same request), and — only when the
//! decision asks for it — the source's own version order.
//!
//! Memory: a small body is read only into a reservation of the size the request claimed
//! (or the threshold when it claimed none); when S3 answers with a larger object, the
//! answer is dropped, the reservation given back, and the object read again into a
//! reservation of its real size — or, above the threshold, not read here at all.

use std::cmp::Ordering;

use bytes::Bytes;

use super::Replicator;
use crate::budget::Reservation;
use crate::error::ReplicationError;
use crate::facts::{ReplicaFacts, SourceFacts, SourceObject};
use crate::plan;
use crate::plan::transfer::Route;
use crate::request::ObjectRequest;
use crate::s3::body;

/// HEADs the replica; `None` when there is none (or its current version is a delete
/// marker). From a listing that showed no replica, the first attempt trusts it and skips
/// the HEAD (a replica written meanwhile makes the If-None-Match write fail, and the next
/// attempt reads).
pub(super) async fn replica(
    r: &Replicator,
    req: &ObjectRequest,
    dest_key: &str,
    attempt: u32,
) -> Result<Option<ReplicaFacts>, ReplicationError> {
    if attempt == 1 && req.listed.as_ref().is_some_and(|l| l.replica_absent) {
        return Ok(None);
    }
    Ok(r.destination
        .bucket
        .head(dest_key, None)
        .await?
        .map(|out| ReplicaFacts::from_head(&out)))
}

/// The source version as read, and its body when it was small enough to read whole.
pub(super) struct Source {
    pub object: SourceObject,
    body: Option<(Bytes, Reservation)>,
    /// The attempt whose replica HEAD preceded this read.
    read_in: u32,
}

/// What a copy has read of the source so far, kept across its attempts.
#[derive(Default)]
pub(super) struct Reading(Option<Source>);

impl Reading {
    /// Reads the source version unless it was read already; `false` when it is gone. With
    /// `headers_first` (a native replica to compare with, or heal mode, where most objects
    /// need no copy) only its headers are read, never its body.
    pub async fn ensure(
        &mut self,
        r: &Replicator,
        req: &ObjectRequest,
        route: Route,
        attempt: u32,
        headers_first: bool,
    ) -> Result<bool, ReplicationError> {
        if self.0.is_none() {
            let read = match route {
                Route::Stream if !headers_first => open(r, req).await?,
                Route::ServerSide | Route::Stream => head(r, req).await?,
            };
            match read {
                Some((object, body)) => {
                    self.0 = Some(Source {
                        object,
                        body,
                        read_in: attempt,
                    })
                }
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The source version read by [`ensure`](Self::ensure).
    pub fn get(&self) -> Option<&Source> {
        self.0.as_ref()
    }

    /// The body read with the headers (held, and counted, until the copy ends).
    pub fn body(&self) -> Option<Bytes> {
        self.0.as_ref()?.body.as_ref().map(|(b, _)| b.clone())
    }
}

type Read = Option<(SourceObject, Option<(Bytes, Reservation)>)>;

/// The source version's headers, with its checksums (the replica is written with its
/// full-object one).
async fn head(r: &Replicator, req: &ObjectRequest) -> Result<Read, ReplicationError> {
    Ok(r.source
        .head_with_checksums(&req.key, req.version_id.as_deref())
        .await?
        .map(|out| (SourceObject::from_head(&out), None)))
}

/// A GET of the whole object when it is small, only the headers when it is not.
async fn open(r: &Replicator, req: &ObjectRequest) -> Result<Read, ReplicationError> {
    let threshold = r.config.transfer.multipart_threshold;
    let claimed = match req.size {
        Some(size) if size > threshold => return head(r, req).await,
        Some(size) => size,
        None => threshold,
    };
    let reservation = r.budget.reserve(claimed).await;
    let Some(out) = r
        .source
        .get(&req.key, req.version_id.as_deref(), None, None)
        .await?
    else {
        return Ok(None);
    };
    let object = SourceObject::from_get(&out);
    if object.size <= reservation.bytes() {
        let body = body::read_whole(out.body, object.size, &r.source.resource(&req.key)).await?;
        return Ok(Some((object, Some((body, reservation)))));
    }
    // Larger than claimed (rewritten since the event, a stale listing, a forged size):
    // stop this answer and give the reservation back before asking for more.
    drop(out);
    drop(reservation);
    if object.size > threshold {
        return Ok(Some((object, None)));
    }
    let body = read_exact(r, &req.key, &object).await?;
    Ok(Some((object, Some(body))))
}

/// The whole body of exactly the version `object` describes, into a reservation of its
/// size.
pub(super) async fn read_exact(
    r: &Replicator,
    key: &str,
    object: &SourceObject,
) -> Result<(Bytes, Reservation), ReplicationError> {
    let reservation = r.budget.reserve(object.size).await;
    let resource = r.source.resource(key);
    let out = r
        .source
        .get(
            key,
            object.version_id.as_deref(),
            None,
            Some(object.etag.as_str()),
        )
        .await?
        .ok_or(ReplicationError::SourceChanged {
            resource: resource.clone(),
        })?;
    let body = body::read_whole(out.body, object.size, &resource).await?;
    Ok((body, reservation))
}

/// The source's version order, when the decision needs it.
///
/// The current version, read after this attempt's HEAD of the replica, is at least as new
/// as the version the replica was made from (which existed then): different means newer,
/// and the source need not be asked.
pub(super) async fn order(
    r: &Replicator,
    req: &ObjectRequest,
    source: &Source,
    facts: &SourceFacts,
    replica: Option<&ReplicaFacts>,
    attempt: u32,
) -> Result<Option<Ordering>, ReplicationError> {
    let Some(replica_version) = plan::order_question(facts, replica) else {
        return Ok(None);
    };
    if req.version_id.is_none() && source.read_in == attempt {
        return Ok(Some(Ordering::Greater));
    }
    let ours = facts.version_id.as_deref().unwrap_or("null");
    r.source
        .version_order(&req.key, ours, &replica_version)
        .await
        .map(Some)
}
