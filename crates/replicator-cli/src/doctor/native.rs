//! Native replication beside this replicator: the source bucket's replication configuration
//! (GetBucketReplication) and its event notifications (GetBucketNotificationConfiguration),
//! read with the caller's credentials, and what they mean for healing.
//!
//! What is judged (pure, [`assess`]): which enabled rules replicate to the configured
//! destination bucket, and whether they cover KEY_PREFIX whole or in part; whether native
//! replicas and this replicator's land on the same keys (native keeps the source key, so a
//! DESTINATION_PREFIX puts this replicator's replicas elsewhere); whether replication
//! metrics are on (S3 sends `s3:Replication:OperationFailedReplication` only then, and the
//! threshold events only with S3 RTC: "Receiving replication failure events with Amazon S3
//! Event Notifications", S3 user guide); and whether those events reach the copier's queue.
//! Nothing here is a failure: replication works without any of it, so each finding is a
//! warning naming what to change, and a denied read is a warning too.

use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput as Notifications;
use aws_sdk_s3::types::{
    MetricsStatus, ReplicationConfiguration, ReplicationRule, ReplicationRuleStatus,
    ReplicationTimeStatus,
};
use replicator_core::config::NativeMode;

use super::report::{answer, message, not_a_permission, warning, Answer, Verdict};
use super::Context;

/// The event that heals (and the wildcard that includes it), as notifications name them.
const FAILED_EVENT: &str = "s3:Replication:OperationFailedReplication";
const ALL_REPLICATION_EVENTS: &str = "s3:Replication:*";

/// One native rule, as far as healing cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub enabled: bool,
    pub prefix: String,
    /// A tag filter: only tagged objects are replicated by this rule.
    pub tags: bool,
    /// `arn:…:s3:::bucket`.
    pub destination: String,
    pub metrics: bool,
    pub rtc: bool,
}

/// Where the bucket sends replication failure events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscriber {
    Queue(String),
    Topic(String),
    Function(String),
}

/// What the doctor learnt; `notifications` is `Err` with the reason when unreadable.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub source_bucket: &'a str,
    pub key_prefix: &'a str,
    pub destination_arn: &'a str,
    pub destination_prefix: &'a str,
    pub heal: bool,
    pub rules: Vec<Rule>,
    pub notifications: Result<Vec<Subscriber>, String>,
    pub copier_queue: Option<&'a str>,
}

pub async fn replication(cx: &mut Context<'_>) -> Verdict {
    let bucket = &cx.config.source.bucket;
    let heal = matches!(cx.config.source.native, NativeMode::Heal { .. });
    let read = cx
        .clients
        .source
        .get_bucket_replication()
        .bucket(bucket)
        .send()
        .await;
    let configuration = match read {
        Ok(out) => out.replication_configuration,
        Err(e) => match answer(&e) {
            Answer::Missing if heal => {
                return Err(warning(
                    message(&e),
                    format!("NATIVE_REPLICATION=heal, but s3://{bucket} has no replication configuration: no version ever gets a status, so heal mode copies everything, one extra HEAD per version"),
                    "set NATIVE_REPLICATION=copy, or configure native replication",
                ))
            }
            Answer::Missing => {
                return Ok(format!(
                    "no native replication on s3://{bucket}: this replicator is its only replication"
                ))
            }
            Answer::Denied => {
                return Err(warning(
                    message(&e),
                    format!("cannot read the replication configuration of s3://{bucket}, so whether native replication runs beside this replicator (and can be healed) is not checked; replication itself does not need it"),
                    format!("allow the caller s3:GetReplicationConfiguration on {}", cx.src_arn),
                ))
            }
            Answer::Other => return Err(not_a_permission(&e)),
        },
    };
    let rules = configuration
        .as_ref()
        .map(ReplicationConfiguration::rules)
        .unwrap_or_default()
        .iter()
        .map(rule)
        .collect();
    let notifications = match cx
        .clients
        .source
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => Ok(subscribers(&out)),
        Err(e) => Err(match answer(&e) {
            Answer::Denied => format!(
                "cannot read its event notifications ({}): allow the caller s3:GetBucketNotification on {}",
                message(&e),
                cx.src_arn
            ),
            _ => format!("cannot read its event notifications: {}", message(&e)),
        }),
    };
    assess(&Facts {
        source_bucket: bucket,
        key_prefix: &cx.config.source.key_prefix,
        destination_arn: &cx.dst_arn,
        destination_prefix: &cx.config.destination.prefix,
        heal,
        rules,
        notifications,
        copier_queue: cx.copier_queue_arn.as_deref(),
    })
}

