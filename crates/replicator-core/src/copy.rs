//! The executor: carries out one [`ObjectRequest`] against S3.
//!
//! For each object: HEAD the replica, read the source, [`decide`](crate::plan::decide), then
//! write with a condition (If-None-Match when there was no replica, If-Match on the replica's
//! ETag otherwise). A 412 means another writer got there first: re-read and decide again.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::{ByteStream, DateTime, DateTimeFormat};
use aws_sdk_s3::types::{ChecksumMode, ServerSideEncryption};
use bytes::Bytes;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::clients::Clients;
use crate::config::Config;
use crate::error::{classify, error_code, http_status, Principal, ReplicationError, Request};
use crate::plan::{decide, normalize_version, Decision, Provenance, ReplicaFacts, SourceFacts};
use crate::request::{ChangeKind, Method, ObjectRequest, Outcome, SkipReason};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How many times a conditional write is re-decided after losing a race.
const MAX_CONDITIONAL_ATTEMPTS: u32 = 5;
/// S3's limit on user metadata (keys and values, UTF-8 bytes).
const MAX_USER_METADATA_BYTES: usize = 2048;

/// The copy engine, shared by every invocation of a warm function.
#[derive(Debug, Clone)]
pub struct Replicator {
    pub(crate) config: Arc<Config>,
    pub(crate) clients: Clients,
    /// Bytes held in memory across all copies, in KiB permits.
    pub(crate) budget: Arc<Semaphore>,
    /// Whether the destination role can read the source (server-side copy): learnt from the
    /// first copy, remembered for the life of this process (a Lambda cold start).
    pub(crate) server_side: Arc<AtomicU8>,
}

const SERVER_SIDE_UNKNOWN: u8 = 0;
const SERVER_SIDE_YES: u8 = 1;
const SERVER_SIDE_NO: u8 = 2;

/// The part of a source object's response that the replica must keep.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceHead {
    pub size: u64,
    pub version_id: Option<String>,
    pub etag: String,
    pub last_modified: i64,
    pub tag_count: i32,
    pub metadata: HashMap<String, String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<DateTime>,
}

/// GetObject and HeadObject answer with the same headers under the same accessor names.
macro_rules! source_head {
    ($out:expr) => {{
        let out = $out;
        SourceHead {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            version_id: normalize_version(out.version_id()),
            etag: out.e_tag().unwrap_or_default().to_owned(),
            last_modified: out.last_modified().map(|t| t.secs()).unwrap_or(0),
            tag_count: out.tag_count().unwrap_or(0),
            metadata: out.metadata().cloned().unwrap_or_default(),
            content_type: out.content_type().map(str::to_owned),
            content_encoding: out.content_encoding().map(str::to_owned),
            content_disposition: out.content_disposition().map(str::to_owned),
            content_language: out.content_language().map(str::to_owned),
            cache_control: out.cache_control().map(str::to_owned),
            expires: out
                .expires_string()
                .and_then(|s| DateTime::from_str(s, DateTimeFormat::HttpDate).ok()),
        }
    }};
}

/// What every replica write carries (PutObject, CopyObject, CreateMultipartUpload share the
/// setter names): the source's content headers, SSE-KMS with the destination key, the
/// storage class and the additional checksum.
macro_rules! replica_headers {
    ($builder:expr, $head:expr, $cfg:expr) => {{
        let (head, cfg) = ($head, $cfg);
        $builder
            .set_content_type(head.content_type.clone())
            .set_content_encoding(head.content_encoding.clone())
            .set_content_disposition(head.content_disposition.clone())
            .set_content_language(head.content_language.clone())
            .set_cache_control(head.cache_control.clone())
            .set_expires(head.expires)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&cfg.destination_kms_key_id)
            .bucket_key_enabled(cfg.bucket_key_enabled)
            .set_storage_class(cfg.destination_storage_class.clone())
            .checksum_algorithm(cfg.checksum_algorithm.to_sdk())
    }};
}
pub(crate) use replica_headers;

