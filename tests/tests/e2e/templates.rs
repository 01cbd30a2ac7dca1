//! The deployment templates against the code: every variable the code reads is set by the
//! template and every one the template sets is read; the IAM policies are least privilege in
//! the sense that matters most — no wildcard actions, no `Resource: "*"` where a resource can
//! be named, trust narrow from the first deploy, the replica key through S3 only; every
//! failure metric the code emits has an alarm that reaches someone, and the dashboard shows
//! exactly the metrics the code emits; queue and prefix settings that cannot lose messages
//! or widen grants.

use std::collections::BTreeSet;

use replicator_core::config::VARIABLES;
use replicator_core::sync::SYNC_VARIABLES;
use replicator_core::verify::VERIFY_VARIABLES;
use serde_yaml::Value;

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(replicator_tests::workspace().join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn function_variables(template: &Value, logical_id: &str) -> BTreeSet<String> {
    let vars = &template["Resources"][logical_id]["Properties"]["Environment"]["Variables"];
    vars.as_mapping()
        .unwrap_or_else(|| panic!("{logical_id} has no environment"))
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// What the functions read, less what Lambda itself sets.
fn read_by_code(extra: &[&str]) -> BTreeSet<String> {
    VARIABLES
        .iter()
        .chain(extra)
        .filter(|v| **v != "AWS_LAMBDA_FUNCTION_NAME")
        .map(|v| (*v).to_owned())
        .collect()
}

#[test]
fn template_sets_exactly_the_variables_the_code_reads() {
    let template = load("template.yaml");
    assert_eq!(
        function_variables(&template, "EventCopierFunction"),
        read_by_code(&[])
    );
    assert_eq!(
        function_variables(&template, "ScheduledSyncFunction"),
        read_by_code(&[SYNC_VARIABLES, VERIFY_VARIABLES].concat())
    );
}

/// Every mapping with an `Effect` below `value`, through `Fn::If` branches and lists.
fn statements<'a>(value: &'a Value, out: &mut Vec<&'a serde_yaml::Mapping>) {
    match value {
        Value::Mapping(m) => {
            if m.contains_key("Effect") {
                out.push(m);
            }
            for v in m.values() {
                statements(v, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|v| statements(v, out)),
        Value::Tagged(t) => statements(&t.value, out),
        _ => {}
    }
}

fn as_list(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Sequence(s)) => s.clone(),
        Some(other) => vec![other.clone()],
        None => vec![],
    }
}

#[test]
fn policies_have_no_wildcard_actions_and_name_their_resources() {
    for path in ["template.yaml", "deploy/destination-account.yaml"] {
        let template = load(path);
        let resources = template["Resources"].as_mapping().unwrap();
        let mut checked = 0;
        for (id, resource) in resources {
            let kind = resource["Type"].as_str().unwrap_or_default();
            // A key policy's Resource "*" means "this key": it cannot name anything else.
            if kind == "AWS::KMS::Key" {
                continue;
            }
            let mut found = Vec::new();
            statements(&resource["Properties"], &mut found);
            for s in found {
                let effect = s.get("Effect").and_then(Value::as_str).unwrap_or_default();
                if effect != "Allow" {
                    continue; // Deny statements may be broad on purpose (TLS-only).
                }
                checked += 1;
                let sid = s.get("Sid").and_then(Value::as_str).unwrap_or_default();
                for action in as_list(s.get("Action")) {
                    let a = action.as_str().unwrap_or_default();
                    assert!(!a.contains('*'), "{path} {id:?} {sid}: wildcard action {a}");
                }
                for r in as_list(s.get("Resource")) {
                    if r.as_str() == Some("*") {
                        assert_eq!(
                            sid, "XRayHasNoResourceLevelPermissions",
                            "{path} {id:?}: Resource \"*\""
                        );
                    }
                }
            }
        }
        assert!(checked > 3, "{path}: found only {checked} statements");
    }
}

/// A `!Ref NAME` (or `!GetAtt NAME.…`) as the name it refers to.
fn reference(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "!Ref" || t.tag == "!GetAtt" => {
            t.value.as_str().map(|s| s.split('.').next().unwrap_or(s))
        }
        _ => None,
    }
}

