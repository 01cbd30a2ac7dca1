//! Fan-out: instead of copying, the sync sends one S3-notification-shaped message per object
//! to the event copier's queue (SendMessageBatch, 10 per request), so a bucket of tens of
//! millions of objects spreads over many concurrent copiers.

use thiserror::Error;

/// SQS's limit on entries per SendMessageBatch.
pub const BATCH: usize = 10;

/// Why a message was not sent.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FanoutError {
    #[error("sqs:SendMessage to {queue} refused this entry ({code}): {message}")]
    Refused {
        queue: String,
        code: String,
        message: String,
    },
    #[error("sqs:SendMessage to {queue} failed ({code}): {message}")]
    Failed {
        queue: String,
        code: String,
        message: String,
    },
}

/// What a batch came to: the keys sent, and the keys not sent with why.
#[derive(Debug, Default)]
pub struct Sent {
    pub enqueued: Vec<String>,
    pub failed: Vec<(String, FanoutError)>,
}

/// Messages waiting to be sent, in key order.
pub struct Fanout {
    sqs: aws_sdk_sqs::Client,
    queue: String,
    pending: Vec<(String, String)>,
}

impl Fanout {
    pub fn new(sqs: aws_sdk_sqs::Client, queue: String) -> Self {
        Self {
            sqs,
            queue,
            pending: Vec::new(),
        }
    }

    pub fn push(&mut self, key: String, body: String) {
        self.pending.push((key, body));
    }

    pub fn is_full(&self) -> bool {
        self.pending.len() >= BATCH
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Sends what is pending, as one SendMessageBatch.
    pub async fn send(&mut self) -> Sent {
        let batch = std::mem::take(&mut self.pending);
        if batch.is_empty() {
            return Sent::default();
        }
        let entries: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, (_, body))| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let answer = self
            .sqs
            .send_message_batch()
            .queue_url(&self.queue)
            .set_entries(Some(entries))
            .send()
            .await;
        let mut sent = Sent::default();
        match answer {
            Ok(out) => {
                for (i, (key, _)) in batch.into_iter().enumerate() {
                    match out.failed().iter().find(|f| f.id() == i.to_string()) {
                        Some(f) => sent.failed.push((
                            key,
                            FanoutError::Refused {
                                queue: self.queue.clone(),
                                code: f.code().to_owned(),
                                message: f.message().unwrap_or_default().to_owned(),
                            },
                        )),
                        None => sent.enqueued.push(key),
                    }
                }
            }
            Err(e) => {
                let error = failed(&self.queue, e);
                sent.failed = batch
                    .into_iter()
                    .map(|(key, _)| (key, error.clone()))
                    .collect();
            }
        }
        sent
    }
}

fn failed<E>(
    queue: &str,
    e: aws_sdk_sqs::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> FanoutError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = match &e {
        aws_sdk_sqs::error::SdkError::ServiceError(s) => {
            s.err().code().unwrap_or("unknown").to_owned()
        }
        _ => "no response".to_owned(),
    };
    FanoutError::Failed {
        queue: queue.to_owned(),
        code,
        message: crate::error::error_chain(&e),
    }
}