fn rule(r: &ReplicationRule) -> Rule {
    let filter = r.filter();
    let and = filter.and_then(|f| f.and());
    let prefix = filter
        .and_then(|f| f.prefix())
        .or_else(|| and.and_then(|a| a.prefix()))
        .or({
            // A V1 rule (no Filter) still carries the rule-level Prefix S3 deprecated.
            #[allow(deprecated)]
            r.prefix()
        })
        .unwrap_or_default();
    let destination = r.destination();
    Rule {
        id: r.id().unwrap_or("(no ID)").to_owned(),
        enabled: r.status() == &ReplicationRuleStatus::Enabled,
        prefix: prefix.to_owned(),
        tags: filter.is_some_and(|f| f.tag().is_some())
            || and.is_some_and(|a| !a.tags().is_empty()),
        destination: destination
            .map(|d| d.bucket().to_owned())
            .unwrap_or_default(),
        metrics: destination
            .and_then(|d| d.metrics())
            .is_some_and(|m| m.status() == &MetricsStatus::Enabled),
        rtc: destination
            .and_then(|d| d.replication_time())
            .is_some_and(|t| t.status() == &ReplicationTimeStatus::Enabled),
    }
}

/// Who receives the bucket's replication failure events.
fn subscribers(n: &Notifications) -> Vec<Subscriber> {
    let heals = |events: &[aws_sdk_s3::types::Event]| {
        events
            .iter()
            .any(|e| [FAILED_EVENT, ALL_REPLICATION_EVENTS].contains(&e.as_str()))
    };
    let queues = n
        .queue_configurations()
        .iter()
        .filter(|q| heals(q.events()))
        .map(|q| Subscriber::Queue(q.queue_arn().to_owned()));
    let topics = n
        .topic_configurations()
        .iter()
        .filter(|t| heals(t.events()))
        .map(|t| Subscriber::Topic(t.topic_arn().to_owned()));
    let functions = n
        .lambda_function_configurations()
        .iter()
        .filter(|f| heals(f.events()))
        .map(|f| Subscriber::Function(f.lambda_function_arn().to_owned()));
    queues.chain(topics).chain(functions).collect()
}

/// How a rule's filter relates to the replicator's KEY_PREFIX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cover {
    /// Every key the replicator replicates (unless the rule filters by tag).
    Whole,
    /// Only keys under a longer prefix.
    Part,
    None,
}

fn cover(rule: &Rule, key_prefix: &str) -> Cover {
    if key_prefix.starts_with(&rule.prefix) {
        Cover::Whole
    } else if rule.prefix.starts_with(key_prefix) {
        Cover::Part
    } else {
        Cover::None
    }
}