impl SourceHead {
    fn from_get(out: &GetObjectOutput) -> Self {
        source_head!(out)
    }
    fn from_head(out: &HeadObjectOutput) -> Self {
        source_head!(out)
    }
}

/// The source as read: its headers, and its bytes when it is small enough for one PUT.
struct SourceObject {
    head: SourceHead,
    body: Option<Bytes>,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The condition a write carries.
#[derive(Debug, Clone)]
pub(crate) enum Condition {
    /// If-None-Match: * — only if there is no replica yet.
    Absent,
    /// If-Match: the replica we decided to replace.
    Matches(String),
}

pub(crate) enum WriteResult {
    Written {
        version_id: Option<String>,
    },
    /// 412 / 409: someone else wrote the replica meanwhile.
    LostRace,
}

pub(crate) fn kib(bytes: u64) -> u32 {
    bytes.div_ceil(1024).clamp(1, u32::MAX as u64) as u32
}

impl Replicator {
    pub fn new(config: Config, clients: Clients) -> Self {
        let permits = kib(config.max_in_flight_bytes) as usize;
        let server_side = config.server_side_copy;
        Self {
            config: Arc::new(config),
            clients,
            budget: Arc::new(Semaphore::new(permits)),
            server_side: Arc::new(AtomicU8::new(if server_side {
                SERVER_SIDE_UNKNOWN
            } else {
                SERVER_SIDE_NO
            })),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// Replicates (or deletes, or skips) one object. `Ok` outcomes need no retry; an `Err`
    /// says whether a retry can help.
    pub async fn replicate(&self, req: &ObjectRequest) -> Result<Outcome, ReplicationError> {
        self.replicate_until(req, &Stop::never()).await
    }

    /// Like [`replicate`](Self::replicate), but starts no new part after `deadline`: a
    /// multipart copy still in progress then keeps its upload for the next attempt (which
    /// sends only the missing parts) and is reported as retryable.
    pub async fn replicate_by(
        &self,
        req: &ObjectRequest,
        deadline: Option<Instant>,
    ) -> Result<Outcome, ReplicationError> {
        self.replicate_until(req, &Stop::at(deadline)).await
    }

    /// Like [`replicate`](Self::replicate), asking `stop` before each part.
    pub async fn replicate_until(
        &self,
        req: &ObjectRequest,
        stop: &Stop,
    ) -> Result<Outcome, ReplicationError> {
        if req.bucket != self.config.source_bucket {
            return Err(ReplicationError::ForeignBucket {
                bucket: req.bucket.clone(),
                expected: self.config.source_bucket.clone(),
            });
        }
        crate::key::validate_key(&req.key)?;
        if !req.key.starts_with(&self.config.key_prefix) {
            return Ok(skipped(SkipReason::OutOfScope));
        }
        let dest_key = self.config.destination_key(&req.key);
        crate::key::validate_key(&dest_key)?;
        let reserved = format!(
            "{}{}",
            self.config.destination_prefix,
            crate::sync::checkpoint::RESERVED_PREFIX
        );
        if dest_key.starts_with(&reserved) {
            return Err(ReplicationError::Rejected {
                resource: self.dest_resource(&dest_key),
                message: format!(
                    "keys under {reserved} are reserved for the replicator's own state"
                ),
            });
        }
        match req.kind {
            ChangeKind::Created => self.copy(req, &dest_key, stop).await,
            ChangeKind::DeleteMarkerCreated if self.config.replicate_deletes => {
                self.delete(req, &dest_key).await
            }
            ChangeKind::DeleteMarkerCreated => Ok(skipped(SkipReason::DeletesNotReplicated)),
            ChangeKind::VersionDeleted => Ok(skipped(SkipReason::VersionDeleteNotReplicated)),
        }
    }

    async fn copy(
        &self,
        req: &ObjectRequest,
        dest_key: &str,
        stop: &Stop,
    ) -> Result<Outcome, ReplicationError> {
        let mut source: Option<SourceObject> = None;
        // The attempt whose replica HEAD preceded the source read.
        let mut source_read_in = 0;
        for attempt in 1..=MAX_CONDITIONAL_ATTEMPTS {
            let known_absent =
                attempt == 1 && req.listed.as_ref().is_some_and(|l| l.replica_absent);
            let replica = if known_absent {
                None
            } else {
                self.head_replica(dest_key).await?
            };
            // The cheapest idempotency check: the request names the version (or, from a
            // listing, the ETag and time) the replica was made from.
            if replica_matches(req, replica.as_ref()) {
                return Ok(skipped(SkipReason::UpToDate));
            }
            let server_side = self.server_side.load(AtomicOrdering::Relaxed) != SERVER_SIDE_NO;
            if source.is_none() && server_side {
                match self.head_source(req).await? {
                    Some(head) => {
                        source_read_in = attempt;
                        source = Some(SourceObject {
                            head,
                            body: None,
                            _permit: None,
                        })
                    }
                    None => return Ok(skipped(SkipReason::SourceGone)),
                }
            }
            if source.is_none() {
                match self.open_source(req).await? {
                    Some(s) => {
                        source_read_in = attempt;
                        source = Some(s)
                    }
                    None => return Ok(skipped(SkipReason::SourceGone)),
                }
            }
            let src = source.as_ref().expect("opened above");
            let facts = SourceFacts {
                version_id: src.head.version_id.clone(),
                etag: src.head.etag.clone(),
                last_modified: src.head.last_modified,
                sequencer: req.sequencer.clone(),
            };
            let mut decision = decide(&facts, replica.as_ref());
            if let Decision::AskSourceOrder { replica_version_id } = &decision {
                // The current version, read after this attempt's HEAD of the replica, is at
                // least as new as the version the replica was made from (which existed
                // then): different means newer, and the source need not be asked.
                let current_read_after_replica =
                    req.version_id.is_none() && source_read_in == attempt;
                let newer = current_read_after_replica
                    || self
                        .source_version_order(&req.key, &facts, replica_version_id)
                        .await?
                        == Ordering::Greater;
                decision = if newer {
                    Decision::Replace {
                        replica_etag: replica.as_ref().map(|r| r.etag.clone()).unwrap_or_default(),
                    }
                } else {
                    Decision::ReplicaIsNewer
                };
            }
            let condition = match decision {
                Decision::UpToDate => return Ok(skipped(SkipReason::UpToDate)),
                Decision::ReplicaIsNewer => return Ok(skipped(SkipReason::ReplicaIsNewer)),
                Decision::AskSourceOrder { .. } => unreachable!("resolved above"),
                Decision::Create => Condition::Absent,
                Decision::Replace { replica_etag } => Condition::Matches(replica_etag),
            };
            let provenance = Provenance {
                source: format!("{}/{}", req.bucket, req.key),
                version_id: src.head.version_id.clone(),
                etag: src.head.etag.clone(),
                last_modified: src.head.last_modified,
                sequencer: req.sequencer.clone(),
            };
            let (written, parts_resumed, method) = match &src.body {
                None if server_side => {
                    let cfg = &self.config;
                    let one_copy = crate::plan::one_copy_object(
                        src.head.size,
                        cfg.multipart_threshold,
                        cfg.server_side_single_copy_max,
                        stop.time_left(),
                    );
                    let result = if one_copy {
                        self.copy_object_server_side(
                            req,
                            dest_key,
                            &src.head,
                            &provenance,
                            &condition,
                        )
                        .await
                        .map(|w| (w, 0, Method::ServerSideCopy))
                    } else {
                        self.copy_multipart(
                            req,
                            dest_key,
                            &src.head,
                            &provenance,
                            &condition,
                            stop,
                            true,
                        )
                        .await
                        .map(|m| (m.write, m.parts_resumed, Method::ServerSideMultipart))
                    };
                    match result {
                        Ok(r) => {
                            self.server_side
                                .store(SERVER_SIDE_YES, AtomicOrdering::Relaxed);
                            r
                        }
                        // The destination role may not read the source: stream from now on.
                        Err(ReplicationError::AccessDenied { .. })
                            if self.server_side.load(AtomicOrdering::Relaxed)
                                == SERVER_SIDE_UNKNOWN =>
                        {
                            info!("server-side copy denied; streaming through the function from now on");
                            self.server_side
                                .store(SERVER_SIDE_NO, AtomicOrdering::Relaxed);
                            source = None;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Some(body) => {
                    let w = self
                        .put_single(
                            dest_key,
                            &src.head,
                            &provenance,
                            body.clone(),
                            &condition,
                            &req.key,
                        )
                        .await?;
                    (w, 0, Method::SinglePut)
                }
                None => {
                    let m = self
                        .copy_multipart(
                            req,
                            dest_key,
                            &src.head,
                            &provenance,
                            &condition,
                            stop,
                            false,
                        )
                        .await?;
                    (m.write, m.parts_resumed, Method::Multipart)
                }
            };
            match written {
                WriteResult::Written { version_id } => {
                    info!(
                        bytes = src.head.size,
                        ?method,
                        ?version_id,
                        "replica written"
                    );
                    return Ok(Outcome::Copied {
                        bytes: src.head.size,
                        method,
                        replica_version_id: version_id,
                        parts_resumed,
                    });
                }
                WriteResult::LostRace => {
                    debug!(attempt, "conditional write lost a race; deciding again");
                    continue;
                }
            }
        }
        Err(ReplicationError::Contended {
            resource: format!("s3://{}/{}", self.config.destination_bucket, dest_key),
            attempts: MAX_CONDITIONAL_ATTEMPTS,
        })
    }

    /// Whether the replica is known to be up to date for a request, from one HEAD.
    pub async fn replica_is_current(&self, req: &ObjectRequest) -> Result<bool, ReplicationError> {
        let dest_key = self.config.destination_key(&req.key);
        Ok(replica_matches(
            req,
            self.head_replica(&dest_key).await?.as_ref(),
        ))
    }

    /// HEADs the replica. `None` when there is none (or its current version is a delete marker).
    pub(crate) async fn head_replica(
        &self,
        dest_key: &str,
    ) -> Result<Option<ReplicaFacts>, ReplicationError> {
        let result = self
            .clients
            .destination
            .head_object()
            .bucket(&self.config.destination_bucket)
            .key(dest_key)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(ReplicaFacts {
                etag: out.e_tag().unwrap_or_default().to_owned(),
                provenance: out.metadata().and_then(Provenance::from_metadata),
            })),
            Err(e) if http_status(&e) == Some(404) => Ok(None),
            Err(e) => Err(classify(
                &self.dest_request("s3:GetObject", Some(dest_key)),
                e,
            )),
        }
    }

    /// Reads the source version: the whole body for a single PUT, only the headers for a
    /// multipart copy. `None` when the object or version is gone.
    async fn open_source(
        &self,
        req: &ObjectRequest,
    ) -> Result<Option<SourceObject>, ReplicationError> {
        let threshold = self.config.multipart_threshold;
        let known_large = req.size.is_some_and(|s| s > threshold);
        if known_large {
            return Ok(self.head_source(req).await?.map(|head| SourceObject {
                head,
                body: None,
                _permit: None,
            }));
        }
        // Hold memory for the body before asking for it.
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(kib(req.size.unwrap_or(threshold)))
            .await
            .expect("budget semaphore is never closed");
        let result = self
            .clients
            .source
            .get_object()
            .bucket(&req.bucket)
            .key(&req.key)
            .set_version_id(req.version_id.clone())
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if source_gone(&e) => return Ok(None),
            Err(e) => {
                return Err(classify(
                    &self.source_request("s3:GetObject", &req.bucket, &req.key),
                    e,
                ))
            }
        };
        let head = SourceHead::from_get(&out);
        if head.size > threshold {
            // The event did not know (or understated) the size: copy it in parts instead.
            // Dropping the body closes this one response early.
            drop(out);
            return Ok(Some(SourceObject {
                head,
                body: None,
                _permit: None,
            }));
        }
        let body = read_body(
            out.body,
            head.size,
            &self.source_resource(&req.bucket, &req.key),
        )
        .await?;
        Ok(Some(SourceObject {
            head,
            body: Some(body),
            _permit: Some(permit),
        }))
    }

    pub(crate) async fn head_source(
        &self,
        req: &ObjectRequest,
    ) -> Result<Option<SourceHead>, ReplicationError> {
        let result = self
            .clients
            .source
            .head_object()
            .bucket(&req.bucket)
            .key(&req.key)
            .set_version_id(req.version_id.clone())
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(SourceHead::from_head(&out))),
            Err(e) if source_gone(&e) => Ok(None),
            Err(e) => Err(classify(
                &self.source_request("s3:GetObject", &req.bucket, &req.key),
                e,
            )),
        }
    }

