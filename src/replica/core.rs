//! The replication core of one partition replica, as a pure state machine: events in (the
//! metadata's leader and ISR, appends, follower fetches, the leader's high watermark, ticks,
//! AlterPartition failures), actions out (a new high watermark, an ISR change to propose,
//! become leader / follower / offline). No I/O, no clock, no locks: `Partition` is the runtime
//! around it, and every rule here is unit-tested and simulated (see `tests/`).
//!
//! Kafka's ISR model, as its `Partition` implements it:
//! - The leader tracks each follower's log end (its fetch offset) and when it was last caught
//!   up. The high watermark is the smallest log end over the (maximal) ISR and the eligible
//!   followers caught up lately, and only moves forward. As in Kafka 4 (strict min ISR,
//!   KIP-966), it does not move while the ISR is smaller than the effective min ISR,
//!   `min(min.insync.replicas, replication factor)`.
//! - A follower not caught up for `replica.lag.time.max.ms` is proposed out of the ISR; one
//!   whose log end reached the high watermark and this leader's first offset is proposed in.
//!   One proposal is in flight at a time; until the controller commits it the maximal ISR
//!   (committed plus proposed) counts for the high watermark, so it never runs ahead of a
//!   replica that may already be in the ISR.
//! - A follower's high watermark is its leader's, capped at its own log end.
//!
//! Invariant (checked by `check` after every event): the high watermark never passes this
//! replica's log end. The cluster-wide ones (one leader per epoch, nothing at or below a
//! high watermark ever truncated) are checked by the simulation in `tests/simulation.rs`.

use std::collections::BTreeMap;