/// The text of a `!Sub` (or a plain string).
fn sub_text(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "!Sub" => t.value.as_str(),
        other => other.as_str(),
    }
}

fn resources_of<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (id.as_str().unwrap(), r))
        .collect()
}

/// Defect 1: the topic's key lets CloudWatch (this stack's alarms only) encrypt with it.
#[test]
fn alarms_publish_to_a_topic_whose_key_cloudwatch_may_use() {
    let template = load("template.yaml");
    let topic = &template["Resources"]["AlarmTopic"]["Properties"];
    let key_id = reference(&topic["KmsMasterKeyId"]).unwrap_or_else(|| {
        panic!(
            "AlarmTopic must use a key of this stack, not {:?}",
            topic["KmsMasterKeyId"]
        )
    });
    let key = &template["Resources"][key_id];
    assert_eq!(key["Type"], Value::from("AWS::KMS::Key"));
    let mut found = Vec::new();
    statements(&key["Properties"]["KeyPolicy"], &mut found);
    let cloudwatch = found
        .iter()
        .find(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com")
        .expect("a key policy statement for cloudwatch.amazonaws.com");
    let actions: Vec<Value> = as_list(cloudwatch.get("Action"));
    for needed in ["kms:Decrypt", "kms:GenerateDataKey*"] {
        assert!(actions.contains(&Value::from(needed)), "{needed}");
    }
    let source_arn = sub_text(&cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"]).unwrap();
    assert!(
        source_arn.ends_with(":alarm:${AWS::StackName}-*"),
        "{source_arn}"
    );
    assert!(cloudwatch["Condition"]["StringEquals"]
        .get("aws:SourceAccount")
        .is_some());
    // Every alarm is named so that the condition covers it, and notifies the topic.
    for (id, alarm) in resources_of(&template, "AWS::CloudWatch::Alarm") {
        let name = sub_text(&alarm["Properties"]["AlarmName"]).unwrap_or_default();
        assert!(name.starts_with("${AWS::StackName}-"), "{id}: {name:?}");
        let actions = format!("{:?}", alarm["Properties"]["AlarmActions"]);
        assert!(actions.contains("AlarmTopic"), "{id} notifies nobody");
    }
}

fn parameter_default<'a>(template: &'a Value, name: &str) -> &'a Value {
    &template["Parameters"][name]["Default"]
}

/// Defect 2: from the first deploy the destination role trusts the functions' role by name
/// (aws:PrincipalArn) with the ExternalId, and the doctor only until an expiry.
#[test]
fn the_destination_role_trusts_only_the_function_role_and_requires_the_external_id() {
    let template = load("deploy/destination-account.yaml");
    assert!(
        template["Parameters"]
            .get("SourceFunctionRoleArns")
            .is_none(),
        "a list of trusted ARNs (the account root at first deploy) is what this replaces"
    );
    let mut trust = Vec::new();
    statements(
        &template["Resources"]["DestinationRole"]["Properties"]["AssumeRolePolicyDocument"],
        &mut trust,
    );
    assert_eq!(trust.len(), 2, "the functions and the doctor: {trust:?}");
    for s in &trust {
        assert_eq!(s["Action"], Value::from("sts:AssumeRole"));
        assert!(
            matches!(&s["Condition"]["StringEquals"]["sts:ExternalId"], Value::Tagged(t) if t.tag == "!Ref" && t.value == "ExternalId"),
            "{s:?}"
        );
        assert!(
            s["Condition"]["ArnEquals"]
                .get("aws:PrincipalArn")
                .is_some(),
            "every trusted principal is named exactly: {s:?}"
        );
    }
    let functions = sub_text(&trust[0]["Condition"]["ArnEquals"]["aws:PrincipalArn"]).unwrap();
    assert_eq!(
        functions,
        "arn:${AWS::Partition}:iam::${SourceAccountId}:role/${SourceFunctionRoleName}"
    );
    assert_eq!(
        reference(&trust[1]["Condition"]["DateLessThan"]["aws:CurrentTime"]),
        Some("DoctorTrustExpires"),
        "the doctor's trust ends by itself"
    );
    // The source stack names its role so.
    let source = load("template.yaml");
    assert_eq!(
        reference(&source["Resources"]["FunctionRole"]["Properties"]["RoleName"]),
        Some("FunctionRoleName")
    );
    assert_eq!(
        parameter_default(&source, "FunctionRoleName"),
        parameter_default(&template, "SourceFunctionRoleName")
    );
}