    /// Which of two versions of `key` is newer, by the source's own version order
    /// (ListObjectVersions lists a key's versions newest first).
    async fn source_version_order(
        &self,
        key: &str,
        source: &SourceFacts,
        replica_version: &str,
    ) -> Result<Ordering, ReplicationError> {
        let ours = source.version_id.as_deref().unwrap_or("null");
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .clients
                .source
                .list_object_versions()
                .bucket(&self.config.source_bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| {
                    classify(
                        &self.source_request(
                            "s3:ListBucketVersions",
                            &self.config.source_bucket,
                            key,
                        ),
                        e,
                    )
                })?;
            for v in page.versions().iter().filter(|v| v.key() == Some(key)) {
                match v.version_id() {
                    Some(id) if id == ours => return Ok(Ordering::Greater),
                    Some(id) if id == replica_version => return Ok(Ordering::Less),
                    _ => {}
                }
            }
            // Stop once the listing has moved past this key, or has no more pages.
            let past_key = page
                .versions()
                .iter()
                .any(|v| v.key().is_some_and(|k| k > key));
            if past_key || !page.is_truncated().unwrap_or(false) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
        // The replica's source version was deleted from the source; ours exists: ours wins.
        Ok(Ordering::Greater)
    }

    async fn put_single(
        &self,
        dest_key: &str,
        head: &SourceHead,
        provenance: &Provenance,
        body: Bytes,
        condition: &Condition,
        source_key: &str,
    ) -> Result<WriteResult, ReplicationError> {
        let tagging = self.source_tagging(source_key, head).await?;
        let metadata = replica_metadata(head, provenance, &self.dest_resource(dest_key))?;
        let cfg = &self.config;
        let mut put = replica_headers!(
            self.clients
                .destination
                .put_object()
                .bucket(&cfg.destination_bucket)
                .key(dest_key)
                .content_length(body.len() as i64)
                .body(ByteStream::from(body))
                .set_metadata(Some(metadata))
                .set_tagging(tagging),
            head,
            cfg
        );
        put = match condition {
            Condition::Absent => put.if_none_match("*"),
            Condition::Matches(etag) => put.if_match(etag),
        };
        match put.send().await {
            Ok(out) => Ok(WriteResult::Written {
                version_id: out.version_id().map(str::to_owned),
            }),
            Err(e) if lost_race(&e) => Ok(WriteResult::LostRace),
            Err(e) => Err(classify(
                &self.dest_request("s3:PutObject", Some(dest_key)),
                e,
            )),
        }
    }

