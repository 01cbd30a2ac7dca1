//! The HTML report of one verification: a single self-contained file (inline CSS, inline
//! SVG charts, a small inline script for the filters; nothing fetched) rendered from
//! `report.html` with minijinja, which escapes every value. What it shows: the verdict, the
//! totals per class, problems by top-level prefix, the replication lag as a distribution,
//! the problem list with filters, and the configuration it ran with — never the ExternalId.

use minijinja::value::{Serde, Value};
use minijinja::Environment;
use replicator_core::verify::tally::LAG_BUCKETS;
use replicator_core::verify::{Checked, Class, Tally};
use serde::Serialize;

use super::Run;

const TEMPLATE: &str = include_str!("report.html");

/// Bars a prefix chart shows (the largest).
const PREFIX_BARS: usize = 20;

#[derive(Debug, Serialize)]
struct Total {
    class: &'static str,
    count: u64,
    problem: bool,
    meaning: &'static str,
}

/// One bar of a chart, laid out in SVG user units.
#[derive(Debug, Serialize, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: u64,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

#[derive(Debug, Serialize)]
struct Row<'a> {
    key: &'a str,
    class: &'static str,
    found: Option<&'static str>,
    repair: Option<&'a str>,
    detail: String,
    size: u64,
    source_version: Option<&'a str>,
    replica_version: Option<&'a str>,
    checksum: Option<&'a str>,
}

fn meaning(class: Class) -> &'static str {
    match class {
        Class::Ok => "replica of the current version, equal bytes, destination key",
        Class::Missing => "no replica",
        Class::Stale => "replica of another source version",
        Class::Corrupt => "same version, different bytes or size",
        Class::WrongKey => "not SSE-KMS with the destination key",
        Class::LockDrift => "Object Lock settings differ",
        Class::MetadataDrift => "content headers or user metadata differ",
        Class::TagDrift => "tags differ",
        Class::Unverifiable => "no comparable checksum; run with --deep",
        Class::Extra => "replica whose source is gone (not a problem)",
        Class::Foreign => "not written by this replicator (not a problem)",
    }
}

/// Horizontal bars (one per row), longest first: problems by top-level prefix.
pub fn prefix_bars(tally: &Tally) -> Vec<Bar> {
    let mut counts: Vec<(&String, &u64)> = tally.problems_by_prefix.iter().collect();
    counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let max = counts.first().map_or(1, |(_, n)| **n).max(1) as f64;
    counts
        .into_iter()
        .take(PREFIX_BARS)
        .enumerate()
        .map(|(i, (label, n))| Bar {
            label: shorten(label, 26),
            value: *n,
            x: 180.0,
            y: 10.0 + i as f64 * 26.0,
            width: (*n as f64 / max * 380.0).max(2.0),
            height: 18.0,
        })
        .collect()
}

/// `label` cut to `max` characters, with an ellipsis.
fn shorten(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        return label.to_owned();
    }
    let cut: String = label.chars().take(max - 1).collect();
    format!("{cut}…")
}

/// Vertical bars, one per lag bucket, on a 220-unit-high plot.
pub fn lag_bars(tally: &Tally) -> Vec<Bar> {
    let max = tally.lag.iter().copied().max().unwrap_or(0).max(1) as f64;
    LAG_BUCKETS
        .iter()
        .enumerate()
        .map(|(i, (_, label))| {
            let n = tally.lag.get(i).copied().unwrap_or(0);
            let height = n as f64 / max * 200.0;
            Bar {
                label: (*label).to_owned(),
                value: n,
                x: 20.0 + i as f64 * 72.0,
                y: 220.0 - height,
                width: 56.0,
                height,
            }
        })
        .collect()
}

fn row(c: &Checked) -> Row<'_> {
    Row {
        key: &c.key,
        class: c.class.name(),
        found: c.found.map(Class::name),
        repair: c.repair.as_deref(),
        detail: c
            .findings
            .iter()
            .map(|f| f.detail.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        size: c.size,
        source_version: c.source_version.as_deref(),
        replica_version: c.replica_version.as_deref(),
        checksum: c.checksum.as_deref(),
    }
}

