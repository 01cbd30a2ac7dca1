//! A fault-injecting HTTP/1.1 proxy on loopback, between the code under test and the
//! emulator. Per request it may answer 503 SlowDown, 500 InternalError or a KMS
//! ThrottlingException itself (nothing reaches the emulator), add latency, or forward the
//! request and then reset the connection before the response, reset it halfway through the
//! body, or cut the body short (the emulator has acted; the client cannot know).
//!
//! Decisions are a pure function of the seed, the request's method, path, query and
//! operation, and how many times that same request was seen before: a failing run replays
//! with the same seed, and a retry draws afresh.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy can do to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// 503 SlowDown, answered by the proxy.
    SlowDown,
    /// 500 InternalError, answered by the proxy.
    InternalError,
    /// 403 AccessDenied, answered by the proxy: what S3 answers a request the caller's
    /// policies do not allow.
    AccessDenied,
    /// 400 ThrottlingException for a KMS (JSON) request, answered by the proxy.
    KmsThrottling,
    /// KMS throttling as S3 reports it on an SSE-KMS read or write: 503 SlowDown, "Please
    /// reduce your request rate for operations involving AWS KMS", answered by the proxy.
    S3KmsThrottling,
    /// Forwarded, then the connection is reset before any response byte.
    ResetBeforeResponse,
    /// Forwarded; the head and half the body are sent, then the connection is reset.
    ResetMidBody,
    /// Forwarded; the head and half the body are sent, then the connection is closed.
    TruncatedBody,
    /// Forwarded; the whole answer is sent with one byte of its body changed.
    CorruptBody,
    /// Forwarded after a delay.
    Latency(Duration),
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::SlowDown => "503 SlowDown",
            Fault::InternalError => "500 InternalError",
            Fault::AccessDenied => "403 AccessDenied",
            Fault::KmsThrottling => "KMS throttling",
            Fault::S3KmsThrottling => "KMS throttling through S3",
            Fault::ResetBeforeResponse => "reset before response",
            Fault::ResetMidBody => "reset mid-body",
            Fault::TruncatedBody => "truncated body",
            Fault::CorruptBody => "corrupt body",
            Fault::Latency(_) => "latency",
        }
    }
}

/// A fault applied at `rate` (0..1) to requests whose description matches `pattern`
/// (`"PUT /bucket/key?x-id=UploadPart&partNumber=1&uploadId=…"`, with
/// ` target=TrentService.Decrypt` or ` action=AssumeRole` appended for JSON and
/// query-protocol services). A pattern is substrings separated by `*` that must appear in
/// that order (`"POST *uploadId="`). The first rule that fires wins.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: String,
    pub rate: f64,
    pub fault: Fault,
    /// Only the first time a request is seen (its retries pass).
    pub first_only: bool,
}

impl Rule {
    pub fn new(pattern: &str, rate: f64, fault: Fault) -> Self {
        Self {
            pattern: pattern.to_owned(),
            rate,
            fault,
            first_only: false,
        }
    }

    /// Applies to the first occurrence of each matching request only.
    pub fn first_only(mut self) -> Self {
        self.first_only = true;
        self
    }