/// Defect 5: the replica key is used through S3 only, and never to Encrypt.
#[test]
fn the_replica_key_grant_is_used_through_s3_only() {
    assert!(!replicator_core::permissions::DESTINATION_KEY_ACTIONS.contains(&"kms:Encrypt"));
    let template = load("deploy/destination-account.yaml");
    let mut found = Vec::new();
    statements(
        &template["Resources"]["DestinationRole"]["Properties"]["Policies"],
        &mut found,
    );
    let mut seen = 0;
    for s in found {
        for action in as_list(s.get("Action")) {
            let a = action.as_str().unwrap();
            assert_ne!(a, "kms:Encrypt", "kms:Encrypt is never used");
            if a == "kms:GenerateDataKey" || a == "kms:Decrypt" {
                seen += 1;
                let via = sub_text(&s["Condition"]["StringEquals"]["kms:ViaService"]);
                assert_eq!(via, Some("s3.${AWS::Region}.amazonaws.com"), "{a}: {s:?}");
            }
        }
    }
    assert_eq!(seen, 2);
}

/// An alarm's metric: (namespace, name, the FunctionName or QueueName it watches).
fn alarm_metrics(alarm: &Value) -> Vec<(String, String, String)> {
    let p = &alarm["Properties"];
    let one = |m: &Value| {
        let dims = m["Dimensions"].as_sequence().cloned().unwrap_or_default();
        let target = dims
            .iter()
            .find_map(|d| reference(&d["Value"]).map(str::to_owned))
            .unwrap_or_default();
        (
            m["Namespace"].as_str().unwrap_or_default().to_owned(),
            m["MetricName"].as_str().unwrap_or_default().to_owned(),
            target,
        )
    };
    match p["Metrics"].as_sequence() {
        Some(ms) => ms
            .iter()
            .filter(|m| m.get("MetricStat").is_some())
            .map(|m| one(&m["MetricStat"]["Metric"]))
            .collect(),
        None => vec![one(p)],
    }
}

fn function_of(emitter: replicator_core::metrics::Emitter) -> &'static str {
    match emitter {
        replicator_core::metrics::Emitter::Copier => "EventCopierFunction",
        replicator_core::metrics::Emitter::Sync | replicator_core::metrics::Emitter::Audit => {
            "ScheduledSyncFunction"
        }
    }
}

