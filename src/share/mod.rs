//! Share groups (KIP-932, Kafka 4.x "queues"): many consumers read one partition, each record
//! is acquired by one of them under a time-limited lock and acknowledged on its own (accept,
//! release, reject), and is redelivered until accepted or out of delivery attempts.
//!
//! Owns: the pure cores — a share-partition's delivery state (`partition`), a share group's
//! membership (`membership`) with its assignor (`assignor`), the share sessions of ShareFetch
//! and ShareAcknowledge (`sessions`) — and the thin shell that holds them for the broker
//! (`service`). The API layer (`api::share_groups`, `api::share_fetch`) decodes requests, reads
//! the partition logs and calls the shell.
//!
//! May call: the kafka-protocol crate's types. The cores must never do I/O, read a clock or
//! block: time comes in with each call, so the seeded simulation (`sim`) replays any run.
//!
//! Not yet: the state lives in memory only (a restart forgets acknowledgements: Kafka keeps it
//! in `__share_group_state`); membership is held on the group's coordinator broker beside, not
//! inside, the `__consumer_offsets` shard.

pub(crate) mod assignor;
pub(crate) mod membership;
pub(crate) mod partition;
pub(crate) mod service;
pub(crate) mod sessions;
pub(crate) mod state;

#[cfg(test)]
mod sim;

pub(crate) use service::ShareService;
