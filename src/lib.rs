//! Sluice: a Kafka wire-protocol-compatible broker.
//!
//! Layers, each calling only downwards: `net` (sockets, framing) → `api` (Kafka requests, one
//! file per family) → services (`replica`, `metadata`) → `log` (the segmented storage engine).
//! `broker` wires the services together; `server` starts and stops a node. Only settings and
//! the server are public: clients talk to Sluice over the Kafka protocol, not through Rust.

mod alloc;
mod api;
mod authz;
mod broker;
mod clock;
pub mod config;
mod controller;
mod coordinator;
mod data_dirs;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod group;
mod internal_batch;
mod log;
mod metadata;
mod metrics;
mod net;
mod peer;
mod quota;
mod replica;
pub mod security;
mod server;
mod share;
#[cfg(test)]
mod testing;
mod txn;
mod wire;

pub use config::Settings;

/// Large allocations are reserved address space, committed only as written: a request that
/// declares a huge count cannot make the allocator fail and abort the broker (see `alloc`).
#[global_allocator]
static ALLOCATOR: alloc::GuardedAllocator = alloc::GuardedAllocator;
pub use server::{Server, StartError};