    /// CopyObject: the replica is written inside S3 from the exact source version (pinned by
    /// version and ETag), with the same metadata, tags, provenance, SSE-KMS and condition as
    /// a PUT. The key in `x-amz-copy-source` is percent-encoded here: the SDK sends it as it is.
    async fn copy_object_server_side(
        &self,
        req: &ObjectRequest,
        dest_key: &str,
        head: &SourceHead,
        provenance: &Provenance,
        condition: &Condition,
    ) -> Result<WriteResult, ReplicationError> {
        let cfg = &self.config;
        let tagging = self.source_tagging(&req.key, head).await?;
        let metadata = replica_metadata(head, provenance, &self.dest_resource(dest_key))?;
        let mut copy = replica_headers!(
            self.clients
                .destination
                .copy_object()
                .bucket(&cfg.destination_bucket)
                .key(dest_key)
                .copy_source(crate::key::copy_source(
                    &req.bucket,
                    &req.key,
                    head.version_id.as_deref(),
                ))
                .copy_source_if_match(&head.etag)
                .set_expected_source_bucket_owner(cfg.source_account_id.clone())
                .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
                .set_metadata(Some(metadata))
                .tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace)
                .set_tagging(Some(tagging.unwrap_or_default())),
            head,
            cfg
        );
        copy = match condition {
            Condition::Absent => copy.if_none_match("*"),
            Condition::Matches(etag) => copy.if_match(etag),
        };
        match copy.send().await {
            Ok(out) => Ok(WriteResult::Written {
                version_id: out.version_id().map(str::to_owned),
            }),
            Err(e) if lost_race(&e) => Ok(WriteResult::LostRace),
            Err(e) => Err(classify(
                &self.dest_request("s3:PutObject", Some(dest_key)),
                e,
            )),
        }
    }

