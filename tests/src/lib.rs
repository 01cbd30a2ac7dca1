//! The local two-account AWS emulator harness shared by the end-to-end tests and the demo,
//! split by role:
//!
//! - [`emulator`]: moto's server, started once per process on a free loopback port (from the
//!   project's `.venv`, made by `scripts/setup`), and what it saw on the wire;
//! - [`world`]: [`World::new`] creates, with unique names, what a real deployment has — a
//!   source account (the default credentials) with a versioned source bucket encrypted by
//!   default with its own KMS key, and a destination account (credentials from STS
//!   AssumeRole on a role ARN in account 222222222222) with a versioned destination bucket
//!   and a KMS key — and the engine, handler and CLI arguments configured for it;
//! - [`accounts`]: a three-account world (two destination accounts) for rule sets;
//! - [`inspect`]: independent checks of the results with plain SDK calls;
//! - [`faults`] and [`cargo_lambda`]: a fault-injecting proxy, and the functions under the
//!   Lambda Runtime API.

pub mod accounts;
pub mod cargo_lambda;
pub mod emulator;
pub mod faults;
pub mod inspect;
pub mod inventory;
pub mod native;
pub mod world;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use emulator::{captured_requests, emulator, start_emulator, Emulator};
pub use world::{destination_sdk, s3_client, source_sdk, World};

pub const REGION: &str = "us-east-1";
pub const SOURCE_ACCOUNT: &str = "123456789012";
pub const DESTINATION_ACCOUNT: &str = "222222222222";
pub const DESTINATION_ROLE: &str = "arn:aws:iam::222222222222:role/replicator-destination";
pub const EXTERNAL_ID: &str = "replicator-test-external-id";
/// The functions' role, by the name both templates default to.
pub const FUNCTION_ROLE: &str = "arn:aws:iam::123456789012:role/s3-fallback-replicator-functions";
/// Who the emulator says the tests' source credentials are, as `aws:PrincipalArn` has it:
/// the doctor's own principal.
pub const DOCTOR_PRINCIPAL: &str = "arn:aws:iam::123456789012:user/moto";

/// The workspace root (this crate lives in `tests/`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// The bucket name the fixtures in `events/` use; tests substitute their own.
pub const FIXTURE_BUCKET: &str = "example-source-bucket";

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes (a test's data, reproducible from its seed).
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

pub use replicator_core::key::encode_event_key as form_encode;