    fn matches(&self, description: &str) -> bool {
        let mut rest = description;
        for part in self.pattern.split('*') {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        true
    }
}

struct Shared {
    upstream: SocketAddr,
    rules: Vec<Rule>,
    seed: u64,
    enabled: AtomicBool,
    requests: AtomicU64,
    seen: Mutex<HashMap<String, u64>>,
    injected: Mutex<BTreeMap<&'static str, u64>>,
    /// Every fault injected: the request it hit, which time that request was seen, and what.
    log: Mutex<Vec<(String, u64, &'static str)>>,
    repeats: AtomicU64,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    pub port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (an `http://host:port` endpoint) on a free loopback port.
    pub async fn start(upstream: &str, rules: Vec<Rule>, seed: u64) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("upstream host:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream,
            rules,
            seed,
            enabled: AtomicBool::new(true),
            requests: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
            injected: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
            repeats: AtomicU64::new(0),
        });
        let accept = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = accept.clone();
                tokio::spawn(async move {
                    let _ = serve(client, shared).await;
                });
            }
        });
        Self { port, shared, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Turns fault injection on or off (requests are forwarded either way).
    pub fn set_enabled(&self, on: bool) {
        self.shared.enabled.store(on, Ordering::SeqCst);
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.shared.injected.lock().unwrap().clone()
    }

    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests so far whose description matches `pattern` (as in [`Rule`]).
    pub fn count(&self, pattern: &str) -> u64 {
        let rule = Rule::new(pattern, 1.0, Fault::SlowDown);
        self.shared
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(description, _)| rule.matches(description))
            .map(|(_, n)| n)
            .sum()
    }

    /// The faults injected into requests whose description matches `pattern`: the request,
    /// which time it was seen, and the fault (a failing test's account of what happened).
    pub fn faults_on(&self, pattern: &str) -> Vec<(String, u64, &'static str)> {
        let rule = Rule::new(pattern, 1.0, Fault::SlowDown);
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|(description, _, _)| rule.matches(description))
            .cloned()
            .collect()
    }

    /// Requests that repeated one seen before: the clients' retries (and re-deliveries).
    pub fn repeats(&self) -> u64 {
        self.shared.repeats.load(Ordering::SeqCst)
    }
}

/// SplitMix64 over the seed and an FNV-1a hash of the request: a uniform draw in [0, 1).
fn draw(seed: u64, description: &str, occurrence: u64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in description.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ h ^ occurrence.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn decide(shared: &Shared, description: &str) -> Option<Fault> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let occurrence = {
        let mut seen = shared.seen.lock().unwrap();
        let n = seen.entry(description.to_owned()).or_insert(0);
        *n += 1;
        *n
    };
    if occurrence > 1 {
        shared.repeats.fetch_add(1, Ordering::SeqCst);
    }
    if !shared.enabled.load(Ordering::SeqCst) {
        return None;
    }
    let fault = shared.rules.iter().enumerate().find_map(|(i, rule)| {
        (rule.matches(description)
            && (!rule.first_only || occurrence == 1)
            && draw(shared.seed.wrapping_add(i as u64), description, occurrence) < rule.rate)
            .then_some(rule.fault)
    })?;
    *shared
        .injected
        .lock()
        .unwrap()
        .entry(fault.name())
        .or_insert(0) += 1;
    shared
        .log
        .lock()
        .unwrap()
        .push((description.to_owned(), occurrence, fault.name()));
    Some(fault)
}

