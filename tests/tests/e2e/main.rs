//! End-to-end tests: the real handler against moto server, two accounts in one emulator.
//! Results are checked with plain SDK calls, never through the code under test.

mod archived;
mod audit;
mod checksums;
mod cli;
mod common;
mod copy_object;
mod deletes;
mod destinations;
mod hostile;
mod inventory;
mod lambda_runtime;
mod memory;
mod multipart;
mod native;
mod object_lock;
mod races;
mod reliability;
mod report;
mod rules;
mod security;
mod server_side;
mod shared_destination;
mod soak;
mod storage_class;
mod sync;
mod tags;
mod templates;
mod triggers;
mod unversioned;
mod verify;