/// The configuration the run used, as name/value pairs; the ExternalId only as "set".
fn configuration(run: &Run<'_>) -> Vec<(&'static str, String)> {
    let c = run.config;
    let d = &c.destination;
    let or_none = |v: &str| {
        if v.is_empty() {
            "(none)".to_owned()
        } else {
            v.to_owned()
        }
    };
    vec![
        ("SOURCE_BUCKET", c.source.bucket.clone()),
        ("KEY_PREFIX", or_none(&c.source.key_prefix)),
        ("verified prefix", or_none(run.prefix)),
        ("DESTINATION_BUCKET", d.bucket.clone()),
        ("DESTINATION_PREFIX", or_none(&d.prefix)),
        ("DESTINATION_ROLE_ARN", d.role_arn.clone()),
        (
            "DESTINATION_EXTERNAL_ID",
            if d.external_id.is_some() {
                "set (not shown)".to_owned()
            } else {
                "not set".to_owned()
            },
        ),
        ("DESTINATION_KMS_KEY_ID", d.kms_key_id.clone()),
        ("replicas must name key", run.kms_key_arn.to_owned()),
        ("DESTINATION_ACCOUNT_ID", d.account_id.clone()),
        (
            "DESTINATION_REGION",
            d.region.clone().unwrap_or_else(|| "(the source's)".into()),
        ),
        ("VERIFY_CONCURRENCY", run.verify.concurrency.to_string()),
        ("--deep", run.options.deep.to_string()),
        ("--tags", run.options.tags.to_string()),
        ("--repair", run.options.repair.to_string()),
        ("replicator version", env!("CARGO_PKG_VERSION").to_owned()),
    ]
}

/// Renders the report; `failure` is a listing error that cut the run short.
pub fn render(tally: &Tally, run: &Run<'_>, failure: Option<String>) -> Result<String, String> {
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| format!("report template: {e}"))?;
    let totals: Vec<Total> = Class::ALL
        .iter()
        .map(|c| Total {
            class: c.name(),
            count: tally.count(*c),
            problem: c.is_problem(),
            meaning: meaning(*c),
        })
        .collect();
    let rows: Vec<Row<'_>> = tally.problems.iter().map(row).collect();
    let generated = aws_sdk_s3::primitives::DateTime::from_millis(run.finished_ms)
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default();
    let problems = tally.problem_count();
    let ctx = minijinja::context! {
        verdict => if failure.is_some() { "INCOMPLETE" } else if problems > 0 { "PROBLEMS" } else { "PASS" },
        failure => failure,
        generated => generated,
        duration => format!("{:.1} s", run.started.elapsed().as_secs_f64()),
        objects => tally.objects,
        bytes => indicatif::HumanBytes(tally.bytes).to_string(),
        problems => problems,
        repaired => tally.repaired,
        totals => Value::from(Serde(&totals)),
        prefix_bars => Value::from(Serde(prefix_bars(tally))),
        prefix_chart_height => 20 + 26 * tally.problems_by_prefix.len().min(PREFIX_BARS),
        lag_bars => Value::from(Serde(lag_bars(tally))),
        lag_total => tally.lag.iter().sum::<u64>(),
        rows => Value::from(Serde(&rows)),
        not_listed => tally.problems_not_kept,
        configuration => Value::from(Serde(configuration(run))),
        classes => Value::from(Serde(Class::ALL.iter().filter(|c| **c != Class::Ok).map(|c| c.name()).collect::<Vec<_>>())),
    };
    env.get_template("report.html")
        .and_then(|t| t.render(ctx))
        .map_err(|e| format!("report: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest() {
        let mut t = Tally::keeping(0);
        t.problems_by_prefix.insert("a/".into(), 4);
        t.problems_by_prefix.insert("b/".into(), 2);
        let bars = prefix_bars(&t);
        assert_eq!(bars[0].label, "a/");
        assert_eq!(bars[0].width, 380.0);
        assert_eq!(bars[1].width, 190.0);
        t.lag = vec![0, 3, 0, 0, 0, 0, 0, 1];
        let lag = lag_bars(&t);
        assert_eq!(lag.len(), LAG_BUCKETS.len());
        assert_eq!((lag[1].height, lag[7].value), (200.0, 1));
    }
}
