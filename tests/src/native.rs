//! Native replication's configuration on a world's source bucket, as an operator sets it:
//! rules (PutBucketReplication) and where the bucket sends replication failure events
//! (PutBucketNotificationConfiguration). The emulator stores both; its simulator
//! (`World::native_replication`) then acts as the replication engine.

use aws_sdk_s3::types::{
    DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination, Event, Metrics,
    MetricsStatus, NotificationConfiguration, QueueConfiguration, ReplicationConfiguration,
    ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus,
};

use crate::World;

/// The role native replication would assume (the emulator does not check it).
pub const NATIVE_ROLE: &str = "arn:aws:iam::123456789012:role/native-replication";

/// An enabled V2 rule: `prefix` to `bucket`, delete markers not replicated, replication
/// metrics on or off.
pub fn rule(id: &str, priority: i32, prefix: &str, bucket: &str, metrics: bool) -> ReplicationRule {
    let mut destination = Destination::builder().bucket(format!("arn:aws:s3:::{bucket}"));
    if metrics {
        destination = destination.metrics(
            Metrics::builder()
                .status(MetricsStatus::Enabled)
                .build()
                .unwrap(),
        );
    }
    ReplicationRule::builder()
        .id(id)
        .priority(priority)
        .status(ReplicationRuleStatus::Enabled)
        .filter(ReplicationRuleFilter::builder().prefix(prefix).build())
        .delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(DeleteMarkerReplicationStatus::Disabled)
                .build(),
        )
        .destination(destination.build().unwrap())
        .build()
        .unwrap()
}

impl World {
    /// Puts `rules` as the source bucket's replication configuration.
    pub async fn put_native_rules(&self, rules: Vec<ReplicationRule>) {
        self.put_replication_configuration(
            ReplicationConfiguration::builder()
                .role(NATIVE_ROLE)
                .set_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .await;
    }

    /// Puts `configuration` as the source bucket's replication configuration.
    pub async fn put_replication_configuration(&self, configuration: ReplicationConfiguration) {
        self.src
            .put_bucket_replication()
            .bucket(&self.source_bucket)
            .replication_configuration(configuration)
            .send()
            .await
            .expect("the emulator stores the replication configuration");
    }

    /// A queue's ARN from its URL.
    pub async fn queue_arn(&self, queue_url: &str) -> String {
        use aws_sdk_sqs::types::QueueAttributeName;
        aws_sdk_sqs::Client::new(&self.source_sdk)
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("the queue's attributes")
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("the queue's ARN")
    }

    /// The source's replication failure events go to `queue_arn`, or (None) nowhere: the
    /// bucket's whole notification configuration.
    pub async fn send_failure_events_to(&self, queue_arn: Option<&str>) {
        let mut notifications = NotificationConfiguration::builder();
        if let Some(arn) = queue_arn {
            notifications = notifications.queue_configurations(
                QueueConfiguration::builder()
                    .queue_arn(arn)
                    .events(Event::from("s3:Replication:OperationFailedReplication"))
                    .build()
                    .unwrap(),
            );
        }
        self.src
            .put_bucket_notification_configuration()
            .bucket(&self.source_bucket)
            .notification_configuration(notifications.build())
            .send()
            .await
            .expect("the emulator stores the notification configuration");
    }
}
