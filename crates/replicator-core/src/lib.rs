//! The engine of s3-fallback-replicator, shared by the Lambda functions and the CLI.
//!
//! One S3 object goes through it like this:
//!
//! ```text
//!  Lambda event ──event::decode──▶ ObjectRequest            (request.rs)
//!                                      │
//!                        replicate::Replicator::replicate
//!                                      │
//!        facts: HEAD replica, read source, source order       (replicate/facts.rs → facts.rs)
//!                                      │
//!        plan::decide — write or not? (pure)                  (plan.rs)
//!        plan::transfer::choose — PUT, CopyObject, parts (pure) (plan/transfer.rs)
//!                                      │
//!        execute: PUT │ CopyObject │ multipart (parts)        (replicate/{execute,multipart,parts}.rs)
//!                                      │
//!                                   Outcome                   (outcome.rs)
//!
//!  underneath: s3 (the S3 seam: one function per operation, errors classified once),
//!              state (JSON under the reserved prefix: upload manifests, sync checkpoints),
//!              budget (bytes held in memory), clock (deadlines), config, error
//! ```
//!
//! The scheduled sync ([`sync`]) merge-joins the two listings and feeds the same
//! [`Replicator`]; its fan-out sends notifications that [`event`] decodes again.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use replicator_core::{Clients, Config, ObjectRequest, Replicator};
//! let config = Config::from_env()?;
//! let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let replicator = Replicator::new(config.clone(), Clients::new(&sdk, &config).await);
//! let outcome = replicator
//!     .replicate(&ObjectRequest::created(config.source.bucket.clone(), "reports/2024.csv"))
//!     .await?;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```
//!
//! The crate has no Lambda runtime dependency: a CLI or a test drives it directly.

pub mod budget;
pub mod clock;
pub mod config;
pub mod error;
pub mod event;
pub mod facts;
pub mod fleet;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod key;
pub mod logging;
pub mod metrics;
pub mod outcome;
pub mod permissions;
pub mod plan;
pub mod replicate;
pub mod request;
pub mod rules;
pub mod s3;
pub mod state;
pub mod sync;
pub mod verify;

pub use config::{Config, ConfigError};
pub use error::ReplicationError;
pub use fleet::Fleet;
pub use outcome::{Method, Outcome, SkipReason};
pub use replicate::Replicator;
pub use request::{ChangeKind, Listed, ObjectRequest};
pub use s3::clients::Clients;