    /// The source's tags as a PUT `x-amz-tagging` value; no request when it has none.
    pub(crate) async fn source_tagging(
        &self,
        key: &str,
        head: &SourceHead,
    ) -> Result<Option<String>, ReplicationError> {
        if head.tag_count <= 0 {
            return Ok(None);
        }
        let out = self
            .clients
            .source
            .get_object_tagging()
            .bucket(&self.config.source_bucket)
            .key(key)
            .set_version_id(head.version_id.clone())
            .send()
            .await
            .map_err(|e| {
                classify(
                    &self.source_request(
                        "s3:GetObjectVersionTagging",
                        &self.config.source_bucket,
                        key,
                    ),
                    e,
                )
            })?;
        Ok(Some(encode_tagging(
            out.tag_set().iter().map(|t| (t.key(), t.value())),
        )))
    }

    /// Makes a delete marker for the replica, if it is ours and the source's current
    /// version is still a delete marker.
    async fn delete(
        &self,
        req: &ObjectRequest,
        dest_key: &str,
    ) -> Result<Outcome, ReplicationError> {
        let Some(replica) = self.head_replica(dest_key).await? else {
            return Ok(skipped(SkipReason::NoReplica));
        };
        if replica.provenance.is_none() {
            return Ok(skipped(SkipReason::ReplicaNotOurs));
        }
        let current = ObjectRequest::created(req.bucket.clone(), req.key.clone());
        if self.head_source(&current).await?.is_some() {
            return Ok(skipped(SkipReason::SourceRecreated));
        }
        let out = self
            .clients
            .destination
            .delete_object()
            .bucket(&self.config.destination_bucket)
            .key(dest_key)
            .send()
            .await
            .map_err(|e| classify(&self.dest_request("s3:DeleteObject", Some(dest_key)), e))?;
        Ok(Outcome::DeleteMarkerCreated {
            replica_version_id: out.version_id().map(str::to_owned),
        })
    }

