//! What the engine did with one request: copied it (and how), made a delete marker, or
//! skipped it (and why). None of these is a failure; failures are
//! [`ReplicationError`](crate::ReplicationError)s.

use serde::Serialize;

/// How a replica was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// GET, then PUT through the function.
    SinglePut,
    /// Ranged GETs, then UploadPart, through the function.
    Multipart,
    /// CopyObject: no bytes through the function.
    ServerSideCopy,
    /// UploadPartCopy: no bytes through the function.
    ServerSideMultipart,
}

/// Why nothing was written. None of these is a failure: retrying would not change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The replica was already made from this source version.
    UpToDate,
    /// The replica was made from a newer source version.
    ReplicaIsNewer,
    /// The source object or version no longer exists.
    SourceGone,
    /// The key is outside KEY_PREFIX.
    OutOfScope,
    /// REPLICATE_DELETES is off.
    DeletesNotReplicated,
    /// Permanent version deletes are never replicated.
    VersionDeleteNotReplicated,
    /// A lifecycle expiration, and REPLICATE_LIFECYCLE_EXPIRATIONS is off.
    ExpirationsNotReplicated,
    /// A delete for a key without replica.
    NoReplica,
    /// A delete (or a tag change) for a replica this replicator did not write.
    ReplicaNotOurs,
    /// A tag change for a source version whose replica is of another version: the newer
    /// replica keeps its own tags, an older one gets the new version's data and tags later.
    ReplicaOfAnotherVersion,
    /// A delete whose source key has a current object again.
    SourceRecreated,
    /// An s3:TestEvent.
    TestEvent,
    /// An S3 event that asks for no replication (restore, ACL, lifecycle, …).
    EventNotReplicated,
    /// Heal mode: native replication completed this version.
    NativeReplicationCompleted,
    /// Heal mode: native replication has this version pending, within its grace period.
    NativeReplicationPending,
    /// A native replica whose source version cannot be told: never overwritten on a guess.
    NativeReplicaOfUnknownVersion,
    /// A native replication event that reports and asks nothing (replicated after the
    /// threshold, not tracked): acknowledged and counted.
    NativeReplicationInformational,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Copied {
        bytes: u64,
        method: Method,
        replica_version_id: Option<String>,
        /// Parts an earlier, interrupted attempt had already uploaded (multipart only).
        parts_resumed: u64,
    },
    DeleteMarkerCreated {
        replica_version_id: Option<String>,
    },
    /// The source version's tags changed: its replica (that very version's) got them,
    /// without its data being rewritten.
    TagsReplicated {
        tags: usize,
        replica_version_id: Option<String>,
    },
    /// The source version is archived: a restore was started (or was already under way,
    /// `in_progress`). It is copied when the restore completes (ObjectRestore:Completed, or
    /// a later sync).
    RestoreRequested {
        tier: String,
        days: i32,
        in_progress: bool,
    },
    /// The source version's Object Lock retention was extended or its legal hold changed:
    /// its replica (that very version's) got the same, without its data being rewritten.
    LockReplicated {
        replica_version_id: Option<String>,
    },
    Skipped {
        reason: SkipReason,
    },
}
