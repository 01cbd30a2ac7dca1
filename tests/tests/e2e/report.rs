//! The HTML report of `replicator verify --report` rendered in real headless Chromium: the
//! DOM after the page's own script ran shows the right totals per class, the charts, and
//! the filters working (the `#class=` fragment applies one); the file fetches nothing.
//!
//! Chromium comes from Debian (`./scripts/setup` installs it where it can); where it cannot
//! be installed the test says so and checks only what needs no browser.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::verify::{cli, comparable_world, plant_every_class};

/// Chromium's binary: `$CHROMIUM`, else the first of the usual names on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(move |dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `args`; its stdout.
fn headless(browser: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_renders_in_chromium_with_the_right_totals_and_working_filters() {
    let world = comparable_world().await;
    plant_every_class(&world).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    let (code, out) = cli(
        &world,
        &["verify", "--tags", "--report", path.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    eprintln!("$ replicator verify --tags --report report.html\n{out}");
    let html = std::fs::read_to_string(&path).unwrap();
    // Self-contained: nothing to fetch, and no secret.
    for fetch in ["src=\"http", "href=\"http", "<link", "@import", "url("] {
        assert!(!html.contains(fetch), "the report fetches: {fetch}");
    }
    assert!(
        !html.contains(replicator_tests::EXTERNAL_ID),
        "ExternalId in the report"
    );
    assert!(html.contains(&world.destination_bucket));

    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED the browser half of this test: no Chromium here (apt-get install chromium, \
             or set CHROMIUM); the report was checked as a file only"
        );
        return;
    };
    let url = format!("file://{}", path.display());
    let dom = headless(
        &browser,
        &dir.path().join("profile-1"),
        &["--dump-dom"],
        &url,
    );
    for (class, count) in [
        ("ok", 2),
        ("missing", 1),
        ("stale", 1),
        ("corrupt", 1),
        ("wrong-key", 1),
        ("metadata-drift", 1),
        ("tag-drift", 1),
        ("lock-drift", 0),
        ("unverifiable", 0),
        ("extra", 1),
        ("foreign", 1),
    ] {
        let total = format!("data-class=\"{class}\" data-count=\"{count}\"");
        assert!(
            dom.contains(&total),
            "total {class} = {count} not shown:\n{dom}"
        );
    }
    assert!(
        dom.contains("PROBLEMS: 6 of 10 objects with a problem"),
        "{dom}"
    );
    assert!(dom.contains("id=\"prefix-chart\""), "{dom}");
    assert!(
        dom.contains("data-label=\"planted/\" data-value=\"5\""),
        "{dom}"
    );
    assert!(
        dom.contains("data-label=\"other/\" data-value=\"1\""),
        "{dom}"
    );
    assert!(dom.contains("id=\"lag-chart\""), "{dom}");
    // Every row shown unfiltered; the script ran and counted them.
    assert!(dom.contains("<span id=\"shown\">8</span>"), "{dom}");
    assert!(!dom.contains("hidden=\"\""), "{dom}");

    let filtered = headless(
        &browser,
        &dir.path().join("profile-2"),
        &["--dump-dom"],
        &format!("{url}#class=corrupt,wrong-key"),
    );
    assert!(
        filtered.contains("<span id=\"shown\">2</span>"),
        "{filtered}"
    );
    assert!(
        filtered.contains("<tr data-class=\"corrupt\" data-key=\"planted/corrupt\">"),
        "{filtered}"
    );
    assert!(
        filtered.contains("<tr data-class=\"missing\" data-key=\"planted/missing\" hidden=\"\">"),
        "{filtered}"
    );

    let shot = dir.path().join("report.png");
    headless(
        &browser,
        &dir.path().join("profile-3"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2200",
        ],
        &url,
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if let Some(keep) = std::env::var_os("REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
