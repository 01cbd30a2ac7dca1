//! Finding out what an ambiguous answer meant. A write whose answer was lost, or came back as
//! an error that is not a refusal, may still have landed: the replica's provenance tells.

use super::{Job, Replicator};
use crate::error::ReplicationError;

/// Whether an error leaves open whether the write landed: no answer, or an answer that is
/// not a refusal (a 5xx, a 404 for an upload a landed completion removed). A refusal —
/// access denied, a KMS key S3 cannot use, a request S3 rejects — is certain.
pub(super) fn ambiguous(e: &ReplicationError) -> bool {
    match e {
        ReplicationError::Service {
            retryable, code, ..
        } => *retryable || code == "NoSuchUpload" || code == "HTTP 404",
        _ => false,
    }
}

/// Whether the replica now is this job's source version (the write landed, whoever's answer
/// was lost): the replica's version id when it is.
pub(super) async fn landed(
    r: &Replicator,
    job: &Job<'_>,
) -> Result<Option<Option<String>>, ReplicationError> {
    let Some(head) = r.destination.bucket.head(job.dest_key, None).await? else {
        return Ok(None);
    };
    let replica = crate::facts::ReplicaFacts::from_head(&head);
    let made_from_source = replica.provenance.is_some_and(|p| {
        p.etag == job.source.etag.trim_matches('"')
            && p.version_id == job.source.version_id
            && p.last_modified == job.source.last_modified
    });
    Ok(made_from_source.then(|| head.version_id().map(str::to_owned)))
}
