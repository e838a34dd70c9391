//! The share coordinator (KIP-932's persister): the durable state of every share-partition, in
//! `__share_group_state`, one shard per partition of that topic this broker leads, on the
//! shared coordinator runtime (`coordinator::runtime`) as `group` and `txn` are.
//!
//! `records` is the codec of Kafka's ShareSnapshot/ShareUpdate records; `shard` the pure core
//! (read, write, delete a share-partition's state; a write is answered once committed by the
//! ISR) and its glue to the runtime. The core must never do I/O or read a clock.

pub(crate) mod records;
pub(crate) mod shard;

/// Kafka's name for the topic that holds share-partition state.
pub(crate) const SHARE_STATE_TOPIC: &str = "__share_group_state";
