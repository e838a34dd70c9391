//! Transactions (KIP-98, KIP-890): producer ids, the transaction coordinator, and the markers
//! partition leaders write.
//!
//! The coordinator is a pure core per `__transaction_state` partition, shaped like `group`:
//! [`coordinator::handle`] applies an [`api::Event`] (InitProducerId, AddPartitionsToTxn,
//! EndTxn, markers written, a sweep's timer, an append done) at a given time and returns the
//! [`api::Action`]s for the shell — respond, append a record, schedule a timer, send a
//! transaction's markers. [`replay::load`] rebuilds a partition's state from its records
//! (Kafka's `TransactionLogKey`/`TransactionLogValue`, [`records`]); DescribeTransactions,
//! ListTransactions and the leaders' verification are read-only methods of the state
//! ([`query`]). The core does no I/O, reads no clock and draws no randomness; even the
//! producer ids it may hand out come with the request.
//!
//! The shell: [`runtime`] stands the core on the shared coordinator runtime
//! (`coordinator::runtime`), [`marker_sender`] writes the markers a core asks for through the
//! partitions' leaders (this broker's own through [`marker_writer`], others' with
//! WriteTxnMarkers over `peer`) and reports back; [`marker_writer`] is also what serves
//! WriteTxnMarkers; [`verification`] is a partition leader's question to a coordinator before
//! a producer's first transactional batch there (KIP-890 part 1). [`producer_ids`] reserves producer ids in blocks through the controller.
//!
//! May call: `coordinator`, `replica` (markers), `metadata` (leaders), `peer`, the controller
//! (producer id blocks). Must never touch a partition log but through `replica`:
//! per-partition sequence and transaction state lives with the log (`log::producer_state`,
//! `log::producer_txns`).

pub(crate) mod api;
pub(crate) mod coordinator;
pub(crate) mod marker_sender;
pub(crate) mod marker_writer;
mod producer_ids;
pub(crate) mod query;
pub(crate) mod records;
pub(crate) mod replay;
pub(crate) mod runtime;
mod state;
pub(crate) mod verification;

#[cfg(test)]
mod tests;

pub(crate) use producer_ids::ProducerIdManager;

/// Kafka's name for the topic that holds the transaction coordinators' state.
pub(crate) const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
