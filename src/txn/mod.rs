//! Producer ids for idempotent producers (and, later, the transaction coordinator).
//!
//! May call: the metadata service, to reserve blocks of ids durably. Must never touch
//! partition logs: per-partition sequence state lives with the log (`log::producer_state`).

mod producer_ids;

pub(crate) use producer_ids::ProducerIdManager;
