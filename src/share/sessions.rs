//! Share sessions (KIP-932's ShareSessionCache): one per (group, member) on a broker, opened by
//! a ShareFetch with epoch 0 that names its partitions, advanced by one per ShareFetch or
//! ShareAcknowledge (the client sends the epoch it expects), changed incrementally (added
//! partitions, forgotten ones), closed by epoch -1. At most `group.share.max.share.sessions`.
//!
//! Pure: no clock, no I/O. The shell releases a closed session's acquired records.

use std::collections::{BTreeSet, HashMap};

use kafka_protocol::ResponseError;
use uuid::Uuid;

/// The epoch that opens a session and the one that closes it.
pub(crate) const OPEN_EPOCH: i32 = 0;
pub(crate) const FINAL_EPOCH: i32 = -1;
/// Most partitions one session may name: more than any topic set a client subscribes to.
pub(crate) const MAX_SESSION_PARTITIONS: usize = 100_000;

/// A share-partition as a session names it: (topic id, partition).
pub(crate) type SessionPartition = (Uuid, i32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("no share session for this member")]
    NotFound,
    #[error("share session epoch {received} is not the expected {expected}")]
    InvalidEpoch { received: i32, expected: i32 },
    #[error("the limit of {0} share sessions is reached")]
    LimitReached(usize),
    #[error("a share session may name at most {MAX_SESSION_PARTITIONS} partitions")]
    TooManyPartitions,
}

impl SessionError {
    pub(crate) fn kafka_error(&self) -> ResponseError {
        match self {
            SessionError::NotFound => ResponseError::ShareSessionNotFound,
            SessionError::InvalidEpoch { .. } => ResponseError::InvalidShareSessionEpoch,
            SessionError::LimitReached(_) => ResponseError::ShareSessionLimitReached,
            SessionError::TooManyPartitions => ResponseError::InvalidRequest,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    pub(crate) partitions: BTreeSet<SessionPartition>,
}

/// Key: (group id, member id).
type Key = (String, String);

/// Every share session on this broker.
#[derive(Debug, Default)]
pub(crate) struct SessionCache {
    sessions: HashMap<Key, Session>,
}

/// What a request did to its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Opened (replacing any earlier session of the member, whose records must be released).
    Opened { replaced: bool },
    /// Moved on by one epoch.
    Advanced,
    /// Closed: its records must be released.
    Closed,
}

impl SessionCache {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn get(&self, group: &str, member: &str) -> Option<&Session> {
        self.sessions.get(&(group.to_string(), member.to_string()))
    }

    /// Applies a request's epoch with the partitions it adds and forgets. Kafka's rules:
    /// 0 opens, -1 closes (after the request's acknowledgements), anything else must be the
    /// expected epoch. `max_sessions` bounds the cache.
    pub(crate) fn apply(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        added: &[SessionPartition],
        forgotten: &[SessionPartition],
        max_sessions: usize,
    ) -> Result<Outcome, SessionError> {
        let key = (group.to_string(), member.to_string());
        match epoch {
            OPEN_EPOCH => {
                let replaced = self.sessions.contains_key(&key);
                if !replaced && self.sessions.len() >= max_sessions {
                    return Err(SessionError::LimitReached(max_sessions));
                }
                let partitions: BTreeSet<SessionPartition> = added.iter().copied().collect();
                if partitions.len() > MAX_SESSION_PARTITIONS {
                    return Err(SessionError::TooManyPartitions);
                }
                self.sessions.insert(
                    key,
                    Session {
                        next_epoch: 1,
                        partitions,
                    },
                );
                Ok(Outcome::Opened { replaced })
            }
            FINAL_EPOCH => match self.sessions.remove(&key) {
                Some(_) => Ok(Outcome::Closed),
                None => Err(SessionError::NotFound),
            },
            received => {
                let session = self.sessions.get_mut(&key).ok_or(SessionError::NotFound)?;
                if received != session.next_epoch {
                    return Err(SessionError::InvalidEpoch {
                        received,
                        expected: session.next_epoch,
                    });
                }
                for p in forgotten {
                    session.partitions.remove(p);
                }
                session.partitions.extend(added.iter().copied());
                if session.partitions.len() > MAX_SESSION_PARTITIONS {
                    return Err(SessionError::TooManyPartitions);
                }
                // Kafka's epochs wrap to 1, never to 0 or -1, which mean open and close.
                session.next_epoch = if session.next_epoch == i32::MAX {
                    1
                } else {
                    session.next_epoch + 1
                };
                Ok(Outcome::Advanced)
            }
        }
    }

    /// Drops a member's session (it left the group or expired).
    pub(crate) fn remove(&mut self, group: &str, member: &str) -> bool {
        self.sessions.remove(&(group.to_string(), member.to_string())).is_some()
    }

    /// Drops every session of a group (the group was deleted).
    pub(crate) fn remove_group(&mut self, group: &str) {
        self.sessions.retain(|(g, _), _| g != group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> SessionPartition {
        (Uuid::from_u128(7), p)
    }

    #[test]
    fn session_opens_advances_and_closes() {
        let mut c = SessionCache::default();
        assert_eq!(
            c.apply("g", "a", 0, &[tp(0)], &[], 10),
            Ok(Outcome::Opened { replaced: false })
        );
        assert_eq!(c.apply("g", "a", 1, &[tp(1)], &[], 10), Ok(Outcome::Advanced));
        assert_eq!(c.get("g", "a").unwrap().partitions.len(), 2);
        assert_eq!(c.apply("g", "a", 2, &[], &[tp(0)], 10), Ok(Outcome::Advanced));
        assert_eq!(c.get("g", "a").unwrap().partitions, BTreeSet::from([tp(1)]));
        assert_eq!(c.apply("g", "a", -1, &[], &[], 10), Ok(Outcome::Closed));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn wrong_epoch_and_missing_session_are_refused() {
        let mut c = SessionCache::default();
        let e = c.apply("g", "a", 3, &[], &[], 10).unwrap_err();
        assert_eq!(e.kafka_error(), ResponseError::ShareSessionNotFound);
        c.apply("g", "a", 0, &[tp(0)], &[], 10).unwrap();
        let e = c.apply("g", "a", 2, &[], &[], 10).unwrap_err();
        assert_eq!(e.kafka_error(), ResponseError::InvalidShareSessionEpoch);
        assert_eq!(
            c.apply("g", "a", 1, &[], &[], 10),
            Ok(Outcome::Advanced),
            "a refused epoch changes nothing"
        );
    }

    #[test]
    fn sessions_are_bounded() {
        let mut c = SessionCache::default();
        c.apply("g", "a", 0, &[], &[], 1).unwrap();
        let e = c.apply("g", "b", 0, &[], &[], 1).unwrap_err();
        assert_eq!(e.kafka_error(), ResponseError::ShareSessionLimitReached);
        assert_eq!(
            c.apply("g", "a", 0, &[], &[], 1),
            Ok(Outcome::Opened { replaced: true })
        );
    }
}
