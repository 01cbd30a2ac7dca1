//! Whom the destination role trusts, read with iam:GetRole through the role itself: only
//! the functions' role and, while its trust lasts, the doctor's own principal. A principal
//! trusted by hand for a check and never removed is the leak this check exists to catch.

use serde_json::Value;

use super::destination::principal_arn;
use super::report::{failed, on_error, statement, warning, Verdict};
use super::Context;

/// One principal a trust statement lets assume the role, as the doctor reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    /// The principal ARN (exactly, by `aws:PrincipalArn`), or what the statement lets in.
    pub who: String,
    /// Named exactly: one principal, not an account, a service or a wildcard.
    pub exact: bool,
    pub external_id: bool,
    /// The statement ends at `aws:CurrentTime` (DateLessThan).
    pub until: Option<String>,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    }
}

/// The condition values of `key` under any of `operators`.
fn condition(statement: &Value, operators: &[&str], key: &str) -> Vec<String> {
    operators
        .iter()
        .flat_map(|op| strings(&statement["Condition"][*op][key]))
        .collect()
}

fn is_account(principal: &str) -> bool {
    principal.ends_with(":root") || principal.chars().all(|c| c.is_ascii_digit())
}

/// Every principal the trust policy `document` lets assume the role.
pub fn trusted(document: &Value) -> Vec<Trusted> {
    let statements = match &document["Statement"] {
        Value::Array(a) => a.clone(),
        one => vec![one.clone()],
    };
    let mut out = Vec::new();
    for s in statements.iter().filter(|s| s["Effect"] == "Allow") {
        let assumes = strings(&s["Action"])
            .iter()
            .any(|a| a == "sts:AssumeRole" || a == "sts:*" || a == "*");
        if !assumes {
            continue;
        }
        let external_id = !condition(s, &["StringEquals"], "sts:ExternalId").is_empty();
        let until = condition(s, &["DateLessThan"], "aws:CurrentTime")
            .into_iter()
            .next();
        let named = condition(s, &["ArnEquals", "StringEquals"], "aws:PrincipalArn");
        let wide = condition(s, &["ArnLike", "StringLike"], "aws:PrincipalArn");
        let principals = match &s["Principal"] {
            Value::String(p) => vec![p.clone()],
            p => ["AWS", "Service", "Federated"]
                .iter()
                .flat_map(|k| strings(&p[*k]))
                .collect(),
        };
        for p in principals {
            let one = |who: String, exact: bool| Trusted {
                who,
                exact,
                external_id,
                until: until.clone(),
            };
            if is_account(&p) && !named.is_empty() {
                out.extend(named.iter().map(|n| one(n.clone(), !n.contains('*'))));
            } else if is_account(&p) {
                let narrowed = wide
                    .first()
                    .map(|w| format!(" matching {w}"))
                    .unwrap_or_default();
                out.push(one(format!("every principal of {p}{narrowed}"), false));
            } else {
                out.push(one(p.clone(), !p.contains('*') && p.contains(":iam::")));
            }
        }
    }
    out
}

pub async fn check(cx: &mut Context<'_>) -> Verdict {
    let role_arn = &cx.config.destination.role_arn;
    let name = role_arn.rsplit('/').next().unwrap_or(role_arn);
    let iam = aws_sdk_iam::Client::new(&cx.clients.destination_sdk);
    let out = iam
        .get_role()
        .role_name(name)
        .send()
        .await
        .map_err(on_error(
            format!("the destination role cannot read its own trust policy ({role_arn})"),
            format!(
                "allow the destination role: {} (deploy/destination-account.yaml grants it)",
                statement(
                    replicator_core::permissions::DESTINATION_ROLE_ACTIONS,
                    role_arn
                )
            ),
        ))?;
    let encoded = out
        .role()
        .and_then(|r| r.assume_role_policy_document())
        .unwrap_or_default();
    let text = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
    let document: Value = serde_json::from_str(&text).map_err(|e| {
        failed(
            format!("{e}"),
            format!("the trust policy of {role_arn} is not JSON IAM would accept"),
            "fix the trust policy (deploy/destination-account.yaml sets it)",
        )
    })?;
    judge(
        role_arn,
        &trusted(&document),
        cx.function_role_arn.as_deref(),
        cx.caller.as_deref().map(principal_arn).as_deref(),
    )
}

/// Whether two principal ARNs name the same principal. A role's ARN from a session
/// (`assumed-role/NAME/…`) carries no path, while a trust policy names the role with it
/// (`role/aws-reserved/sso.amazonaws.com/NAME` for an IAM Identity Center role); role and
/// user names are unique in an account whatever their path ("IAM identifiers", IAM User
/// Guide), so partition, account, kind and name decide.
pub fn same_principal(a: &str, b: &str) -> bool {
    fn identity(arn: &str) -> Option<(&str, &str, &str, &str)> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, partition, "iam", "", account, resource] = parts.as_slice() else {
            return None;
        };
        let (kind, rest) = resource.split_once('/')?;
        let name = rest.rsplit('/').next()?;
        matches!(kind, "role" | "user").then_some((*partition, *account, kind, name))
    }
    a == b || matches!((identity(a), identity(b)), (Some(x), Some(y)) if x == y)
}