/// Defect 7: every failure metric either function emits has an alarm that fires on the
/// first bad period; lag and the queue's oldest message have theirs; EventBridge's
/// undeliverable events go to the dead-letter queue.
#[test]
fn every_failure_metric_the_functions_emit_has_an_alarm() {
    use replicator_core::metrics::{Kind, METRICS, NAMESPACE};
    let template = load("template.yaml");
    let alarms = resources_of(&template, "AWS::CloudWatch::Alarm");
    let find = |namespace: &str, name: &str, target: &str| {
        alarms
            .iter()
            .filter(|(_, a)| {
                alarm_metrics(a).contains(&(namespace.into(), name.into(), target.into()))
            })
            .map(|(id, a)| (*id, *a))
            .collect::<Vec<_>>()
    };
    for m in METRICS.iter().filter(|m| m.kind != Kind::Progress) {
        for emitter in m.emitters {
            let function = function_of(*emitter);
            let found = find(NAMESPACE, m.name, function);
            assert!(!found.is_empty(), "no alarm on {} of {function}", m.name);
            for (id, alarm) in found {
                let p = &alarm["Properties"];
                if matches!(m.kind, Kind::Failure | Kind::Latency) {
                    assert_eq!(p["EvaluationPeriods"], Value::from(1), "{id}");
                    assert!(p.get("DatapointsToAlarm").is_none(), "{id}");
                }
                if m.kind == Kind::Latency {
                    assert_eq!(
                        reference(&p["Threshold"]),
                        Some("ReplicationLagAlarmMinutes"),
                        "{id}"
                    );
                }
            }
        }
    }
    assert_eq!(
        parameter_default(&template, "ReplicationLagAlarmMinutes"),
        &Value::from(15)
    );
    let age = find("AWS/SQS", "ApproximateAgeOfOldestMessage", "CopierQueue");
    assert_eq!(age.len(), 1, "no alarm on the queue's oldest message");
    let target = &template["Resources"]["SourceObjectsRule"]["Properties"]["Targets"][0];
    assert_eq!(
        reference(&target["DeadLetterConfig"]["Arn"]),
        Some("DeadLetterQueue")
    );
    assert!(target["RetryPolicy"]["MaximumRetryAttempts"].as_u64() > Some(0));
}

