//! `replicator verify [--prefix P] [--deep] [--tags] [--repair] [--report FILE] [--json]`:
//! every source object under the prefix checked against its replica, with a progress bar on
//! a terminal (objects/s, bytes, problems so far), one line per object that is not ok (a
//! JSON line each with `--json`), a summary table, and optionally the HTML report.
//!
//! Exit codes: 0 when no source object has a problem (extras and foreign objects are
//! reported, not problems), 1 when problems remain (or the listing failed), 2 for usage.

pub mod report;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use clap::{Arg, ArgAction, ArgMatches, Command};
use futures::StreamExt;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use replicator_core::verify::{Checked, Options, Tally, Verifier, VerifyConfig};
use replicator_core::{Clients, Config, Replicator};

use crate::backfill::summary;
use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// Problem rows an HTML report lists (the totals count every object).
pub const REPORT_ROWS: usize = 10_000;

pub fn command() -> Command {
    let flag = |name: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .action(ArgAction::SetTrue)
            .help(help)
    };
    Command::new("verify")
        .about("prove the replicas match their sources; exit 1 if any source object has a problem")
        .arg(
            Arg::new("prefix")
                .long("prefix")
                .help("verify only under this prefix (within KEY_PREFIX)"),
        )
        .arg(flag(
            "deep",
            "read and hash both objects (ranged, bounded memory), and compare tags",
        ))
        .arg(flag("tags", "compare tags too"))
        .arg(flag(
            "repair",
            "copy missing, stale, corrupt and wrong-key objects again, then check them again (never deletes)",
        ))
        .arg(
            Arg::new("report")
                .long("report")
                .value_name("FILE")
                .help("write a self-contained HTML report to FILE"),
        )
        .arg(flag("json", "one JSON line per object that is not ok"))
}

/// What ran, for the report and the summary.
pub struct Run<'a> {
    pub config: &'a Config,
    pub verify: &'a VerifyConfig,
    pub options: Options,
    pub prefix: &'a str,
    pub kms_key_arn: &'a str,
    pub started: Instant,
    pub finished_ms: i64,
}

