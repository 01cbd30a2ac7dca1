//! The event copier: one Lambda for every trigger shape. It decodes the payload with
//! [`replicator_core::event`], replicates each object with the core engine, and shapes the
//! response the trigger expects:
//!
//! | trigger | a failed object becomes |
//! |---|---|
//! | S3 notification (direct), EventBridge | an invocation error (Lambda retries, then the on-failure destination) |
//! | SQS (S3, SNS→SQS or EventBridge→SQS bodies) | a `batchItemFailures` entry for that message only |
//! | S3 Batch Operations 1.0 / 2.0 | `TemporaryFailure` (retryable) or `PermanentFailure` for that task |
//!
//! Each object goes to every destination the rules route it to ([`Fleet::route`]), one
//! destination after another (COPY_CONCURRENCY bounds objects, not objects × destinations).
//! It has failed if any destination failed; each destination's engine decides on its own
//! replica, so a retry writes only to the destinations that still lack it.

use std::sync::Arc;

use aws_lambda_events::event::s3::batch_job::{
    S3BatchJobEvent, S3BatchJobResponse, S3BatchJobResult,
};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::StreamExt;
use replicator_core::clock::{now_ms, Stop};
use replicator_core::event::{self, Decoded, Item, Payload, Scope};
use replicator_core::metrics::{self, Tally};
use replicator_core::{Fleet, Outcome, ReplicationError, Replicator, SkipReason};
use serde_json::{json, Value};
use tracing::{error, info, info_span, warn, Instrument};

/// The invocation failed as a whole (S3 direct, EventBridge): Lambda retries it.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} objects failed: {first}")]
pub struct InvocationFailed {
    pub failed: u64,
    pub total: u64,
    pub first: String,
    pub retryable: bool,
    pub summary: Value,
}

impl From<InvocationFailed> for lambda_runtime::Diagnostic {
    fn from(e: InvocationFailed) -> Self {
        lambda_runtime::Diagnostic {
            error_type: if e.retryable {
                "ReplicationFailed.Retryable"
            } else {
                "ReplicationFailed.Permanent"
            }
            .into(),
            error_message: format!("{e}; summary: {}", e.summary),
        }
    }
}

/// Everything an invocation needs, built once per cold start.
#[derive(Clone)]
pub struct Handler {
    fleet: Fleet,
    scope: Scope,
    function_name: Arc<str>,
    /// No new part of a multipart copy starts once this says stop (the invocation's
    /// deadline): the copy keeps its upload, fails as retryable, and the retry sends only
    /// the missing parts.
    stop: Stop,
}

impl Handler {
    /// A handler for one engine (one destination, one rule).
    pub fn new(
        replicator: Replicator,
        region: Option<String>,
        function_name: impl Into<Arc<str>>,
    ) -> Self {
        Self::for_fleet(Fleet::single(replicator), region, function_name)
    }

    /// A handler routing each object to the engines of every destination it goes to.
    pub fn for_fleet(
        fleet: Fleet,
        region: Option<String>,
        function_name: impl Into<Arc<str>>,
    ) -> Self {
        let scope = Scope {
            source_bucket: fleet.engines()[0].config().source.bucket.clone(),
            region,
            destination_buckets: fleet.destination_buckets(),
        };
        Self {
            fleet,
            scope,
            function_name: function_name.into(),
            stop: Stop::never(),
        }
    }

    /// This invocation's copy deadline.
    pub fn with_deadline(mut self, deadline: Option<std::time::Instant>) -> Self {
        self.stop = Stop::at(deadline);
        self
    }

    /// Stops multipart copies when `stop` says so (tests stop at a given part).
    pub fn with_stop(mut self, stop: Stop) -> Self {
        self.stop = stop;
        self
    }

    /// The first destination's engine.
    pub fn replicator(&self) -> &Replicator {
        &self.fleet.engines()[0]
    }

    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Handles one invocation payload, whatever its shape.
    pub async fn handle(&self, payload: Value) -> Result<Value, InvocationFailed> {
        let payload = match event::parse_payload(payload) {
            Ok(p) => p,
            Err(e) => {
                error!(error = %e, "payload refused; nothing was copied");
                return Err(InvocationFailed {
                    failed: 1,
                    total: 1,
                    first: e.to_string(),
                    retryable: false,
                    summary: json!({"copied": 0, "skipped": 0, "failed": 1}),
                });
            }
        };
        match payload {
            Payload::TestEvent => {
                info!("s3:TestEvent received; nothing to do");
                Ok(Tally::default().summary())
            }
            Payload::S3(event) => {
                self.all_or_error(event::decode_s3_event(&event, &self.scope))
                    .await
            }
            Payload::EventBridge(event) => {
                self.all_or_error(vec![event::decode_eventbridge(&event, &self.scope)])
                    .await
            }
            Payload::Sqs(event) => {
                Ok(serde_json::to_value(self.sqs(event).await).expect("serialisable"))
            }
            Payload::BatchOperations(job) => {
                Ok(serde_json::to_value(self.batch(job).await).expect("serialisable"))
            }
        }
    }