/// The verdict on what was read: the rules in the detail, each finding a warning.
pub fn assess(f: &Facts<'_>) -> Verdict {
    let bucket = f.source_bucket;
    let shown: Vec<String> = f
        .rules
        .iter()
        .map(|r| {
            format!(
                "rule {} ({}, prefix {:?}{}) → {}, metrics {}, RTC {}",
                r.id,
                if r.enabled { "Enabled" } else { "Disabled" },
                r.prefix,
                if r.tags { ", tag filter" } else { "" },
                r.destination,
                if r.metrics { "on" } else { "off" },
                if r.rtc { "on" } else { "off" },
            )
        })
        .collect();
    let mut detail = shown.join("; ");
    let ours: Vec<&Rule> = f
        .rules
        .iter()
        .filter(|r| r.enabled && r.destination == f.destination_arn)
        .filter(|r| cover(r, f.key_prefix) != Cover::None)
        .collect();
    let mut causes = Vec::new();
    let mut fixes = Vec::new();
    if ours.is_empty() {
        if f.heal {
            causes.push(format!("NATIVE_REPLICATION=heal, but no enabled rule of s3://{bucket} replicates {:?} to {}: no version there gets a status, so heal mode copies everything, one extra HEAD per version", f.key_prefix, f.destination_arn));
            fixes.push("set NATIVE_REPLICATION=copy, or add the rule".to_owned());
        } else {
            if !detail.is_empty() {
                detail.push_str(". ");
            }
            detail.push_str(&format!(
                "no enabled rule replicates {:?} to {}: native replicas are not in the destination, nothing to heal",
                f.key_prefix, f.destination_arn
            ));
        }
    } else {
        let whole = ours
            .iter()
            .any(|r| cover(r, f.key_prefix) == Cover::Whole && !r.tags);
        if !detail.is_empty() {
            detail.push_str(". ");
        }
        detail.push_str(&format!(
            "native replication covers {} of {:?} to this destination",
            if whole { "all" } else { "part" },
            f.key_prefix
        ));
        if !f.destination_prefix.is_empty() {
            causes.push(format!("native replication writes each replica under the source key, this replicator under DESTINATION_PREFIX {:?}: two copies of every object in the destination, and native replicas are not recognised", f.destination_prefix));
            fixes.push("set DESTINATION_PREFIX to \"\" to heal native replication, or replicate to another bucket".to_owned());
        }
        let no_metrics: Vec<&str> = ours
            .iter()
            .filter(|r| !r.metrics)
            .map(|r| r.id.as_str())
            .collect();
        if !no_metrics.is_empty() {
            causes.push(format!("replication metrics are off on rule(s) {}: S3 sends no s3:Replication:OperationFailedReplication events without them, so failures are healed only when a sync reads FAILED", no_metrics.join(", ")));
            fixes.push(format!("turn on replication metrics (Destination.Metrics Status=Enabled) in the rule(s) {} of s3://{bucket}", no_metrics.join(", ")));
        }
        match &f.notifications {
            Err(reason) => {
                causes.push(reason.clone());
                fixes.push("or check the notifications in the S3 console".to_owned());
            }
            Ok(subscribers) => wiring(f, subscribers, &mut detail, &mut causes, &mut fixes),
        }
    }
    if causes.is_empty() {
        return Ok(detail);
    }
    Err(warning(detail, causes.join("; "), fixes.join("; ")))
}

