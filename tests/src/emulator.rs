//! moto's server, wrapped by `tests/moto_runner.py` (which adds the S3 behaviours moto
//! lacks), started from the project's venv; and what it recorded of every request.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::workspace;

/// A running moto server.
pub struct Emulator {
    pub port: u16,
    _child: Mutex<Child>,
}

impl Emulator {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Starts a moto server for this process, once. It stops when the process exits (its stdin
/// pipe closes).
pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(start_emulator)
}

/// Starts a separate moto server owned by the caller (for tests that want a fresh one).
pub fn start_emulator() -> Emulator {
    let python = std::env::var_os("REPLICATOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} not found: run ./scripts/setup (or ./scripts/test) first, which creates the venv with the pinned moto",
        python.display()
    );
    let log = error_log();
    let mut child = Command::new(&python)
        .arg(workspace().join("tests/moto_runner.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("emulator error log"))
        .spawn()
        .expect("start moto");
    let stdout = child.stdout.take().expect("moto stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read moto port");
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("moto printed {line:?}, not a port"));
    Emulator {
        port,
        _child: Mutex::new(child),
    }
}

/// Where an emulator's errors go (tracebacks; no line per request): one file per server,
/// under `$TMPDIR/s3-fallback-replicator-emulator/`, which `.ci/run` prints from when the
/// suite fails.
fn error_log() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static STARTED: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join("s3-fallback-replicator-emulator");
    std::fs::create_dir_all(&dir).expect("emulator log directory");
    dir.join(format!(
        "{}-{}.log",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    ))
}

/// What the emulator saw of every request so far (see `tests/moto_runner.py`): method, path,
/// query, signing access key, expected-owner headers, and AssumeRole's RoleArn/ExternalId.
pub fn captured_requests(endpoint: &str) -> Vec<Value> {
    control(endpoint, "GET", "/_capture", "")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// A request to the test front's own control endpoints (not S3); the answer's body.
pub fn control(endpoint: &str, method: &str, path: &str, body: &str) -> String {
    let response = exchange(endpoint, method, path, body).expect("a control request");
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    body.to_owned()
}

/// One HTTP/1.0 exchange with the emulator's front; the whole answer.
fn exchange(endpoint: &str, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// Records a world's configuration in the emulator's request log (`POST /_world`), trying
/// again when a fault proxy in between answers for the emulator.
pub fn record_world(endpoint: &str, world: &Value) {
    let body = world.to_string();
    for _ in 0..20 {
        if let Ok(answer) = exchange(endpoint, "POST", "/_world", &body) {
            if answer.split(' ').nth(1) == Some("204") {
                return;
            }
        }
    }
    panic!("the emulator at {endpoint} did not record this world's configuration");
}
