//! The deployment templates against the code: every variable the code reads is set by the
//! template and every one the template sets is read; and the IAM policies are least
//! privilege in the sense that matters most — no wildcard actions, no `Resource: "*"` where
//! a resource can be named.

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

#[test]
fn the_destination_role_trusts_only_the_function_role_and_requires_the_external_id() {
    let template = load("deploy/destination-account.yaml");
    let trust = &template["Resources"]["DestinationRole"]["Properties"]["AssumeRolePolicyDocument"]
        ["Statement"][0];
    assert_eq!(trust["Action"], Value::from("sts:AssumeRole"));
    assert!(
        matches!(&trust["Condition"]["StringEquals"]["sts:ExternalId"], Value::Tagged(t) if t.tag == "!Ref" && t.value == "ExternalId")
    );
    let principal = &trust["Principal"]["AWS"];
    assert!(
        matches!(principal, Value::Tagged(t) if t.tag == "!Ref" && t.value == "SourceFunctionRoleArns")
    );
}
