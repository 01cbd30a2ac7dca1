//! Runs the real `event-copier` binary under the Lambda Runtime API emulated by
//! `cargo lambda watch`, and invokes it with `cargo lambda invoke --data-file`.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::workspace;

/// A `cargo lambda watch` process group; killed on drop.
pub struct LambdaWatch {
    child: Child,
    pub port: u16,
    _env_file: tempfile::NamedTempFile,
}

fn cargo_lambda() -> PathBuf {
    let path = workspace().join(".venv/bin/cargo-lambda");
    assert!(
        path.exists(),
        "{} not found: run ./scripts/setup first",
        path.display()
    );
    path
}

/// PATH with the venv first, so `cargo lambda` finds its own binary and zig.
fn path_with_venv() -> String {
    let venv = workspace().join(".venv/bin");
    format!(
        "{}:{}",
        venv.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl LambdaWatch {
    /// Starts `cargo lambda watch` for the workspace with `env` as the functions'
    /// environment, and waits until it accepts invocations.
    pub fn start(env: &[(String, String)], log: &Path) -> LambdaWatch {
        use std::io::Write;
        let mut env_file = tempfile::NamedTempFile::new().expect("env file");
        for (k, v) in env {
            writeln!(env_file, "{k}={v}").expect("write env file");
        }
        let port = free_port();
        let log_file = std::fs::File::create(log).expect("log file");
        let child = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .arg("--env-file")
            .arg(env_file.path())
            .current_dir(workspace())
            .env("PATH", path_with_venv())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .expect("start cargo lambda watch");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "cargo lambda watch did not listen on {port}; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        LambdaWatch {
            child,
            port,
            _env_file: env_file,
        }
    }

    /// `cargo lambda invoke FUNCTION --data-file FILE`: the function's JSON answer, or the
    /// error it reported.
    pub fn invoke(&self, function: &str, data_file: &Path) -> Result<Value, String> {
        let out = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
            ])
            .args([
                "--invoke-port",
                &self.port.to_string(),
                "--output-format",
                "json",
            ])
            .arg("--data-file")
            .arg(data_file)
            .current_dir(workspace())
            .env("PATH", path_with_venv())
            .output()
            .expect("run cargo lambda invoke");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            serde_json::from_str(stdout.trim())
                .map_err(|e| format!("answer is not JSON ({e}): {stdout}"))
        } else {
            Err(format!(
                "{}{}",
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        // SIGKILL, never a graceful stop: the watcher's own shutdown path is not needed,
        // and the function instance runs in a session of its own, so it is killed by pid.
        let pid = self.child.id();
        for descendant in descendants(pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &descendant.to_string()])
                .status();
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.child.wait();
    }
}

/// Every process below `pid`, read from /proc, deepest first.
fn descendants(pid: u32) -> Vec<u32> {
    // Each thread's children are listed under its own task.
    let children: String = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .collect::<Vec<_>>()
        .join(" ");
    let mut all = Vec::new();
    for child in children
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
    {
        all.extend(descendants(child));
        all.push(child);
    }
    all
}

/// The environment the function needs to run against the emulator as the source account.
pub fn function_env(world: &crate::World) -> Vec<(String, String)> {
    world.register();
    let mut env: Vec<(String, String)> = world
        .vars()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.extend(
        [
            ("AWS_ENDPOINT_URL", world.endpoint.as_str()),
            ("AWS_REGION", crate::REGION),
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "source-secret"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("RUST_LOG", "info"),
            ("SYNC_TIME_MARGIN_SECONDS", "2"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env.retain(|(k, _)| k != "AWS_LAMBDA_FUNCTION_NAME");
    env
}