    /// Replicates every decoded item, at most COPY_CONCURRENCY at a time, in input order.
    async fn run(&self, items: Vec<Decoded>) -> Vec<Copies> {
        let concurrency = self.replicator().config().transfer.copy_concurrency;
        futures::stream::iter(items)
            .map(|item| self.one(item))
            .buffered(concurrency)
            .collect()
            .await
    }

    /// One object, to every destination it goes to.
    async fn one(&self, item: Decoded) -> Copies {
        let request = match item {
            Err(e) => return Copies::one(Err(e)),
            Ok(Item::Ignored(reason)) => return Copies::one(Ok(Outcome::Skipped { reason })),
            Ok(Item::Object(r)) => *r,
        };
        // No object is started past the deadline: it fails as retryable, and its message
        // comes back (or the invocation is retried) with time to copy it.
        if self
            .stop
            .deadline()
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Copies::one(Err(ReplicationError::DeadlineReached {
                resource: format!("s3://{}/{}", request.bucket, request.key),
            }));
        }
        let engines = match self.fleet.route(&request).await {
            Ok(engines) => engines,
            Err(e) => {
                error!(key = %request.key, error = %e, "cannot tell where the object goes");
                return Copies::one(Err(e));
            }
        };
        if engines.is_empty() {
            return Copies::one(Ok(Outcome::Skipped {
                reason: SkipReason::OutOfScope,
            }));
        }
        let mut copies = Copies(Vec::with_capacity(engines.len()));
        for engine in engines {
            let result = self.to(engine, &request).await;
            let destination = engine.config().destination.bucket.clone();
            copies.0.push((Some(destination), result));
        }
        copies
    }

    /// One object to one destination.
    async fn to(
        &self,
        engine: &Replicator,
        request: &replicator_core::ObjectRequest,
    ) -> Result<Outcome, ReplicationError> {
        let span = info_span!(
            "object",
            bucket = %request.bucket,
            key = %request.key,
            version = request.version_id.as_deref().unwrap_or("latest"),
            kind = ?request.kind,
            destination = %engine.config().destination.bucket,
            rule = %engine.config().rule_id,
            native_failure = tracing::field::Empty,
        );
        // A version native replication failed: the log names why, next to what became of it.
        if let Some(reason) = &request.native_failure {
            span.record("native_failure", reason.as_str());
        }
        async {
            if let Some(reason) = &request.native_failure {
                info!(key = %request.key, native_failure = %reason,
                    "copying a version native replication did not replicate");
            }
            let result = engine.replicate_until(request, &self.stop).await;
            let destination = engine.config().destination.bucket.as_str();
            match &result {
                Ok(Outcome::Skipped { reason }) if *reason == SkipReason::SourceGone => {
                    warn!("source object or version is gone; skipped")
                }
                Ok(outcome) => info!(?outcome, destination, "done"),
                Err(e) => {
                    error!(error = %e, retryable = e.is_retryable(), kind = e.kind(), destination,
                        rule = %engine.config().rule_id, "failed")
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Counts every destination's outcome.
    fn tally(&self, results: &[Copies], facts: &[EventFacts]) -> Tally {
        let now = now_ms();
        let mut tally = Tally::default();
        let several = self.scope.destination_buckets.len() > 1;
        for (copies, f) in results.iter().zip(facts) {
            for (destination, r) in &copies.0 {
                match r {
                    Ok(o) => {
                        tally.record(o, f.time_ms.map(|t| now - t), f.native_failure.as_deref())
                    }
                    Err(_) => {
                        tally.failed += 1;
                        if let Some(bucket) = destination.as_ref().filter(|_| several) {
                            *tally
                                .failed_by_destination
                                .entry(bucket.clone())
                                .or_default() += 1;
                        }
                    }
                }
            }
        }
        tally
    }

    fn emit(&self, tally: &Tally) {
        for document in tally.emf(&self.function_name, now_ms()) {
            metrics::emit(&document);
        }
    }

    /// S3 direct and EventBridge: any failure fails the invocation.
    async fn all_or_error(&self, items: Vec<Decoded>) -> Result<Value, InvocationFailed> {
        let times = event_times(&items);
        let results = self.run(items).await;
        let tally = self.tally(&results, &times);
        self.emit(&tally);
        let failures: Vec<&ReplicationError> = results
            .iter()
            .flat_map(|c| c.0.iter().filter_map(|(_, r)| r.as_ref().err()))
            .collect();
        match failures.first() {
            None => Ok(tally.summary()),
            Some(first) => Err(InvocationFailed {
                failed: failures.len() as u64,
                total: results.iter().map(|c| c.0.len() as u64).sum(),
                first: first.to_string(),
                retryable: failures.iter().any(|e| e.is_retryable()),
                summary: tally.summary(),
            }),
        }
    }

    /// SQS: a message fails when its body is malformed or any of its objects failed.
    async fn sqs(&self, event: SqsEvent) -> SqsBatchResponse {
        // Flatten every message's items, remembering which message each came from.
        let mut owners = Vec::new();
        let mut items = Vec::new();
        let mut failed_ids = Vec::new();
        for message in &event.records {
            let id = message.message_id.clone().unwrap_or_default();
            let decoded = match message.body.as_deref() {
                Some(body) => event::decode_sqs_body(body, &self.scope),
                None => Err(ReplicationError::InvalidEvent(
                    "SQS message has no body".into(),
                )),
            };
            match decoded {
                Ok(decoded) => {
                    for d in decoded {
                        owners.push(id.clone());
                        items.push(d);
                    }
                }
                Err(e) => {
                    error!(message_id = %id, error = %e, "SQS message refused");
                    failed_ids.push(id);
                }
            }
        }
        let times = event_times(&items);
        let results = self.run(items).await;
        let mut tally = self.tally(&results, &times);
        tally.failed += failed_ids.len() as u64;
        self.emit(&tally);
        for (owner, result) in owners.iter().zip(&results) {
            if result.failure().is_some() && !failed_ids.contains(owner) {
                failed_ids.push(owner.clone());
            }
        }
        let mut response = SqsBatchResponse::default();
        // A failed message without a messageId is reported with an empty identifier, which
        // Lambda answers by retrying the whole batch: never a failure dropped.
        response.batch_item_failures = event
            .records
            .iter()
            .map(|m| m.message_id.clone().unwrap_or_default())
            .filter(|id| failed_ids.contains(id))
            .map(|id| {
                let mut f = BatchItemFailure::default();
                f.item_identifier = id;
                f
            })
            .collect();
        info!(summary = %tally.summary(), failed_messages = response.batch_item_failures.len(), "SQS batch done");
        response
    }

    /// Batch Operations: a result per task.
    async fn batch(&self, job: S3BatchJobEvent) -> S3BatchJobResponse {
        let items: Vec<Decoded> = job
            .tasks
            .iter()
            .map(|t| event::decode_batch_task(t, &self.scope))
            .collect();
        let times = event_times(&items);
        let results = self.run(items).await;
        let tally = self.tally(&results, &times);
        self.emit(&tally);
        let mut response = S3BatchJobResponse::default();
        response.invocation_schema_version = job.invocation_schema_version.clone();
        response.invocation_id = job.invocation_id.clone();
        response.treat_missing_keys_as = Some("PermanentFailure".into());
        response.results = job
            .tasks
            .iter()
            .zip(results)
            .map(|(task, result)| {
                let text = result.text();
                let code = match result.failure() {
                    None => "Succeeded",
                    Some(e) if e.is_retryable() => "TemporaryFailure",
                    Some(_) => "PermanentFailure",
                };
                let mut r = S3BatchJobResult::default();
                r.task_id = task.task_id.clone();
                r.result_code = Some(code.into());
                r.result_string = Some(text);
                r
            })
            .collect();
        response
    }
}

/// What became of one object: a result per destination bucket it went to, or one result
/// without a destination when it went nowhere or could not be decoded or routed.
struct Copies(Vec<(Option<String>, Result<Outcome, ReplicationError>)>);

impl Copies {
    fn one(result: Result<Outcome, ReplicationError>) -> Self {
        Self(vec![(None, result)])
    }

    /// The failure that decides the object's fate: a retryable one if any (a retry can
    /// still succeed), else the first.
    fn failure(&self) -> Option<&ReplicationError> {
        let mut failures = self.0.iter().filter_map(|(_, r)| r.as_ref().err());
        let first = failures.clone().next();
        failures.find(|e| e.is_retryable()).or(first)
    }

    /// What Batch Operations reports: the outcome, each destination's when there are several.
    fn text(&self) -> String {
        let one = |r: &Result<Outcome, ReplicationError>| match r {
            Ok(outcome) => outcome_text(outcome),
            Err(e) => format!("{}: {e}", e.kind()),
        };
        match self.0.as_slice() {
            [(_, only)] => one(only),
            many => many
                .iter()
                .map(|(bucket, r)| format!("s3://{}: {}", bucket.as_deref().unwrap_or("?"), one(r)))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// What the metrics need of each decoded item: when its event happened, and the native
/// replication failure it heals.
struct EventFacts {
    time_ms: Option<i64>,
    native_failure: Option<String>,
}

fn event_times(items: &[Decoded]) -> Vec<EventFacts> {
    items
        .iter()
        .map(|d| match d {
            Ok(Item::Object(o)) => EventFacts {
                time_ms: o.event_time_ms,
                native_failure: o.native_failure.clone(),
            },
            _ => EventFacts {
                time_ms: None,
                native_failure: None,
            },
        })
        .collect()
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Copied {
            bytes,
            method,
            replica_version_id,
            ..
        } => format!(
            "copied {bytes} bytes ({method:?}), replica version {}",
            replica_version_id.as_deref().unwrap_or("null")
        ),
        Outcome::DeleteMarkerCreated { .. } => "delete marker created".into(),
        Outcome::TagsReplicated { tags, .. } => format!("{tags} tags set on the replica"),
        Outcome::LockReplicated { .. } => "Object Lock set on the replica as the source's".into(),
        Outcome::RestoreRequested { tier, days, .. } => {
            format!("archived: {tier} restore for {days} days requested; copied when it completes")
        }
        Outcome::Skipped { reason } => format!("skipped: {reason:?}"),
    }
}