fn wiring(
    f: &Facts<'_>,
    subscribers: &[Subscriber],
    detail: &mut String,
    causes: &mut Vec<String>,
    fixes: &mut Vec<String>,
) {
    let bucket = f.source_bucket;
    let subscribe = format!("add a QueueConfiguration for {FAILED_EVENT} (and the threshold events with S3 RTC) to the copier's queue, merged into s3://{bucket}'s existing notifications: get-bucket-notification-configuration, add it, put-bucket-notification-configuration (docs/DEPLOY.md, \"Beside native replication\")");
    let direct = f
        .copier_queue
        .is_some_and(|q| subscribers.contains(&Subscriber::Queue(q.to_owned())));
    if direct {
        detail.push_str("; failure events go to the copier's queue");
        return;
    }
    let others: Vec<String> = subscribers
        .iter()
        .map(|s| match s {
            Subscriber::Queue(arn) => format!("queue {arn}"),
            Subscriber::Topic(arn) => format!("SNS topic {arn}"),
            Subscriber::Function(arn) => format!("function {arn}"),
        })
        .collect();
    match (f.copier_queue, others.is_empty()) {
        (_, true) => {
            causes.push(format!(
                "s3://{bucket} sends its replication failure events nowhere: failures wait for the next sync"
            ));
            fixes.push(subscribe);
        }
        (None, false) => detail.push_str(&format!(
            "; failure events go to {} (give --copier-queue-arn to check one is the copier's)",
            others.join(", ")
        )),
        (Some(queue), false) => {
            let via_topic = subscribers
                .iter()
                .any(|s| matches!(s, Subscriber::Topic(_)));
            causes.push(format!(
                "replication failure events go to {}, not to the copier's queue {queue}{}",
                others.join(", "),
                if via_topic {
                    " (fine through SNS if the queue is subscribed to the topic)"
                } else {
                    ""
                }
            ));
            fixes.push(subscribe);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: &str = "arn:aws:s3:::dst";
    const QUEUE: &str = "arn:aws:sqs:us-east-1:111111111111:copier";

    fn rule(prefix: &str, metrics: bool) -> Rule {
        Rule {
            id: format!("r-{prefix}"),
            enabled: true,
            prefix: prefix.into(),
            tags: false,
            destination: DST.into(),
            metrics,
            rtc: false,
        }
    }

    fn facts(rules: Vec<Rule>, subscribers: Vec<Subscriber>) -> Facts<'static> {
        Facts {
            source_bucket: "src",
            key_prefix: "data/",
            destination_arn: DST,
            destination_prefix: "",
            heal: true,
            rules,
            notifications: Ok(subscribers),
            copier_queue: Some(QUEUE),
        }
    }

    #[test]
    fn a_covering_rule_with_metrics_and_events_to_the_queue_passes() {
        let detail = assess(&facts(
            vec![rule("", true)],
            vec![Subscriber::Queue(QUEUE.into())],
        ))
        .unwrap();
        assert!(detail.contains("covers all of \"data/\""), "{detail}");
        assert!(detail.contains("metrics on"), "{detail}");
        assert!(detail.contains("copier's queue"), "{detail}");
    }

    #[test]
    fn metrics_off_is_a_warning_naming_the_rule() {
        let w = assess(&facts(
            vec![rule("data/", false)],
            vec![Subscriber::Queue(QUEUE.into())],
        ))
        .unwrap_err();
        assert!(w.warning);
        assert!(w.cause.contains("r-data/"), "{}", w.cause);
        assert!(w.fix.contains("Metrics Status=Enabled"), "{}", w.fix);
    }

    #[test]
    fn events_sent_nowhere_or_elsewhere_are_warnings_with_the_wiring() {
        let nowhere = assess(&facts(vec![rule("", true)], vec![])).unwrap_err();
        assert!(nowhere.cause.contains("nowhere"), "{}", nowhere.cause);
        assert!(nowhere
            .fix
            .contains("put-bucket-notification-configuration"));
        let topic = "arn:aws:sns:us-east-1:111111111111:t";
        let elsewhere = assess(&facts(
            vec![rule("", true)],
            vec![Subscriber::Topic(topic.into())],
        ))
        .unwrap_err();
        assert!(elsewhere.cause.contains(topic), "{}", elsewhere.cause);
        assert!(elsewhere.cause.contains("through SNS"));
    }

    #[test]
    fn rules_elsewhere_or_disabled_or_disjoint_do_not_cover() {
        let mut other = rule("", true);
        other.destination = "arn:aws:s3:::other".into();
        let mut disabled = rule("", true);
        disabled.enabled = false;
        let disjoint = rule("logs/", true);
        for r in [other, disabled, disjoint] {
            let mut f = facts(vec![r.clone()], vec![]);
            f.heal = false;
            let detail = assess(&f).unwrap();
            assert!(detail.contains("no enabled rule"), "{r:?}: {detail}");
            f.heal = true;
            assert!(assess(&f)
                .unwrap_err()
                .cause
                .contains("heal mode copies everything"));
        }
    }

    #[test]
    fn a_longer_prefix_or_a_tag_filter_covers_part() {
        let detail = assess(&facts(
            vec![rule("data/a/", true)],
            vec![Subscriber::Queue(QUEUE.into())],
        ))
        .unwrap();
        assert!(detail.contains("covers part"), "{detail}");
        let mut tagged = rule("", true);
        tagged.tags = true;
        let detail = assess(&facts(vec![tagged], vec![Subscriber::Queue(QUEUE.into())])).unwrap();
        assert!(detail.contains("covers part"), "{detail}");
    }

    #[test]
    fn a_destination_prefix_means_two_copies() {
        let mut f = facts(vec![rule("", true)], vec![Subscriber::Queue(QUEUE.into())]);
        f.destination_prefix = "copy/";
        let w = assess(&f).unwrap_err();
        assert!(w.cause.contains("two copies"), "{}", w.cause);
    }

    #[test]
    fn without_the_queue_arn_the_subscribers_are_listed() {
        let mut f = facts(vec![rule("", true)], vec![Subscriber::Queue(QUEUE.into())]);
        f.copier_queue = None;
        let detail = assess(&f).unwrap();
        assert!(detail.contains("--copier-queue-arn"), "{detail}");
    }
}