    pub(crate) fn dest_request(&self, action: &'static str, key: Option<&str>) -> Request {
        Request {
            action,
            bucket: self.config.destination_bucket.clone(),
            key: key.map(str::to_owned),
            principal: Principal::DestinationRole(self.config.destination_role_arn.clone()),
            kms_key: matches!(
                action,
                "s3:PutObject"
                    | "s3:CreateMultipartUpload"
                    | "s3:UploadPart"
                    | "s3:CompleteMultipartUpload"
            )
            .then(|| self.config.destination_kms_key_id.clone()),
        }
    }

    pub(crate) fn source_request(&self, action: &'static str, bucket: &str, key: &str) -> Request {
        Request {
            action,
            bucket: bucket.to_owned(),
            key: Some(key.to_owned()),
            principal: Principal::Function,
            kms_key: None,
        }
    }

    pub(crate) fn dest_resource(&self, key: &str) -> String {
        format!("s3://{}/{}", self.config.destination_bucket, key)
    }

    pub(crate) fn source_resource(&self, bucket: &str, key: &str) -> String {
        format!("s3://{bucket}/{key}")
    }
}

/// The replica's provenance names the requested version, or the listed ETag and time.
fn replica_matches(req: &ObjectRequest, replica: Option<&ReplicaFacts>) -> bool {
    let Some(p) = replica.and_then(|r| r.provenance.as_ref()) else {
        return false;
    };
    if let Some(v) = &req.version_id {
        return p.version_id.as_ref() == Some(v);
    }
    match &req.listed {
        Some(l) => p.etag == l.etag.trim_matches('"') && p.last_modified == l.last_modified,
        None => false,
    }
}

