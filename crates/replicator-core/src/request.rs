//! What an event asks the engine to do, after decoding: one source object and what the
//! event (or listing) knew about it.

use serde::Serialize;

/// What happened to the source object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new object or version (ObjectCreated:*, Batch Operations, sync).
    Created,
    /// A delete marker became the current version (ObjectRemoved:DeleteMarkerCreated).
    DeleteMarkerCreated,
    /// A version was deleted permanently (ObjectRemoved:Delete naming a version): never
    /// replicated.
    VersionDeleted,
    /// The key was deleted from an unversioned source (ObjectRemoved:Delete without a
    /// version id; EventBridge Object Deleted, Permanently Deleted, without one): with
    /// REPLICATE_DELETES, the replica is deleted.
    KeyDeleted,
    /// A lifecycle rule expired the key's current version (LifecycleExpiration:Delete or
    /// :DeleteMarkerCreated; EventBridge Object Deleted for Lifecycle Expiration): native
    /// replication never replicates these; REPLICATE_LIFECYCLE_EXPIRATIONS opts in.
    Expired,
    /// A version's tags were set or removed (ObjectTagging:Put / :Delete, EventBridge
    /// Object Tags Added / Deleted): its replica's tags follow, the data stays.
    TagsChanged,
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
    /// Native replication reported this version failed (or late): its failure reason. The
    /// copy then goes ahead whatever heal mode would say of the source's status.
    pub native_failure: Option<String>,
    /// The rule a sync pass planned this copy for (its fan-out message names it): the copy
    /// goes to that rule's destination only, when the deployment still has the rule.
    pub planned_rule: Option<String>,
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
            native_failure: None,
            planned_rule: None,
        }
    }

    pub fn with_version(mut self, version_id: Option<String>) -> Self {
        self.version_id = crate::facts::normalize_version(version_id.as_deref());
        self
    }
}