/// Defect 8: the queue limits the copier's concurrency (not reserved concurrency), the DLQ
/// outlives the queue's retention, is TLS-only and kept, as are the log groups.
#[test]
fn queue_settings_do_not_push_messages_to_the_dead_letter_queue() {
    let template = load("template.yaml");
    let r = &template["Resources"];
    let copier = &r["EventCopierFunction"]["Properties"];
    assert!(
        copier.get("ReservedConcurrentExecutions").is_none(),
        "reserved concurrency throttles the SQS event source mapping into the DLQ"
    );
    assert_eq!(
        reference(&copier["Events"]["Queue"]["Properties"]["ScalingConfig"]["MaximumConcurrency"]),
        Some("CopierMaximumConcurrency")
    );
    let retention = |q: &str| {
        r[q]["Properties"]["MessageRetentionPeriod"]
            .as_u64()
            .unwrap()
    };
    assert!(retention("DeadLetterQueue") > retention("CopierQueue"));
    let dlq_policy = resources_of(&template, "AWS::SQS::QueuePolicy")
        .into_iter()
        .find(|(_, p)| {
            p["Properties"]["Queues"]
                .as_sequence()
                .is_some_and(|q| q.iter().any(|q| reference(q) == Some("DeadLetterQueue")))
        })
        .expect("a queue policy on the dead-letter queue");
    let mut found = Vec::new();
    statements(&dlq_policy.1["Properties"], &mut found);
    assert!(
        found
            .iter()
            .any(|s| s["Effect"] == "Deny"
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false")
    );
    for id in ["DeadLetterQueue", "CopierLogGroup", "SyncLogGroup"] {
        assert_eq!(r[id]["DeletionPolicy"], Value::from("Retain"), "{id}");
        assert_eq!(r[id]["UpdateReplacePolicy"], Value::from("Retain"), "{id}");
    }
}

/// Defect 9: a prefix is empty or ends in "/" and has no IAM wildcard, in both templates.
#[test]
fn prefixes_are_empty_or_end_in_a_slash_without_wildcards() {
    let cases = [
        ("", true),
        ("prod/", true),
        ("a b/c+d/", true),
        ("prod", false),
        ("*", false),
        ("a*/", false),
        ("?/", false),
        ("prod/*", false),
    ];
    for (path, names) in [
        ("template.yaml", &["KeyPrefix", "DestinationPrefix"][..]),
        (
            "deploy/destination-account.yaml",
            &["DestinationPrefix"][..],
        ),
    ] {
        let template = load(path);
        for name in names {
            let pattern = template["Parameters"][name]["AllowedPattern"]
                .as_str()
                .unwrap_or_else(|| panic!("{path} {name}: no AllowedPattern"));
            let re = regex::Regex::new(pattern).unwrap();
            for (value, ok) in cases {
                assert_eq!(
                    re.is_match(value),
                    ok,
                    "{path} {name} {pattern} on {value:?}"
                );
            }
        }
    }
}

/// The dashboard body with its `${…}` substitutions made: functions by role, queues by id.
fn dashboard(template: &Value) -> serde_json::Value {
    let body = sub_text(&template["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
        .expect("a !Sub dashboard body");
    let body = body
        .replace("${EventCopierFunction}", "EventCopierFunction")
        .replace("${ScheduledSyncFunction}", "ScheduledSyncFunction")
        .replace("${DeadLetterQueue.QueueName}", "DeadLetterQueue")
        .replace("${CopierQueue.QueueName}", "CopierQueue");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("dashboard body: {e}"))
}

/// The dashboard shows exactly the metrics the code emits (replicator-core's `METRICS`,
/// which its unit tests hold to the EMF output), each for the function that emits it, the
/// queues and the copier's concurrency, and every alarm.
#[test]
fn the_dashboard_shows_every_metric_the_code_emits_and_no_other() {
    use replicator_core::metrics::{METRICS, NAMESPACE};
    let template = load("template.yaml");
    let body = dashboard(&template);
    let mut shown = BTreeSet::new();
    let mut alarms = BTreeSet::new();
    for w in body["widgets"].as_array().unwrap() {
        for m in w["properties"]["metrics"].as_array().into_iter().flatten() {
            let m = m.as_array().unwrap();
            if m[0].get("expression").is_some() {
                continue;
            }
            let s = |i: usize| m[i].as_str().unwrap_or_else(|| panic!("{m:?}")).to_owned();
            shown.insert((s(0), s(1), s(3)));
        }
        for a in w["properties"]["alarms"].as_array().into_iter().flatten() {
            alarms.insert(a.as_str().unwrap().to_owned());
        }
    }
    let emitted: BTreeSet<_> = METRICS
        .iter()
        .flat_map(|m| {
            m.emitters.iter().map(|e| {
                (
                    NAMESPACE.to_owned(),
                    m.name.to_owned(),
                    function_of(*e).to_owned(),
                )
            })
        })
        .collect();
    let ours: BTreeSet<_> = shown
        .iter()
        .filter(|(ns, _, _)| ns == NAMESPACE)
        .cloned()
        .collect();
    assert_eq!(
        ours.difference(&emitted).collect::<Vec<_>>(),
        Vec::<&(String, String, String)>::new(),
        "on the dashboard but not emitted"
    );
    assert_eq!(
        emitted.difference(&ours).collect::<Vec<_>>(),
        Vec::<&(String, String, String)>::new(),
        "emitted but not on the dashboard"
    );
    for needed in [
        (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "DeadLetterQueue",
        ),
        (
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            "DeadLetterQueue",
        ),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "CopierQueue"),
        ("AWS/Lambda", "ConcurrentExecutions", "EventCopierFunction"),
        ("AWS/Lambda", "Throttles", "EventCopierFunction"),
    ] {
        let needed = (needed.0.into(), needed.1.into(), needed.2.into());
        assert!(shown.contains(&needed), "{needed:?} not on the dashboard");
    }
    let every_alarm: BTreeSet<_> = resources_of(&template, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(id, _)| format!("${{{id}.Arn}}"))
        .collect();
    assert_eq!(alarms, every_alarm);
}

/// DEPLOY.md's commands name only parameters the templates have.
#[test]
fn the_deploy_guide_names_only_parameters_the_templates_have() {
    let guide =
        std::fs::read_to_string(replicator_tests::workspace().join("docs/DEPLOY.md")).unwrap();
    let mut known = BTreeSet::new();
    for path in ["template.yaml", "deploy/destination-account.yaml"] {
        let t = load(path);
        known.extend(
            t["Parameters"]
                .as_mapping()
                .unwrap()
                .keys()
                .map(|k| k.as_str().unwrap().to_owned()),
        );
    }
    let re = regex::Regex::new(r"(?m)^\s+([A-Z][A-Za-z]+)=").unwrap();
    let named: Vec<_> = re.captures_iter(&guide).map(|c| c[1].to_owned()).collect();
    assert!(named.len() > 5, "{named:?}");
    for n in named {
        assert!(
            known.contains(&n),
            "DEPLOY.md names parameter {n}, which no template has"
        );
    }
}

/// Whether a template condition holds for `params` (defaults for the rest): the intrinsic
/// functions conditions use here (`!Equals` of a `!Ref` and a string, `!Not`, `!And`,
/// `!Or`, `!Condition`).
fn holds(template: &Value, condition: &Value, params: &[(&str, &str)]) -> bool {
    let Value::Tagged(t) = condition else {
        panic!("not a condition: {condition:?}")
    };
    let value = |v: &Value| -> String {
        match reference(v) {
            Some(name) => params
                .iter()
                .find(|(p, _)| *p == name)
                .map(|(_, v)| (*v).to_owned())
                .unwrap_or_else(|| {
                    let default = parameter_default(template, name);
                    default.as_str().map(str::to_owned).unwrap_or_else(|| {
                        serde_yaml::to_string(default).unwrap().trim().to_owned()
                    })
                }),
            None => v.as_str().unwrap().to_owned(),
        }
    };
    let all = || t.value.as_sequence().unwrap().iter();
    match t.tag.to_string().as_str() {
        "!Equals" => value(&t.value[0]) == value(&t.value[1]),
        "!Not" => !holds(template, &t.value[0], params),
        "!And" => all().all(|c| holds(template, c, params)),
        "!Or" => all().any(|c| holds(template, c, params)),
        "!Condition" => holds(
            template,
            &template["Conditions"][t.value.as_str().unwrap()],
            params,
        ),
        other => panic!("{other} in a condition"),
    }
}

/// The copier queue's policy statements that hold for `params`.
fn queue_statements(template: &Value, params: &[(&str, &str)]) -> Vec<String> {
    let policy = &template["Resources"]["CopierQueuePolicy"]["Properties"]["PolicyDocument"];
    policy["Statement"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            Value::Tagged(t) if t.tag == "!If" => {
                let name = t.value[0].as_str().unwrap();
                let yes = holds(template, &template["Conditions"][name], params);
                let chosen = &t.value[if yes { 1 } else { 2 }];
                chosen["Sid"].as_str().map(str::to_owned)
            }
            s => s["Sid"].as_str().map(str::to_owned),
        })
        .collect()
}

