//! Producer ids for idempotent producers and transactions, and the transaction markers a
//! partition leader writes (`marker_writer`).
//!
//! May call: the metadata service, to reserve blocks of ids durably; `replica`, to write
//! markers. Must never touch a partition log but through `replica`: per-partition sequence and
//! transaction state lives with the log (`log::producer_state`, `log::producer_txns`).

pub(crate) mod marker_writer;
mod producer_ids;

pub(crate) use producer_ids::ProducerIdManager;