/// Asked before each part of a multipart copy: stop now? (The invocation's deadline; tests
/// stop at a given part.) It also tells how much time is left, when a deadline is known.
#[derive(Clone, Default)]
pub struct Stop {
    check: Option<Arc<dyn Fn(u64) -> bool + Send + Sync>>,
    deadline: Option<Instant>,
}

impl Stop {
    pub fn never() -> Self {
        Self::default()
    }

    pub fn at(deadline: Option<Instant>) -> Self {
        Self {
            check: deadline.map(|d| {
                Arc::new(move |_| Instant::now() >= d) as Arc<dyn Fn(u64) -> bool + Send + Sync>
            }),
            deadline,
        }
    }

    /// Stops when `f(part_number)` says so.
    pub fn when(f: impl Fn(u64) -> bool + Send + Sync + 'static) -> Self {
        Self {
            check: Some(Arc::new(f)),
            deadline: None,
        }
    }

    pub(crate) fn now(&self, part: u64) -> bool {
        self.check.as_ref().is_some_and(|f| f(part))
    }

    /// Time left before the deadline; `None` when there is none.
    pub(crate) fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.check, self.deadline) {
            (_, Some(d)) => write!(
                f,
                "Stop(in {:?})",
                d.saturating_duration_since(Instant::now())
            ),
            (Some(_), None) => f.write_str("Stop(when…)"),
            (None, None) => f.write_str("Stop(never)"),
        }
    }
}

fn skipped(reason: SkipReason) -> Outcome {
    Outcome::Skipped { reason }
}

/// The source object or version does not exist (any more): NoSuchKey, NoSuchVersion, a HEAD
/// 404, or 405 for a version that is a delete marker.
fn source_gone<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    matches!(
        error_code(e),
        Some("NoSuchKey" | "NoSuchVersion" | "NotFound")
    ) || matches!(http_status(e), Some(404 | 405))
}

/// 412 PreconditionFailed, or 409 ConditionalRequestConflict.
pub(crate) fn lost_race<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    e: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool {
    matches!(
        error_code(e),
        Some("PreconditionFailed" | "ConditionalRequestConflict")
    ) || matches!(http_status(e), Some(412 | 409))
}

/// Reads a whole body (a small object, or one part) and checks it is as long as S3 said.
///
/// The bytes land in one buffer of exactly that size as they arrive, so a part costs its
/// size in memory once (collecting the chunks and then joining them would cost it twice).
pub(crate) async fn read_body(
    mut body: ByteStream,
    expected: u64,
    resource: &str,
) -> Result<Bytes, ReplicationError> {
    let failed = |code: &str, message: String, source: BoxError| ReplicationError::Service {
        action: "s3:GetObject",
        resource: resource.to_owned(),
        code: code.into(),
        message,
        retryable: true,
        source,
    };
    let mut buffer = bytes::BytesMut::with_capacity(expected as usize);
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| failed("BodyRead", crate::error::error_chain(&e), Box::new(e)))?;
        if (buffer.len() + chunk.len()) as u64 > expected {
            return Err(failed(
                "LongBody",
                format!("S3 announced {expected} bytes and sent more"),
                "body longer than announced".into(),
            ));
        }
        buffer.extend_from_slice(&chunk);
    }
    if buffer.len() as u64 != expected {
        return Err(failed(
            "TruncatedBody",
            format!("read {} bytes, S3 announced {expected}", buffer.len()),
            "truncated body".into(),
        ));
    }
    Ok(buffer.freeze())
}