/// One request read off a connection.
struct Request {
    head: Vec<u8>,
    body: Vec<u8>,
    description: String,
    json_protocol: bool,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut head = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        if reader.read(&mut byte).await? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
        if head.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head too large"));
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await?;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    let mut parts = request_line.split(' ');
    let mut description = format!(
        "{} {}",
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default()
    );
    if let Some(target) = header("x-amz-target") {
        description.push_str(&format!(" target={target}"));
    }
    if header("content-type").is_some_and(|v| v.starts_with("application/x-www-form-urlencoded")) {
        let form = String::from_utf8_lossy(&body);
        if let Some(action) = form.split('&').find_map(|p| p.strip_prefix("Action=")) {
            description.push_str(&format!(" action={action}"));
        }
    }
    // Forwarded on a fresh upstream connection that closes after the response.
    let mut forwarded = format!("{request_line}\r\n");
    for (k, v) in &headers {
        if k != "connection" && k != "expect" {
            forwarded.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    forwarded.push_str("connection: close\r\n\r\n");
    Ok(Some(Request {
        head: forwarded.into_bytes(),
        body,
        description,
        json_protocol: header("x-amz-target").is_some(),
    }))
}

fn error_response(status: &str, code: &str, json: bool) -> Vec<u8> {
    error_response_saying(status, code, "injected by the test proxy", json)
}

fn error_response_saying(status: &str, code: &str, message: &str, json: bool) -> Vec<u8> {
    let (body, content_type) = if json {
        (
            format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}"),
            "application/x-amz-json-1.1",
        )
    } else {
        (
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault</RequestId></Error>"),
            "application/xml",
        )
    };
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The upstream's whole response, with a content-length when it had none (it closed instead).
async fn forward(shared: &Shared, request: &Request) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut upstream = TcpStream::connect(shared.upstream).await?;
    upstream.write_all(&request.head).await?;
    upstream.write_all(&request.body).await?;
    let mut response = Vec::new();
    upstream.read_to_end(&mut response).await?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no response head"))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response[split + 4..].to_vec();
    let mut out = String::new();
    let mut has_length = false;
    for (i, line) in head.split("\r\n").enumerate() {
        let lower = line.to_ascii_lowercase();
        if i > 0 && lower.starts_with("connection:") {
            continue;
        }
        has_length |=
            lower.starts_with("content-length:") || lower.starts_with("transfer-encoding:");
        out.push_str(line);
        out.push_str("\r\n");
    }
    if !has_length {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    Ok((out.into_bytes(), body))
}

async fn serve(client: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client);
    while let Some(request) = read_request(&mut reader).await? {
        let fault = decide(&shared, &request.description);
        let synthetic = match fault {
            Some(Fault::SlowDown) => Some(error_response("503 Slow Down", "SlowDown", false)),
            Some(Fault::InternalError) => Some(error_response(
                "500 Internal Server Error",
                "InternalError",
                request.json_protocol,
            )),
            Some(Fault::AccessDenied) => Some(error_response_saying(
                "403 Forbidden",
                "AccessDenied",
                "Access Denied",
                request.json_protocol,
            )),
            Some(Fault::KmsThrottling) => Some(error_response(
                "400 Bad Request",
                "ThrottlingException",
                true,
            )),
            Some(Fault::S3KmsThrottling) => Some(error_response_saying(
                "503 Slow Down",
                "SlowDown",
                "Please reduce your request rate for operations involving AWS KMS.",
                false,
            )),
            _ => None,
        };
        if let Some(response) = synthetic {
            reader.get_mut().write_all(&response).await?;
            continue;
        }
        if let Some(Fault::Latency(d)) = fault {
            tokio::time::sleep(d).await;
        }
        let (head, body) = match forward(&shared, &request).await {
            Ok(response) => response,
            Err(e) => {
                // Not a fault of ours, but the client sees one: logged so a test can tell.
                let mut log = shared.log.lock().unwrap();
                log.push((request.description.clone(), 0, "upstream failed"));
                return Err(e);
            }
        };
        let client = reader.get_mut();
        match fault {
            Some(Fault::ResetBeforeResponse) => {
                client.set_zero_linger()?;
                return Ok(());
            }
            Some(Fault::ResetMidBody) | Some(Fault::TruncatedBody) => {
                client.write_all(&head).await?;
                client.write_all(&body[..body.len() / 2]).await?;
                client.flush().await?;
                if fault == Some(Fault::ResetMidBody) {
                    client.set_zero_linger()?;
                } else {
                    client.shutdown().await?;
                }
                return Ok(());
            }
            Some(Fault::CorruptBody) if !body.is_empty() => {
                let mut body = body;
                let at = body.len() / 2;
                body[at] ^= 0xff;
                client.write_all(&head).await?;
                client.write_all(&body).await?;
            }
            _ => {
                client.write_all(&head).await?;
                client.write_all(&body).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_enough_and_repeatable() {
        let n = 20_000;
        let hits = (0..n)
            .filter(|i| draw(7, &format!("GET /b/k{i}"), 1) < 0.1)
            .count();
        assert!((1_700..2_300).contains(&hits), "{hits}");
        assert_eq!(draw(7, "PUT /b/k", 2), draw(7, "PUT /b/k", 2));
        assert_ne!(draw(7, "PUT /b/k", 1), draw(7, "PUT /b/k", 2));
        assert_ne!(draw(7, "PUT /b/k", 1), draw(8, "PUT /b/k", 1));
    }

    #[test]
    fn patterns_match_substrings_in_order() {
        let rule = Rule::new("POST *uploadId=", 1.0, Fault::SlowDown);
        assert!(rule.matches("POST /b/k?uploadId=1"));
        assert!(!rule.matches("POST /b/k?uploads"));
        assert!(!rule.matches("PUT /b/k?partNumber=1&uploadId=1"));
        assert!(Rule::new("", 1.0, Fault::SlowDown).matches("GET /"));
    }
}
