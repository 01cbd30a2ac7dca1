//! Carrying out a [`CopyPlan`]: one PUT of the body, one CopyObject, or a multipart upload
//! ([`super::multipart`]). Every write carries the job's condition.

use bytes::Bytes;

use super::attributes::copy_source;
use super::landed::{ambiguous, landed};
use super::{attributes, facts, multipart, Copied, Job, Replicator};
use crate::error::ReplicationError;
use crate::outcome::Method;
use crate::plan::transfer::CopyPlan;
use crate::s3::Write;

/// Writes the replica as `plan` says. `body` is the source's body when it was read with its
/// headers (a small streamed object); a PUT without it reads it first. A write whose answer
/// says nothing certain is found out before it is called a failure.
pub(super) async fn run(
    r: &Replicator,
    job: &Job<'_>,
    plan: CopyPlan,
    body: Option<Bytes>,
) -> Result<Write<Copied>, ReplicationError> {
    match write(r, job, plan, body).await {
        Err(e)
            if ambiguous(&e)
                && !matches!(plan, CopyPlan::StreamedParts(_) | CopyPlan::CopiedParts(_)) =>
        {
            match landed(r, job).await {
                Ok(Some(version_id)) => Ok(Write::Done(Copied {
                    method: if plan == CopyPlan::Put {
                        Method::SinglePut
                    } else {
                        Method::ServerSideCopy
                    },
                    version_id,
                    parts_resumed: 0,
                })),
                _ => Err(e),
            }
        }
        result => result,
    }
}

async fn write(
    r: &Replicator,
    job: &Job<'_>,
    plan: CopyPlan,
    body: Option<Bytes>,
) -> Result<Write<Copied>, ReplicationError> {
    let bucket = &r.destination.bucket;
    match plan {
        CopyPlan::StreamedParts(parts) => multipart::copy(r, job, parts, false).await,
        CopyPlan::CopiedParts(parts) => multipart::copy(r, job, parts, true).await,
        CopyPlan::CopyObject => {
            let attributes = attributes::for_replica(r, job).await?;
            let source = copy_source(r, job);
            let written = bucket
                .copy(job.dest_key, &attributes, &source, &job.condition)
                .await?;
            Ok(copied(written, Method::ServerSideCopy))
        }
        CopyPlan::Put => {
            // Held until the PUT is done: the reservation counts the body.
            let (body, _reservation) = match body {
                Some(body) => (body, None),
                None => {
                    let (body, reservation) =
                        facts::read_exact(r, &job.req.key, job.source).await?;
                    (body, Some(reservation))
                }
            };
            let attributes = attributes::for_replica(r, job).await?;
            let written = bucket
                .put(job.dest_key, &attributes, body, &job.condition)
                .await?;
            Ok(copied(written, Method::SinglePut))
        }
    }
}

fn copied(written: Write<crate::s3::PutAnswer>, method: Method) -> Write<Copied> {
    match written {
        Write::Done(answer) => Write::Done(Copied {
            method,
            version_id: answer.version_id,
            parts_resumed: 0,
        }),
        Write::LostRace => Write::LostRace,
    }
}