pub async fn run(
    sdk: &SdkConfig,
    config: Config,
    verify: VerifyConfig,
    sub: &ArgMatches,
    out: &mut dyn Write,
) -> i32 {
    let options = Options {
        deep: sub.get_flag("deep"),
        tags: sub.get_flag("tags"),
        repair: sub.get_flag("repair"),
    };
    let json = sub.get_flag("json");
    let clients = Clients::new(sdk, &config).await;
    let kms_key_arn = match resolve_key(&clients, &config.destination.kms_key_id).await {
        Ok(arn) => arn,
        Err(e) => {
            let _ = writeln!(out, "verify failed: {e}");
            return EXIT_FAILED;
        }
    };
    let verifier = Verifier::new(Replicator::new(config.clone(), clients), verify.clone())
        .with_kms_key_arn(kms_key_arn.clone());
    let prefix = match verifier.scope(sub.get_one::<String>("prefix").map(String::as_str)) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "{e}");
            return EXIT_USAGE;
        }
    };
    let started = Instant::now();
    let bar = progress_bar();
    let mut tally = Tally::keeping(REPORT_ROWS);
    let mut failure = None;
    {
        let mut checked = std::pin::pin!(verifier.check_all(&prefix, None, options));
        while let Some(item) = checked.next().await {
            match item {
                Ok(c) => {
                    tally.add(&c);
                    if let Some(b) = &bar {
                        b.inc(1);
                        b.set_message(format!(
                            "{} · {} problems",
                            HumanBytes(tally.bytes),
                            tally.problem_count()
                        ));
                    }
                    if c.class != replicator_core::verify::Class::Ok || c.found.is_some() {
                        print_row(out, &c, json, bar.as_ref());
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let run = Run {
        config: &config,
        verify: &verify,
        options,
        prefix: &prefix,
        kms_key_arn: &kms_key_arn,
        started,
        finished_ms: replicator_core::clock::now_ms(),
    };
    finish(out, &tally, &run, sub, json, failure)
}

/// Summary, report and exit code.
/// A message for a person: with `--json` on stderr, so that stdout carries only JSON lines.
fn say(out: &mut dyn Write, json: bool, message: &str) {
    if json {
        eprintln!("{message}");
    } else {
        let _ = writeln!(out, "{message}");
    }
}

fn finish(
    out: &mut dyn Write,
    tally: &Tally,
    run: &Run<'_>,
    sub: &ArgMatches,
    json: bool,
    failure: Option<replicator_core::ReplicationError>,
) -> i32 {
    let mut table = Vec::new();
    print_summary(&mut table, tally, run.started);
    if json {
        // stdout carries only the JSON lines; the table goes to the terminal.
        let _ = std::io::stderr().write_all(&table);
    } else {
        let _ = out.write_all(&table);
    }
    if let Some(path) = sub.get_one::<String>("report") {
        let html = report::render(tally, run, failure.as_ref().map(|e| e.to_string()));
        match html.and_then(|h| std::fs::write(path, h).map_err(|e| e.to_string())) {
            Ok(()) if !json => {
                let _ = writeln!(out, "report written to {path}");
            }
            Ok(()) => {}
            Err(e) => {
                say(
                    out,
                    json,
                    &format!("could not write the report {path}: {e}"),
                );
                return EXIT_FAILED;
            }
        }
    }
    if let Some(e) = failure {
        say(out, json, &format!("verify failed: {e}"));
        return EXIT_FAILED;
    }
    if tally.problem_count() > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// S3 names the key an alias resolved to on replicas: ask KMS (as the destination role)
/// what the configured alias ARN resolves to; a key ARN is used as it is.
async fn resolve_key(clients: &Clients, key: &str) -> Result<String, String> {
    if !key.contains(":alias/") {
        return Ok(key.to_owned());
    }
    let kms = aws_sdk_kms::Client::new(&clients.destination_sdk);
    let described = kms.describe_key().key_id(key).send().await.map_err(|e| {
        format!("could not resolve DESTINATION_KMS_KEY_ID {key} with kms:DescribeKey: {e}")
    })?;
    described
        .key_metadata()
        .and_then(|m| m.arn())
        .map(str::to_owned)
        .ok_or_else(|| format!("KMS answered no key ARN for {key}"))
}

fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {pos} objects ({per_sec}) · {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

fn print_row(out: &mut dyn Write, c: &Checked, json: bool, bar: Option<&ProgressBar>) {
    let line = if json {
        serde_json::to_string(c).expect("serialisable")
    } else {
        let detail = c
            .findings
            .iter()
            .map(|f| f.detail.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let repair = c
            .found
            .map(|found| {
                format!(
                    " [found {found}, repair: {}]",
                    c.repair.as_deref().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        format!("{:<15} {}  {detail}{repair}", c.class.name(), c.key)
    };
    match bar {
        Some(b) => b.suspend(|| {
            let _ = writeln!(out, "{line}");
        }),
        None => {
            let _ = writeln!(out, "{line}");
        }
    }
}

fn print_summary(out: &mut dyn Write, tally: &Tally, started: Instant) {
    use replicator_core::verify::Class;
    let elapsed = started.elapsed().as_secs_f64();
    let mut rows: Vec<(&str, u64)> = vec![("objects", tally.objects)];
    rows.extend(Class::ALL.iter().map(|c| (c.name(), tally.count(*c))));
    rows.push(("problems", tally.problem_count()));
    rows.push(("repaired", tally.repaired));
    rows.push(("bytes", tally.bytes));
    rows.push((
        "objects/s",
        (tally.objects as f64 / elapsed.max(1e-3)) as u64,
    ));
    summary(out, &rows, started);
}