/// The leader and ISR of a partition as the metadata states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaderAndIsr {
    pub(crate) leader: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) partition_epoch: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The metadata changed this partition (or it is new here). `log_end` is the log's now.
    Metadata { state: LeaderAndIsr, now_ms: i64 },
    /// The log end moved: an append (as leader or follower), or a truncation.
    LogEnd { log_end: i64 },
    /// A follower fetched from `fetch_offset` (its log end). `eligible`: it is registered,
    /// unfenced and not shutting down, so it may join the ISR (KIP-841).
    FollowerFetched {
        replica: i32,
        fetch_offset: i64,
        /// Its log start offset, as its fetch reports it (-1: not sent).
        log_start_offset: i64,
        eligible: bool,
        now_ms: i64,
    },
    /// A fetch response from the leader carried its high watermark.
    LeaderHighWatermark { high_watermark: i64 },
    /// Time passes: lagging followers leave the ISR.
    Tick { now_ms: i64 },
    /// The controller refused (or never answered) the ISR proposal in flight.
    AlterPartitionFailed,
    /// The controller accepted it: the partition's state once committed.
    IsrCommitted {
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
    /// `min.insync.replicas` changed.
    MinIsr { min_isr: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// The high watermark moved (up, or for a follower to its leader's): publish it, wake the
    /// fetches and acks=all produces waiting on it.
    HighWatermark(i64),
    /// Ask the controller to make `isr` the ISR, based on this partition epoch.
    ProposeIsr {
        isr: Vec<i32>,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// This replica leads from now on, in `epoch` (which starts at the current log end).
    BecomeLeader { epoch: i32 },
    /// Fetch from `leader` in `epoch` from now on.
    BecomeFollower { leader: i32, epoch: i32 },
    /// No leader (or not a replica): stop fetching, serve nothing.
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Leader,
    Follower { leader: i32 },
    Offline,
}

/// What the leader knows of one follower.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FollowerProgress {
    /// Its log end, once it fetched in this leader epoch.
    pub(crate) log_end: Option<i64>,
    /// Its log start offset, once it fetched in this leader epoch (what DeleteRecords waits on).
    pub(crate) log_start: Option<i64>,
    pub(crate) last_caught_up_ms: i64,
    last_fetch_ms: i64,
    /// Whether its broker may be in the ISR, as of its last fetch (KIP-841).
    eligible: bool,
    /// The leader's log end at that last fetch.
    last_fetch_leader_log_end: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Proposal {
    isr: Vec<i32>,
    /// The partition epoch it was based on; a newer one in the metadata settles it.
    partition_epoch: i32,
}

#[derive(Debug, Clone)]
pub(crate) struct Core {
    node_id: i32,
    lag_max_ms: i64,
    min_isr: usize,
    role: Role,
    state: LeaderAndIsr,
    log_end: i64,
    high_watermark: i64,
    /// Leader only: the log end when it took over (the start of its epoch).
    epoch_start_offset: i64,
    followers: BTreeMap<i32, FollowerProgress>,
    proposal: Option<Proposal>,
    /// The latest time an event brought (appends carry none).
    now_ms: i64,
}

impl Core {
    /// A replica that knows its log end and its last checkpointed high watermark, and has not
    /// heard from the metadata yet.
    pub(crate) fn new(node_id: i32, lag_max_ms: i64, min_isr: usize, log_end: i64, high_watermark: i64) -> Core {
        Core {
            node_id,
            lag_max_ms,
            min_isr: min_isr.max(1),
            role: Role::Offline,
            state: LeaderAndIsr {
                leader: -1,
                leader_epoch: -1,
                partition_epoch: -1,
                replicas: Vec::new(),
                isr: Vec::new(),
            },
            log_end,
            high_watermark: high_watermark.clamp(0, log_end.max(0)),
            epoch_start_offset: log_end,
            followers: BTreeMap::new(),
            proposal: None,
            now_ms: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    pub(crate) fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub(crate) fn leader_epoch(&self) -> i32 {
        self.state.leader_epoch
    }

    /// The committed ISR.
    pub(crate) fn isr(&self) -> &[i32] {
        &self.state.isr
    }

    pub(crate) fn replicas(&self) -> &[i32] {
        &self.state.replicas
    }

    /// `min.insync.replicas` as configured: what an acks=all append checks the ISR against
    /// (Kafka's `appendRecordsToLeader`: a topic with fewer replicas than it never takes one).
    pub(crate) fn configured_min_isr(&self) -> usize {
        self.min_isr
    }

    /// Kafka's effective min ISR: `min.insync.replicas`, but never more than the replicas (what
    /// the high watermark waits for).
    pub(crate) fn min_isr(&self) -> usize {
        self.min_isr.min(self.state.replicas.len().max(1))
    }

    pub(crate) fn follower(&self, id: i32) -> Option<&FollowerProgress> {
        self.followers.get(&id)
    }

    /// Kafka's `lowWatermarkIfLeader`: the smallest log start over this leader (`own`) and
    /// the followers whose brokers are alive; one not heard from in this epoch counts as -1
    /// (unknown), as in Kafka. None unless leading.
    pub(crate) fn low_watermark(&self, own: i64, alive: impl Fn(i32) -> bool) -> Option<i64> {
        if self.role != Role::Leader {
            return None;
        }
        let followers = self
            .followers
            .iter()
            .filter(|(id, _)| alive(**id))
            .map(|(_, p)| p.log_start.unwrap_or(-1));
        Some(followers.fold(own, i64::min))
    }

    /// Committed ISR plus an expansion in flight: who may already count as in sync.
    fn maximal_isr(&self) -> impl Iterator<Item = i32> + '_ {
        let proposed = self.proposal.iter().flat_map(|p| p.isr.iter());
        self.state
            .isr
            .iter()
            .chain(proposed.filter(|id| !self.state.isr.contains(id)))
            .copied()
    }

    pub(crate) fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if let Event::Metadata { now_ms, .. } | Event::FollowerFetched { now_ms, .. } | Event::Tick { now_ms } = event {
            self.now_ms = self.now_ms.max(now_ms);
        }
        match event {
            Event::Metadata { state, now_ms } => self.on_metadata(state, now_ms, &mut out),
            Event::LogEnd { log_end } => {
                self.log_end = log_end;
                if self.high_watermark > log_end {
                    // A follower's truncation: what it no longer has is not committed here.
                    self.high_watermark = log_end;
                    out.push(Action::HighWatermark(log_end));
                }
                if self.role == Role::Leader {
                    self.advance_high_watermark(&mut out);
                }
            }
            Event::FollowerFetched {
                replica,
                fetch_offset,
                log_start_offset,
                eligible,
                now_ms,
            } => {
                if let Some(p) = self.followers.get_mut(&replica).filter(|_| self.role == Role::Leader) {
                    p.log_start = (log_start_offset >= 0).then_some(log_start_offset);
                }
                self.on_follower_fetch(replica, fetch_offset, eligible, now_ms, &mut out)
            }
            Event::LeaderHighWatermark { high_watermark } => {
                if matches!(self.role, Role::Follower { .. }) {
                    let hw = high_watermark.min(self.log_end).max(0);
                    if hw != self.high_watermark {
                        self.high_watermark = hw;
                        out.push(Action::HighWatermark(hw));
                    }
                }
            }
            Event::Tick { now_ms } => self.maybe_shrink(now_ms, &mut out),
            Event::AlterPartitionFailed => self.proposal = None,
            Event::IsrCommitted {
                leader_epoch,
                partition_epoch,
                isr,
            } => {
                // A stale answer (an older epoch than we know) changes nothing.
                if self.role == Role::Leader
                    && leader_epoch == self.state.leader_epoch
                    && partition_epoch >= self.state.partition_epoch
                {
                    self.state.isr = isr;
                    self.state.partition_epoch = partition_epoch;
                    self.proposal = None;
                    self.track_replicas(self.now_ms);
                    self.advance_high_watermark(&mut out);
                }
            }
            Event::MinIsr { min_isr } => {
                self.min_isr = min_isr.max(1);
                if self.role == Role::Leader {
                    self.advance_high_watermark(&mut out);
                }
            }
        }
        debug_assert_eq!(self.check(), Ok(()));
        out
    }

    fn on_metadata(&mut self, state: LeaderAndIsr, now_ms: i64, out: &mut Vec<Action>) {
        if self
            .proposal
            .as_ref()
            .is_some_and(|p| state.partition_epoch > p.partition_epoch || state.leader_epoch != self.state.leader_epoch)
        {
            self.proposal = None;
        }
        let same_leadership = state.leader == self.state.leader && state.leader_epoch == self.state.leader_epoch;
        let is_replica = state.replicas.contains(&self.node_id);
        self.state = state;
        if same_leadership && self.role != Role::Offline {
            // An ISR or replica set change under the same leader.
            if self.role == Role::Leader {
                self.track_replicas(now_ms);
                self.advance_high_watermark(out);
            }
            return;
        }
        self.followers.clear();
        self.proposal = None;
        if !is_replica || self.state.leader < 0 {
            self.role = Role::Offline;
            out.push(Action::Offline);
        } else if self.state.leader == self.node_id {
            self.role = Role::Leader;
            self.epoch_start_offset = self.log_end;
            self.track_replicas(now_ms);
            out.push(Action::BecomeLeader {
                epoch: self.state.leader_epoch,
            });
            self.advance_high_watermark(out);
        } else {
            let leader = self.state.leader;
            self.role = Role::Follower { leader };
            out.push(Action::BecomeFollower {
                leader,
                epoch: self.state.leader_epoch,
            });
        }
    }

    /// Keeps a progress entry for every other replica. A new leader's ISR followers start
    /// caught up now (a grace period of the lag limit), their log ends unknown until they fetch.
    fn track_replicas(&mut self, now_ms: i64) {
        let others: Vec<i32> = self
            .state
            .replicas
            .iter()
            .copied()
            .filter(|&r| r != self.node_id)
            .collect();
        self.followers.retain(|id, _| others.contains(id));
        for id in others {
            let in_isr = self.state.isr.contains(&id);
            self.followers.entry(id).or_insert_with(|| FollowerProgress {
                last_caught_up_ms: if in_isr { now_ms } else { 0 },
                ..FollowerProgress::default()
            });
        }
    }

    fn on_follower_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        eligible: bool,
        now_ms: i64,
        out: &mut Vec<Action>,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let leader_end = self.log_end;
        let Some(p) = self.followers.get_mut(&replica) else {
            return;
        };
        if fetch_offset >= leader_end {
            p.last_caught_up_ms = p.last_caught_up_ms.max(now_ms);
        } else if p.last_fetch_leader_log_end.is_some_and(|e| fetch_offset >= e) {
            p.last_caught_up_ms = p.last_caught_up_ms.max(p.last_fetch_ms);
        }
        p.last_fetch_leader_log_end = Some(p.last_fetch_leader_log_end.unwrap_or(0).max(leader_end));
        p.last_fetch_ms = now_ms;
        p.log_end = Some(fetch_offset);
        p.eligible = eligible;
        self.maybe_expand(replica, fetch_offset, eligible, out);
        self.advance_high_watermark(out);
    }

    fn maybe_expand(&mut self, replica: i32, fetch_offset: i64, eligible: bool, out: &mut Vec<Action>) {
        if self.proposal.is_some() || !eligible || self.maximal_isr().any(|id| id == replica) {
            return;
        }
        if fetch_offset >= self.high_watermark && fetch_offset >= self.epoch_start_offset {
            let mut isr = self.state.isr.clone();
            isr.push(replica);
            self.propose(isr, out);
        }
    }

    fn maybe_shrink(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        if self.role != Role::Leader || self.proposal.is_some() {
            return;
        }
        let leader_end = self.log_end;
        let lagging: Vec<i32> = self
            .state
            .isr
            .iter()
            .copied()
            .filter(|&id| id != self.node_id)
            .filter(|id| {
                self.followers
                    .get(id)
                    .is_none_or(|p| p.log_end != Some(leader_end) && now_ms - p.last_caught_up_ms > self.lag_max_ms)
            })
            .collect();
        if lagging.is_empty() {
            return;
        }
        let isr: Vec<i32> = self
            .state
            .isr
            .iter()
            .copied()
            .filter(|id| !lagging.contains(id))
            .collect();
        self.propose(isr, out);
    }

    fn propose(&mut self, isr: Vec<i32>, out: &mut Vec<Action>) {
        self.proposal = Some(Proposal {
            isr: isr.clone(),
            partition_epoch: self.state.partition_epoch,
        });
        out.push(Action::ProposeIsr {
            isr,
            leader_epoch: self.state.leader_epoch,
            partition_epoch: self.state.partition_epoch,
        });
    }

    /// Kafka's `maybeIncrementLeaderHW`: the smallest log end over this leader, the maximal
    /// ISR and the eligible followers caught up lately (they are about to join: the high
    /// watermark must not run ahead of them); never backwards; not under min ISR.
    fn advance_high_watermark(&mut self, out: &mut Vec<Action>) {
        if self.state.isr.len() < self.min_isr() {
            return;
        }
        let mut candidate = self.log_end;
        let maximal: Vec<i32> = self.maximal_isr().collect();
        for (id, p) in &self.followers {
            let caught_up = p.log_end == Some(self.log_end) || self.now_ms - p.last_caught_up_ms <= self.lag_max_ms;
            let counts = maximal.contains(id) || (p.eligible && p.log_end.is_some() && caught_up);
            if !counts {
                continue;
            }
            match p.log_end {
                Some(end) => candidate = candidate.min(end),
                // In the ISR but not heard from in this epoch: nothing is known to be on it.
                None => return,
            }
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            out.push(Action::HighWatermark(candidate));
        }
    }

    /// The invariant every state keeps, for tests and debug builds. (A leader's high
    /// watermark can sit above an ISR follower's log end: a follower that crashed before its
    /// page cache reached the disk comes back shorter, as in Kafka.)
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.high_watermark > self.log_end {
            return Err(format!(
                "high watermark {} past log end {}",
                self.high_watermark, self.log_end
            ));
        }
        Ok(())
    }
}