/// Native replication's failure events come only through S3 notifications (EventBridge
/// carries none): with NativeReplicationEvents the queue accepts them in either mode.
#[test]
fn the_copier_queue_accepts_native_failure_events_in_either_trigger_mode() {
    let template = load("template.yaml");
    let s3 = "SourceBucketNotifications".to_owned();
    let rule = "SourceBucketEventBridgeRule".to_owned();
    let with = |mode, events| {
        queue_statements(
            &template,
            &[("TriggerMode", mode), ("NativeReplicationEvents", events)],
        )
    };
    let eventbridge = with("EventBridge", "false");
    assert!(!eventbridge.contains(&s3) && eventbridge.contains(&rule));
    let both = with("EventBridge", "true");
    assert!(both.contains(&s3) && both.contains(&rule), "{both:?}");
    let notifications = with("S3Notifications", "false");
    assert!(notifications.contains(&s3) && !notifications.contains(&rule));
}

/// The scheduled audit: a second rule on the scheduled-sync function, only with
/// AuditScheduleExpression, whose constant input the function takes as an audit (deep with
/// AuditDeep) — so that VerifyProblemsAlarm has data to watch.
#[test]
fn the_audit_schedule_invokes_the_sync_function_with_an_input_it_takes_as_an_audit() {
    let template = load("template.yaml");
    let rule = &template["Resources"]["AuditSchedule"];
    let permission = &template["Resources"]["AuditSchedulePermission"];
    let condition = &template["Conditions"][rule["Condition"].as_str().unwrap()];
    assert!(!holds(&template, condition, &[]), "no audit by default");
    assert!(holds(
        &template,
        condition,
        &[("AuditScheduleExpression", "rate(1 day)")]
    ));
    assert_eq!(permission["Condition"], rule["Condition"]);
    assert_eq!(
        permission["Properties"]["Principal"].as_str(),
        Some("events.amazonaws.com")
    );
    let target = &rule["Properties"]["Targets"][0];
    assert_eq!(
        serde_yaml::to_string(&target["Arn"]).unwrap().trim(),
        "!GetAtt ScheduledSyncFunction.Arn"
    );
    let Value::Tagged(input) = &target["Input"] else {
        panic!("the input is chosen by AuditDeep: {:?}", target["Input"])
    };
    assert_eq!(input.tag.to_string(), "!If");
    let deep = &template["Conditions"][input.value[0].as_str().unwrap()];
    assert!(holds(&template, deep, &[("AuditDeep", "true")]));
    assert!(!holds(&template, deep, &[]));
    for (at, is_deep) in [(1, true), (2, false)] {
        let text = input.value[at].as_str().unwrap();
        let overrides = scheduled_sync::parse_input(serde_json::from_str(text).unwrap()).unwrap();
        assert!(overrides.verify, "{text}");
        assert_eq!(overrides.deep, is_deep, "{text}");
    }
}

