//! The group coordinator's pure core: Kafka's classic consumer group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, static membership, KIP-394 member ids) and the committed
//! offsets, with the records of `__consumer_offsets` in Kafka's own byte layout.
//!
//! Shape (after openraft's engine): one [`coordinator::GroupCoordinatorState`] per
//! `__consumer_offsets` partition this broker leads; [`coordinator::handle`] applies an
//! [`api::Event`] at a given time and returns the [`api::Action`]s for the async shell to run:
//! respond, append records and report back (`Event::Persisted`), schedule or cancel timers
//! (reported back as `Event::TimerFired`). [`replay::load`] rebuilds a partition's state from its
//! records; [`replay::unload`] lets it go. ListGroups, DescribeGroups and OffsetFetch are
//! read-only methods of the state. A group's shard is partition `partition_for(group)` of
//! `__consumer_offsets` (`coordinator::partition_for`).
//!
//! May call: nothing but its own modules and the kafka-protocol crate's types. Must never do
//! I/O, read a clock, draw randomness or spawn anything: time comes in with each event, member
//! ids come from a seeded generator, so every run is reproducible. [`runtime`] stands the core
//! on the shared coordinator runtime (`coordinator::runtime`), which does the I/O.

// The API surface, by module: `api` (events, actions, requests, responses), `config`,
// `coordinator` (`GroupCoordinatorState`, `handle`), `replay` (`load`, `unload`), `query`
// (ListGroups, DescribeGroups, OffsetFetch views), `records` (the codec), `state` (the group).
pub(crate) mod api;
pub(crate) mod config;
pub(crate) mod consumer;
pub(crate) mod coordinator;
mod membership;
mod offsets;
pub(crate) mod query;
pub(crate) mod records;
pub(crate) mod replay;
pub(crate) mod runtime;
pub(crate) mod state;

#[cfg(test)]
mod tests;

/// Kafka's name for the topic that holds group metadata and committed offsets.
pub(crate) const OFFSETS_TOPIC: &str = "__consumer_offsets";
