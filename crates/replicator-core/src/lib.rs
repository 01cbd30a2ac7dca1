//! The engine of s3-fallback-replicator, shared by the Lambda functions and the CLI.
//!
//! One S3 object goes through it like this:
//!
//! ```text
//! Lambda event ──event::decode──▶ ObjectRequest ──Replicator::replicate──▶ Outcome
//!                                   (plan::decide is pure; copy/multipart carry it out)
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use replicator_core::{Clients, Config, ObjectRequest, Replicator};
//! let config = Config::from_env()?;
//! let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let replicator = Replicator::new(config.clone(), Clients::new(&sdk, &config).await);
//! let outcome = replicator
//!     .replicate(&ObjectRequest::created(config.source_bucket.clone(), "reports/2024.csv"))
//!     .await?;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```
//!
//! The crate has no Lambda runtime dependency: a CLI or a test drives it directly.

pub mod clients;
pub mod config;
pub mod copy;
pub mod error;
pub mod event;
#[doc(hidden)]
pub mod fuzz;
pub mod key;
pub mod metrics;
mod multipart;
pub mod permissions;
pub mod plan;
pub mod request;
pub mod state;
pub mod sync;

pub use clients::Clients;
pub use config::{Config, ConfigError};
pub use copy::Replicator;
pub use error::ReplicationError;
pub use request::{ChangeKind, Listed, Method, ObjectRequest, Outcome, SkipReason};