#[test]
fn with_a_rules_parameter_the_functions_take_the_rules_alone_and_may_assume_every_role_they_name() {
    let template = load("template.yaml");
    let uses_rules = &template["Conditions"]["UsesRules"];
    assert!(
        !holds(&template, uses_rules, &[]),
        "one destination by default"
    );
    assert!(holds(
        &template,
        uses_rules,
        &[("ReplicationRulesParameter", "/replicator/rules")]
    ));
    let yaml = |text: &str| serde_yaml::from_str::<Value>(text).unwrap();
    for function in ["EventCopierFunction", "ScheduledSyncFunction"] {
        let vars = &template["Resources"][function]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            vars["REPLICATION_RULES"],
            yaml(r#"!If [UsesRules, !Sub "ssm:${ReplicationRulesParameter}", ""]"#),
            "{function}"
        );
        // Every single-destination variable is unset with the rules (the engine refuses
        // both forms at once) and its parameter's otherwise.
        for variable in replicator_core::rules::SINGLE_DESTINATION_VARIABLES {
            let Value::Tagged(t) = &vars[*variable] else {
                panic!("{function} {variable}: {:?}", vars[*variable])
            };
            assert_eq!(t.tag.to_string(), "!If", "{function} {variable}");
            assert_eq!(t.value[0], yaml("UsesRules"), "{function} {variable}");
            assert_eq!(t.value[1], yaml(r#""""#), "{function} {variable}");
            assert!(reference(&t.value[2]).is_some(), "{function} {variable}");
        }
    }
    let mut found = Vec::new();
    statements(
        &template["Resources"]["FunctionRole"]["Properties"]["Policies"],
        &mut found,
    );
    let sid = |name: &str| {
        found
            .iter()
            .find(|s| s.get("Sid").and_then(Value::as_str) == Some(name))
            .unwrap_or_else(|| panic!("no statement {name}"))
    };
    assert_eq!(
        sid("AssumeDestinationRole")["Resource"],
        yaml(
            r#"!If [UsesRules, !Split [",", !Sub "${RulesDestinationRoleArns}"], !Ref DestinationRoleArn]"#
        )
    );
    assert_eq!(
        sid("ReadReplicationRules")["Action"],
        yaml("ssm:GetParameter")
    );
    // The template refuses a rules deployment without its roles, and one that also names a
    // destination bucket.
    let rules = template["Rules"]["DestinationsFromRules"]["Assertions"]
        .as_sequence()
        .unwrap();
    assert!(serde_yaml::to_string(rules)
        .unwrap()
        .contains("RulesDestinationRoleArns"));
}
