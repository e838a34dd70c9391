//! When the active controller last heard from each replica of the metadata log: KIP-595's
//! LastFetchTimestamp and LastCaughtUpTimestamp, which DescribeQuorum reports and
//! `kafka-metadata-quorum describe` prints. openraft's metrics track how far each replica got,
//! not when, so the leader's RPC clients record it: a replica that answers an append (a
//! heartbeat included) has fetched; one that thereby holds everything the leader had when the
//! append was sent is caught up (Kafka's rule: a fetch from at least the leader's end).
//!
//! Written by the network clients, read by `commands::quorum_state`; no I/O.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tokio::sync::watch;

use super::TypeConfig;

type Metrics = openraft::RaftMetrics<u64, openraft::BasicNode>;

/// A replica's last fetch and last caught-up time, epoch milliseconds (-1: not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Contact {
    pub(crate) last_fetch_ms: i64,
    pub(crate) last_caught_up_ms: i64,
}

impl Default for Contact {
    fn default() -> Self {
        Contact {
            last_fetch_ms: -1,
            last_caught_up_ms: -1,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Contacts {
    /// This node's Raft metrics, for the leader's log end when an append is sent (set once
    /// Raft is up; until then nothing is sent).
    metrics: OnceLock<watch::Receiver<Metrics>>,
    by_node: Mutex<HashMap<u64, Contact>>,
}

impl Contacts {
    pub(crate) fn watch(&self, metrics: watch::Receiver<Metrics>) {
        // Set once, at start; a second call would be a bug and changes nothing.
        let _ = self.metrics.set(metrics);
    }

    /// One past the last entry of this node's log (0 when empty or not yet known).
    pub(crate) fn log_end(&self) -> u64 {
        self.metrics
            .get()
            .and_then(|m| m.borrow().last_log_index)
            .map_or(0, |i| i + 1)
    }

    /// `node` answered an append at `now_ms`, holding the log up to (not including) `held`;
    /// `log_end` is this node's log end when the append was sent.
    pub(crate) fn answered(&self, node: u64, held: Option<u64>, log_end: u64, now_ms: i64) {
        let mut by_node = self.by_node.lock().expect("contacts lock");
        let c = by_node.entry(node).or_default();
        c.last_fetch_ms = c.last_fetch_ms.max(now_ms);
        if held.is_some_and(|h| h >= log_end) {
            c.last_caught_up_ms = c.last_caught_up_ms.max(now_ms);
        }
    }

    /// What is known of `node` (-1s when it has never answered this node).
    pub(crate) fn of(&self, node: u64) -> Contact {
        let by_node = self.by_node.lock().expect("contacts lock");
        by_node.get(&node).copied().unwrap_or_default()
    }
}

/// One past the last entry an append carries (its previous entry's, for a heartbeat).
pub(crate) fn sent_end(request: &openraft::raft::AppendEntriesRequest<TypeConfig>) -> u64 {
    let last = request.entries.last().map(|e| e.log_id).or(request.prev_log_id);
    last.map_or(0, |l| l.index + 1)
}

/// How far an append's answer says the replica's log matches the leader's: one past the last
/// entry it now holds (`sent_end` when it took all), None when it refused the append.
pub(crate) fn held_after(sent_end: u64, response: &openraft::raft::AppendEntriesResponse<u64>) -> Option<u64> {
    use openraft::raft::AppendEntriesResponse as R;
    match response {
        R::Success => Some(sent_end),
        R::PartialSuccess(matching) => Some(matching.map_or(0, |l| l.index + 1)),
        R::Conflict | R::HigherVote(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_is_caught_up_only_when_it_reached_the_leaders_end() {
        let contacts = Contacts::default();
        assert_eq!(contacts.of(2), Contact::default());
        contacts.answered(2, Some(5), 10, 1_000);
        assert_eq!(
            contacts.of(2),
            Contact {
                last_fetch_ms: 1_000,
                last_caught_up_ms: -1
            }
        );
        contacts.answered(2, Some(10), 10, 2_000);
        contacts.answered(2, None, 12, 3_000);
        assert_eq!(
            contacts.of(2),
            Contact {
                last_fetch_ms: 3_000,
                last_caught_up_ms: 2_000
            }
        );
    }
}