/// The verdict on who is trusted: the functions' role (when known) and the doctor's own
/// principal, both with the ExternalId, the doctor's with an expiry; nobody else.
pub fn judge(
    role_arn: &str,
    trusted: &[Trusted],
    functions: Option<&str>,
    doctor: Option<&str>,
) -> Verdict {
    let list = trusted
        .iter()
        .map(|t| match &t.until {
            Some(until) => format!("{} (until {until})", t.who),
            None => t.who.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let fix = "deploy deploy/destination-account.yaml again: it trusts only SourceFunctionRoleName and, until DoctorTrustExpires, DoctorPrincipalArn; remove any statement added by hand";
    let is = |t: &Trusted, who: Option<&str>| who.is_some_and(|w| same_principal(&t.who, w));
    let doctor_is_functions =
        matches!((doctor, functions), (Some(d), Some(f)) if same_principal(d, f));
    let is_doctor = |t: &Trusted| is(t, doctor) && !doctor_is_functions;
    let mut unexpected = Vec::new();
    for t in trusted {
        let expected = is(t, functions) || is_doctor(t);
        if !t.exact {
            unexpected.push(format!("{} (not one principal)", t.who));
        } else if !t.external_id {
            unexpected.push(format!("{} (no sts:ExternalId condition)", t.who));
        } else if is_doctor(t) && t.until.is_none() {
            unexpected.push(format!(
                "{} (the doctor's own, with no aws:CurrentTime expiry: it would stay trusted)",
                t.who
            ));
        } else if !expected && functions.is_some() {
            unexpected.push(t.who.clone());
        }
    }
    let others: Vec<&Trusted> = trusted.iter().filter(|t| !is_doctor(t)).collect();
    if functions.is_none() && others.len() > 1 {
        unexpected.push(format!(
            "{} principals besides the doctor, where only the functions' role should be",
            others.len()
        ));
    }
    if !unexpected.is_empty() {
        return Err(failed(
            list,
            format!(
                "{role_arn} trusts more than the functions' role and the doctor: {}",
                unexpected.join("; ")
            ),
            fix,
        ));
    }
    if functions.is_none() {
        return Err(warning(
            list,
            "the functions' role ARN was not given, so the doctor cannot tell that the one principal trusted besides itself is it",
            "run with --function-role-arn <FunctionRoleArn output of the source stack>",
        ));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FUNCTIONS: &str = "arn:aws:iam::111111111111:role/s3-fallback-replicator-functions";
    const DOCTOR: &str = "arn:aws:iam::111111111111:role/admin";

    fn statement(principal: &str, arn: &str, until: Option<&str>) -> Value {
        let mut s = json!({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "x"}, "ArnEquals": {"aws:PrincipalArn": arn}}});
        if let Some(u) = until {
            s["Condition"]["DateLessThan"] = json!({"aws:CurrentTime": u});
        }
        s
    }

    fn verdict(statements: Vec<Value>) -> Verdict {
        let doc = json!({"Version": "2012-10-17", "Statement": statements});
        judge(
            "arn:aws:iam::2:role/r",
            &trusted(&doc),
            Some(FUNCTIONS),
            Some(DOCTOR),
        )
    }

    const ROOT: &str = "arn:aws:iam::111111111111:root";

    #[test]
    fn the_functions_and_an_expiring_doctor_pass() {
        let ok = verdict(vec![
            statement(ROOT, FUNCTIONS, None),
            statement(ROOT, DOCTOR, Some("2030-01-01T00:00:00Z")),
        ]);
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn a_role_is_the_same_principal_whatever_its_path() {
        // An IAM Identity Center role as its session shows it (no path) and as a trust
        // policy names it.
        let session = "arn:aws:iam::111111111111:role/AWSReservedSSO_Admin_0123";
        let trusted = "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123";
        assert!(same_principal(session, trusted));
        assert!(!same_principal(
            session,
            "arn:aws:iam::222222222222:role/AWSReservedSSO_Admin_0123"
        ));
        assert!(!same_principal(
            session,
            "arn:aws:iam::111111111111:user/AWSReservedSSO_Admin_0123"
        ));
        assert!(!same_principal(
            session,
            "arn:aws:iam::111111111111:role/AWSReservedSSO_Admin"
        ));
        let ok = judge(
            "arn:aws:iam::2:role/r",
            &super::trusted(&json!({"Version": "2012-10-17", "Statement": [
                statement(ROOT, FUNCTIONS, None),
                statement(ROOT, trusted, Some("2030-01-01T00:00:00Z")),
            ]})),
            Some(FUNCTIONS),
            Some(session),
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn the_whole_account_another_principal_or_a_doctor_without_expiry_fail() {
        let whole = json!({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "x"}}});
        for bad in [
            vec![whole],
            vec![
                statement(ROOT, FUNCTIONS, None),
                statement(ROOT, "arn:aws:iam::111111111111:user/alice", None),
            ],
            vec![
                statement(ROOT, FUNCTIONS, None),
                statement(ROOT, DOCTOR, None),
            ],
            vec![
                json!({"Effect": "Allow", "Principal": {"AWS": FUNCTIONS}, "Action": "sts:AssumeRole"}),
            ],
        ] {
            let v = verdict(bad.clone());
            assert!(matches!(&v, Err(f) if !f.warning), "{bad:?}: {v:?}");
        }
    }
}