/// The replica's user metadata: the source's, plus provenance (which replaces any
/// provenance the source itself carried, e.g. when it is itself a replica).
pub(crate) fn replica_metadata(
    head: &SourceHead,
    provenance: &Provenance,
    resource: &str,
) -> Result<HashMap<String, String>, ReplicationError> {
    let mut m: HashMap<String, String> = head
        .metadata
        .iter()
        .filter(|(k, _)| !crate::plan::provenance_keys::ALL.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in provenance.to_metadata() {
        m.insert(k.to_owned(), v);
    }
    let size: usize = m.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA_BYTES {
        return Err(ReplicationError::Rejected {
            resource: resource.to_owned(),
            message: format!(
                "the source's user metadata plus this replicator's provenance is {size} bytes; \
                 S3 allows {MAX_USER_METADATA_BYTES}. Shorten the source object's metadata."
            ),
        });
    }
    Ok(m)
}

/// Tags as the `x-amz-tagging` header wants them: a URL query string.
pub(crate) fn encode_tagging<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    const SET: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    tags.map(|(k, v)| {
        format!(
            "{}={}",
            utf8_percent_encode(k, SET),
            utf8_percent_encode(v, SET)
        )
    })
    .collect::<Vec<_>>()
    .join("&")
}

/// Converts the Lambda context's deadline (milliseconds since the epoch) into an `Instant`.
///
/// A value before 2001 cannot be a real deadline: `cargo lambda watch` sends the function's
/// timeout there (600000) instead of a point in time, so such a value is taken as a budget
/// from now.
pub fn deadline_instant(deadline_ms: u64) -> Instant {
    const EPOCH_2001_MS: u64 = 978_307_200_000;
    if deadline_ms < EPOCH_2001_MS {
        return Instant::now() + Duration::from_millis(deadline_ms);
    }
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    Instant::now()
        + deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn warn_abort_failed(resource: &str, upload_id: &str, err: &ReplicationError) {
    warn!(%resource, upload_id, error = %err, "could not abort multipart upload; the bucket's lifecycle rule must clean it up");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagging_is_url_encoded() {
        let s = encode_tagging([("a b", "x+y"), ("k", "é=1&")].into_iter());
        assert_eq!(s, "a%20b=x%2By&k=%C3%A9%3D1%26");
    }

    #[test]
    fn metadata_keeps_source_and_adds_provenance() {
        let head = SourceHead {
            metadata: HashMap::from([
                ("owner".to_owned(), "team-a".to_owned()),
                ("replicator-source".to_owned(), "other/bucket".to_owned()),
            ]),
            ..Default::default()
        };
        let p = Provenance {
            source: "src/key".into(),
            version_id: Some("v1".into()),
            etag: "\"e\"".into(),
            last_modified: 5,
            sequencer: None,
        };
        let m = replica_metadata(&head, &p, "s3://d/k").unwrap();
        assert_eq!(m["owner"], "team-a");
        assert_eq!(m["replicator-source"], "src/key");
        assert_eq!(m["replicator-source-version-id"], "v1");
    }

    #[test]
    fn oversized_metadata_is_rejected_not_truncated() {
        let head = SourceHead {
            metadata: HashMap::from([("big".to_owned(), "x".repeat(2040))]),
            ..Default::default()
        };
        let p = Provenance {
            source: "s/k".into(),
            version_id: None,
            etag: "e".into(),
            last_modified: 0,
            sequencer: None,
        };
        assert!(matches!(
            replica_metadata(&head, &p, "r"),
            Err(ReplicationError::Rejected { .. })
        ));
    }
}
