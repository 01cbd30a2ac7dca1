//! What an event asks the engine to do, after decoding, and what the engine did.

use serde::Serialize;

/// What happened to the source object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new object or version (ObjectCreated:*, Batch Operations, sync).
    Created,
    /// A delete marker became the current version (ObjectRemoved:DeleteMarkerCreated).
    DeleteMarkerCreated,
    /// A version was deleted permanently (ObjectRemoved:Delete): never replicated.
    VersionDeleted,
}

/// One source object to replicate: bucket and decoded key, plus what the event knew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRequest {
    pub bucket: String,
    pub key: String,
    /// The exact version to replicate; `None` means the current one.
    pub version_id: Option<String>,
    /// Size from the event, used to choose single PUT or multipart up front.
    pub size: Option<u64>,
    pub sequencer: Option<String>,
    /// When the event happened (milliseconds since the epoch), for the lag metric.
    pub event_time_ms: Option<i64>,
    pub kind: ChangeKind,
    /// The current version as a listing saw it, when the request comes from a listing
    /// (sync): a replica whose provenance matches it is up to date without reading the source.
    pub listed: Option<Listed>,
}

/// What ListObjectsV2 says about an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub etag: String,
    /// Seconds since the epoch.
    pub last_modified: i64,
    pub size: u64,
    /// The destination listing had no replica: the first write goes straight to
    /// If-None-Match without a HEAD (a replica written meanwhile makes it 412, and the
    /// engine then reads and decides as usual).
    pub replica_absent: bool,
}

impl ObjectRequest {
    pub fn created(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
            size: None,
            sequencer: None,
            event_time_ms: None,
            kind: ChangeKind::Created,
            listed: None,
        }
    }

    pub fn with_version(mut self, version_id: Option<String>) -> Self {
        self.version_id = crate::plan::normalize_version(version_id.as_deref());
        self
    }
}

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
    /// A delete for a key without replica.
    NoReplica,
    /// A delete for a replica this replicator did not write.
    ReplicaNotOurs,
    /// A delete whose source key has a current object again.
    SourceRecreated,
    /// An s3:TestEvent.
    TestEvent,
    /// An S3 event that asks for no replication (restore, tagging, lifecycle, …).
    EventNotReplicated,
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
    Skipped {
        reason: SkipReason,
    },
}
