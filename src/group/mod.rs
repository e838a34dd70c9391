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
//! read-only methods of the state.
//!
//! May call: nothing but its own modules and the kafka-protocol crate's types. Must never do
//! I/O, read a clock, draw randomness or spawn anything: time comes in with each event, member
//! ids come from a seeded generator, so every run is reproducible. The one exception is
//! [`runtime`], the thin async shell that runs the core's actions against the replica layer.

// The API surface, by module: `api` (events, actions, requests, responses), `config`,
// `coordinator` (`GroupCoordinatorState`, `handle`), `replay` (`load`, `unload`), `query`
// (ListGroups, DescribeGroups, OffsetFetch views), `records` (the codec), `state` (the group).
pub(crate) mod api;
pub(crate) mod config;
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

/// The `__consumer_offsets` partition of a group, as Kafka computes it:
/// `Utils.abs(groupId.hashCode()) % partitions`, with Java's `String.hashCode` over UTF-16 code
/// units and `Utils.abs(Integer.MIN_VALUE) == 0`.
pub(crate) fn partition_for(group_id: &str, partitions: i32) -> i32 {
    debug_assert!(partitions > 0, "__consumer_offsets must have partitions");
    if partitions <= 0 {
        return 0;
    }
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 units, wrapping.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}
