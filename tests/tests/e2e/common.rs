//! Helpers for driving the handler with the fixtures in `events/`.

use replicator_tests::{form_encode, World};
use serde_json::Value;

/// The direct S3 fixture, naming `key` at `version` with `size`.
pub fn s3_event(world: &World, key: &str, version: &str, size: usize) -> Value {
    let mut event = world.fixture("s3-object-created.json");
    let object = &mut event["Records"][0]["s3"]["object"];
    object["key"] = form_encode(key).into();
    object["versionId"] = version.into();
    object["size"] = size.into();
    event
}

/// The direct S3 event for `key` at `version` handled by a fresh copier: its answer, or the
/// invocation's failure.
pub async fn deliver(
    world: &World,
    key: &str,
    version: &str,
    size: usize,
) -> Result<Value, event_copier::InvocationFailed> {
    world
        .handler()
        .await
        .handle(s3_event(world, key, version, size))
        .await
}

/// A new SQS queue in the source account: its URL.
pub async fn queue(world: &World) -> String {
    aws_sdk_sqs::Client::new(&world.source_sdk)
        .create_queue()
        .queue_name(format!("copier-{}", rand::random::<u32>()))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

/// Feeds the queue to a fresh event copier, ten messages a batch, as Lambda's SQS event
/// source would, until it is empty; every batch must succeed. Returns how many messages
/// were delivered.
pub async fn drain(world: &World, queue: &str) -> usize {
    let sqs = aws_sdk_sqs::Client::new(&world.source_sdk);
    let handler = world.handler().await;
    let mut delivered = 0;
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            return delivered;
        }
        let records: Vec<Value> = got
            .messages()
            .iter()
            .map(|m| {
                serde_json::json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                       "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                       "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
            })
            .collect();
        delivered += records.len();
        let out = handler
            .handle(serde_json::json!({ "Records": records }))
            .await
            .unwrap();
        assert_eq!(out["batchItemFailures"], serde_json::json!([]), "{out}");
        for m in got.messages() {
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Captured;
    fn make_writer(&'w self) -> Captured {
        self.clone()
    }
}
