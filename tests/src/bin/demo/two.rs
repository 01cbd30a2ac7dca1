//! The demo's rule set: one deployment replicating to two destination accounts through
//! REPLICATION_RULES, stored in SSM as a deployment stores it, run by the real binaries.

use std::path::Path;

use replicator_tests::accounts::{Destination, ThreeAccounts};
use replicator_tests::cargo_lambda::{function_env, LambdaWatch};
use serde_json::json;

use super::{set_s3_object, write};

/// Runs the section; the number of problems found.
pub async fn run(endpoint: &str, dir: &Path) -> usize {
    println!("\ntwo destination accounts through REPLICATION_RULES (stored in SSM):");
    let a = ThreeAccounts::on(endpoint).await;
    let mut logs = a.rule(
        "logs-to-first",
        2,
        &a.first,
        json!({"Prefix": "logs/"}),
        false,
    );
    logs["Destination"]["StorageClass"] = json!("STANDARD_IA");
    let rules = vec![
        a.rule("all-to-first", 1, &a.first, json!({}), true),
        logs,
        a.rule(
            "finance-to-second",
            1,
            &a.second,
            json!({"Tag": {"Key": "team", "Value": "finance"}}),
            false,
        ),
    ];
    let document = json!({ "Rules": rules }).to_string();
    aws_sdk_ssm::Client::new(&a.world.source_sdk)
        .put_parameter()
        .name("/demo/replication-rules")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(&document)
        .overwrite(true)
        .send()
        .await
        .expect("put the rules");
    println!(
        "  {} (account {}) and {} (account {}), each with its own role and KMS key",
        a.first.bucket, a.first.account, a.second.bucket, a.second.account
    );
    for r in &rules {
        println!(
            "  rule {:<18} priority {} filter {}",
            r["ID"].as_str().unwrap(),
            r["Priority"],
            r["Filter"]
        );
    }
    let objects: [(&str, &[u8], &str); 4] = [
        ("logs/app.log", b"log line", ""),
        ("reports/q1.csv", b"q1,finance", "team=finance"),
        ("notes/todo.txt", b"buy milk", ""),
        ("reports/old.csv", b"before the rules", "team=finance"),
    ];
    let mut versions = Vec::new();
    for (key, body, tags) in objects {
        versions.push(
            a.world
                .put_with(key, body.to_vec(), |p| {
                    if tags.is_empty() {
                        p
                    } else {
                        p.tagging(tags)
                    }
                })
                .await,
        );
    }
    let mut env: Vec<(String, String)> = function_env(&a.world)
        .into_iter()
        .filter(|(k, _)| {
            !replicator_core::rules::SINGLE_DESTINATION_VARIABLES.contains(&k.as_str())
        })
        .collect();
    env.push((
        "REPLICATION_RULES".into(),
        "ssm:/demo/replication-rules".into(),
    ));
    let log = dir.join("watch-rules.log");
    let watch = tokio::task::spawn_blocking(move || LambdaWatch::start(&env, &log))
        .await
        .unwrap();
    let mut problems = 0;
    // Events for the first three; the fourth existed before and only the sync finds it.
    for (i, (key, body, _)) in objects.iter().take(3).enumerate() {
        let mut event = a.world.fixture("s3-object-created.json");
        set_s3_object(&mut event, key, &versions[i], body.len());
        let file = write(dir, &format!("rules-{i}.json"), &event);
        match tokio::task::block_in_place(|| watch.invoke("event-copier", &file)) {
            Ok(v) => println!("  event-copier  {key:<16} -> {v}"),
            Err(e) => {
                problems += 1;
                println!("  event-copier  {key}: FAILED: {e}");
            }
        }
    }
    let schedule = write(
        dir,
        "rules-schedule.json",
        &a.world.fixture("schedule.json"),
    );
    match tokio::task::block_in_place(|| watch.invoke("scheduled-sync", &schedule)) {
        Ok(v) => {
            for r in v["rules"].as_array().into_iter().flatten() {
                println!(
                    "  scheduled-sync rule {:<18} copied={} skipped={} complete={}",
                    r["rule"].as_str().unwrap_or("?"),
                    r["report"]["copied"],
                    r["report"]["skipped"],
                    r["report"]["complete"]
                );
            }
        }
        Err(e) => {
            problems += 1;
            println!("  scheduled-sync: FAILED: {e}");
        }
    }
    drop(watch);
    println!(
        "\n  {:<16} {:<28} {:<28} verdict",
        "key", "first destination", "second destination"
    );
    for (key, body, tags) in objects {
        let to_second = tags == "team=finance";
        let first = replica(&a.first, key, body).await;
        let second = replica(&a.second, key, body).await;
        let class = a.first.storage_class(key).await;
        let first_ok =
            first.is_ok() && (class.as_deref() == Some("STANDARD_IA")) == key.starts_with("logs/");
        let second_ok = if to_second {
            second.is_ok()
        } else {
            second == Err("absent")
        };
        let show = |r: &Result<(), &str>, class: Option<&str>| match r {
            Ok(()) => format!(
                "replica, its key{}",
                class.map(|c| format!(", {c}")).unwrap_or_default()
            ),
            Err(e) => (*e).to_owned(),
        };
        let verdict = if first_ok && second_ok {
            "PASS"
        } else {
            "FAIL"
        };
        problems += usize::from(verdict == "FAIL");
        println!(
            "  {key:<16} {:<32} {:<28} {verdict}",
            show(&first, class.as_deref()),
            show(&second, None)
        );
    }
    problems
}

/// Whether `d` holds `key` with `body`, encrypted with its own key.
async fn replica(d: &Destination, key: &str, body: &[u8]) -> Result<(), &'static str> {
    match d.replica(key).await {
        None => Err("absent"),
        Some((got, kms)) if got == body && kms.as_deref() == Some(d.key_arn.as_str()) => Ok(()),
        Some(_) => Err("WRONG bytes or key"),
    }
}
