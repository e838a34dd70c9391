//! Who votes: `controller.quorum.voters` (Kafka's `id@host:port,...`, the voters' controller
//! listeners) and `process.roles`; and forwarding a command to a peer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tracing::debug;

use super::commands::{Command, CommandError, Reply};
use super::network::{Connection, Request, Response, WireError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Quorum {
    voters: Vec<(i32, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum QuorumError {
    #[error("controller.quorum.voters: '{0}' is not id@host:port")]
    BadVoter(String),
    #[error("controller.quorum.voters names node {0} twice")]
    Duplicate(i32),
    #[error("process.roles includes controller, but node {0} is not in controller.quorum.voters")]
    NotAVoter(i32),
    #[error("node {0} is in controller.quorum.voters, but process.roles does not include controller")]
    UnexpectedVoter(i32),
}

impl Quorum {
    /// Parses the voters; empty means a quorum of this node alone (it then needs no address:
    /// nobody else ever connects to it).
    pub(crate) fn parse(voters: &str, node_id: i32, is_controller: bool) -> Result<Quorum, QuorumError> {
        let mut parsed: Vec<(i32, String)> = Vec::new();
        for v in voters.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            let bad = || QuorumError::BadVoter(v.to_string());
            let (id, addr) = v.split_once('@').ok_or_else(bad)?;
            let id: i32 = id.trim().parse().map_err(|_| bad())?;
            let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad());
            }
            if parsed.iter().any(|(i, _)| *i == id) {
                return Err(QuorumError::Duplicate(id));
            }
            parsed.push((id, addr.to_string()));
        }
        if parsed.is_empty() {
            parsed.push((node_id, String::new()));
        }
        let listed = parsed.iter().any(|(i, _)| *i == node_id);
        match (is_controller, listed) {
            (true, false) => Err(QuorumError::NotAVoter(node_id)),
            (false, true) => Err(QuorumError::UnexpectedVoter(node_id)),
            _ => Ok(Quorum { voters: parsed }),
        }
    }

    pub(crate) fn voters(&self) -> &[(i32, String)] {
        &self.voters
    }

    pub(crate) fn is_voter(&self, id: i32) -> bool {
        self.voters.iter().any(|(i, _)| *i == id)
    }

    /// A quorum of one with nobody to talk to: no controller listener is needed.
    pub(crate) fn is_standalone(&self) -> bool {
        self.voters.len() == 1 && self.voters[0].1.is_empty()
    }
}

/// Idle connections to peers for forwarded commands, so a broker's heartbeat every couple of
/// seconds reuses a socket instead of opening one; concurrent commands each take their own.
#[derive(Debug, Default)]
pub(super) struct Pool {
    idle: Mutex<HashMap<String, Vec<Connection>>>,
}

/// Idle connections kept per peer.
const IDLE_PER_PEER: usize = 4;

impl Pool {
    /// Sends a command to the node at `addr`. A node that cannot be reached counts as "not the
    /// controller": the caller looks again.
    pub(super) async fn forward(
        &self,
        addr: &str,
        command: &Command,
        timeout: Duration,
    ) -> Result<Reply, CommandError> {
        let request = Request::Command(command.clone());
        let taken = self.idle.lock().expect("pool lock").get_mut(addr).and_then(Vec::pop);
        let pooled = taken.is_some();
        let mut conn = taken.unwrap_or_else(|| Connection::new(addr.to_string()));
        let mut answer = conn.call(&request, timeout).await;
        if pooled && matches!(answer, Err(WireError::Io(_))) {
            // The peer closed an idle connection (it restarted): once more on a fresh one.
            answer = conn.call(&request, timeout).await;
        }
        if answer.is_ok() {
            let mut idle = self.idle.lock().expect("pool lock");
            let conns = idle.entry(addr.to_string()).or_default();
            if conns.len() < IDLE_PER_PEER {
                conns.push(conn);
            }
        }
        match answer {
            Ok(Response::Command(r)) => r,
            Ok(_) => Err(CommandError::NotController),
            Err(e) => {
                debug!(addr, error = %e, "controller not reachable");
                Err(CommandError::NotController)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_parse_as_kafka_writes_them() {
        let q = Quorum::parse("1@127.0.0.1:19093, 2@127.0.0.1:29093,3@localhost:39093", 2, true).unwrap();
        assert_eq!(q.voters().len(), 3);
        assert_eq!(q.voters()[2], (3, "localhost:39093".to_string()));
        assert!(q.is_voter(3) && !q.is_voter(4) && !q.is_standalone());
    }

    #[test]
    fn empty_voters_is_a_quorum_of_this_node() {
        let q = Quorum::parse("", 7, true).unwrap();
        assert!(q.is_standalone() && q.is_voter(7));
    }

    #[test]
    fn bad_voter_lists_are_refused_with_the_reason() {
        assert!(matches!(
            Quorum::parse("1@host", 1, true),
            Err(QuorumError::BadVoter(_))
        ));
        assert!(matches!(Quorum::parse("x@h:1", 1, true), Err(QuorumError::BadVoter(_))));
        assert_eq!(Quorum::parse("1@h:1,1@h:2", 1, true), Err(QuorumError::Duplicate(1)));
        assert_eq!(Quorum::parse("1@h:1", 2, true), Err(QuorumError::NotAVoter(2)));
        assert_eq!(Quorum::parse("1@h:1", 1, false), Err(QuorumError::UnexpectedVoter(1)));
        // A broker-only node follows the voters without being one.
        assert!(Quorum::parse("1@h:1", 4, false).is_ok());
    }
}
