//! A seeded simulation of one partition replicated over three brokers: the replication core
//! of each (`Core`), their logs and leader epoch caches, the controller's real planning
//! functions (`metadata::elections`, `brokers`) on a real metadata image, a network that
//! delays, reorders and drops messages, clients producing with acks=all, and faults: crashes,
//! restarts and isolation (a broker cut off from its peers and the controller, but not from
//! clients — the zombie case).
//!
//! Safety, checked after every step: the core's own invariant; at most one leader per leader
//! epoch; no acknowledged record is ever truncated away. Liveness, checked at the end: once
//! every fault is healed, all three logs converge to the same records, every acknowledged
//! record among them at its acknowledged offset, and the ISR is full again.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use uuid::Uuid;

use super::super::core::{Action, Core, Event, LeaderAndIsr, Role};
use super::super::fetcher::truncation_offset;
use crate::log::leader_epoch::LeaderEpochCache;
use crate::metadata::brokers;
use crate::metadata::elections::{self, IsrChange};
use crate::metadata::testkit::{add_topic, live_brokers};
use crate::metadata::{MetadataImage, MetadataRecord};
use crate::testing::Rng;

const NODES: [i32; 3] = [1, 2, 3];
const LAG_MS: i64 = 2_000;
const SESSION_MS: i64 = 1_500;
const MIN_ISR: usize = 2;
const FETCH_MAX_RECORDS: usize = 4;

/// One record: (leader epoch it was written in, value).
type Entry = (i32, u64);

#[derive(Debug)]
struct Node {
    id: i32,
    up: bool,
    isolated: bool,
    core: Core,
    log: Vec<Entry>,
    epochs: LeaderEpochCache,
    /// The metadata version this node applied last.
    seen: usize,
    /// A fetch of ours in flight (followers send one at a time, as a fetcher does).
    fetching: bool,
    last_heartbeat_ms: i64,
}

impl Node {
    fn log_end(&self) -> i64 {
        self.log.len() as i64
    }

    fn truncate(&mut self, to: i64) {
        self.log.truncate(to as usize);
        self.epochs.truncate_from_end(to);
        self.core.handle(Event::LogEnd { log_end: to });
    }

    fn append(&mut self, entries: &[(i64, Entry)]) {
        for &(offset, (epoch, value)) in entries {
            assert_eq!(
                offset,
                self.log_end(),
                "node {}: replicated batch not at its log end",
                self.id
            );
            self.epochs.assign(epoch, offset);
            self.log.push((epoch, value));
        }
        let log_end = self.log_end();
        self.core.handle(Event::LogEnd { log_end });
    }
}

#[derive(Debug, Clone)]
enum Message {
    Metadata {
        to: i32,
    },
    Fetch {
        from: i32,
        to: i32,
        epoch: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
    },
    FetchAnswer {
        to: i32,
        epoch: i32,
        fetch_offset: i64,
        answer: Answer,
    },
    AlterPartition {
        from: i32,
        change: IsrChange,
    },
}

#[derive(Debug, Clone)]
enum Answer {
    Records {
        entries: Vec<(i64, Entry)>,
        hw: i64,
    },
    Diverging {
        epoch: i32,
        end_offset: i64,
    },
    /// OFFSET_OUT_OF_RANGE: the follower asks the leader's log end (ListOffsets as a replica).
    OutOfRange {
        leader_end: i64,
    },
    Error,
}

/// An acks=all produce waiting at a leader: committed once its HW passes `offset` while it
/// still leads in `epoch`.
#[derive(Debug)]
struct Waiting {
    node: i32,
    epoch: i32,
    offset: i64,
    value: u64,
}

struct World {
    rng: Rng,
    seed: u64,
    now_ms: i64,
    nodes: BTreeMap<i32, Node>,
    image: MetadataImage,
    topic_id: Uuid,
    /// Every metadata version the controller committed: the partition's leader and ISR.
    versions: Vec<LeaderAndIsr>,
    network: VecDeque<(i64, Message)>,
    waiting: Vec<Waiting>,
    acked: BTreeMap<i64, u64>,
    next_value: u64,
    /// (leader epoch, node) pairs that ever led: one node per epoch.
    leaders: BTreeMap<i32, i32>,
}

impl World {
    fn new(seed: u64) -> World {
        let mut image = live_brokers(&[(1, None), (2, None), (3, None)]);
        let topic_id = add_topic(&mut image, "t", &[NODES.to_vec()]);
        let nodes = NODES
            .iter()
            .map(|&id| {
                let node = Node {
                    id,
                    up: true,
                    isolated: false,
                    core: Core::new(id, LAG_MS, MIN_ISR, 0, 0),
                    log: Vec::new(),
                    epochs: LeaderEpochCache::empty(std::path::Path::new("/nonexistent")),
                    seen: 0,
                    fetching: false,
                    last_heartbeat_ms: 0,
                };
                (id, node)
            })
            .collect();
        let mut w = World {
            rng: Rng::new(seed),
            seed,
            now_ms: 0,
            nodes,
            image,
            topic_id,
            versions: Vec::new(),
            network: VecDeque::new(),
            waiting: Vec::new(),
            acked: BTreeMap::new(),
            next_value: 1,
            leaders: BTreeMap::new(),
        };
        w.publish();
        w
    }

    fn partition(&self) -> LeaderAndIsr {
        let p = &self.image.topic("t").expect("topic").partitions[&0];
        LeaderAndIsr {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
        }
    }

    /// Records a new metadata version if the partition changed, and sends it to every node.
    fn publish(&mut self) {
        let state = self.partition();
        if self.versions.last() != Some(&state) {
            self.versions.push(state);
            for id in NODES {
                self.send(Message::Metadata { to: id });
            }
        }
    }

    fn send(&mut self, m: Message) {
        let at = self.now_ms + self.rng.below(40) as i64;
        self.network.push_back((at, m));
    }

    fn reachable(&self, a: i32, b: i32) -> bool {
        let n = |id: i32| self.nodes.get(&id).is_some_and(|n| n.up && !n.isolated);
        n(a) && n(b)
    }

    fn controller_reaches(&self, id: i32) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.up && !n.isolated)
    }

    fn commit(&mut self, records: Vec<MetadataRecord>) {
        crate::metadata::testkit::apply(&mut self.image, &records);
        self.publish();
    }

    /// Runs a node's core on `event` and carries out what it decides.
    fn step_node(&mut self, id: i32, event: Event) {
        let actions = self.nodes.get_mut(&id).expect("node").core.handle(event);
        self.act(id, actions);
    }

    fn act(&mut self, id: i32, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::ProposeIsr {
                    isr,
                    leader_epoch,
                    partition_epoch,
                } => self.send(Message::AlterPartition {
                    from: id,
                    change: IsrChange {
                        topic_id: self.topic_id,
                        partition: 0,
                        leader_epoch,
                        partition_epoch,
                        isr,
                    },
                }),
                Action::BecomeLeader { epoch } => {
                    if let Some(other) = self.leaders.insert(epoch, id) {
                        assert_eq!(other, id, "seed {}: two leaders in epoch {epoch}", self.seed);
                    }
                    let node = self.nodes.get_mut(&id).expect("node");
                    let end = node.log_end();
                    node.epochs.assign(epoch, end);
                }
                Action::BecomeFollower { .. } | Action::Offline | Action::HighWatermark(_) => {}
            }
        }
        self.complete_waiting();
    }

    /// Acknowledges every acks=all produce its leader has committed.
    fn complete_waiting(&mut self) {
        let nodes = &self.nodes;
        let mut acked = Vec::new();
        self.waiting.retain(|w| {
            let n = &nodes[&w.node];
            let leading = n.core.role() == Role::Leader && n.core.leader_epoch() == w.epoch;
            if !leading {
                return false; // NOT_LEADER_OR_FOLLOWER: the client retries elsewhere
            }
            if n.core.high_watermark() > w.offset {
                acked.push((w.offset, w.value));
                return false;
            }
            true
        });
        for (offset, value) in acked {
            if let Some(old) = self.acked.insert(offset, value) {
                panic!(
                    "seed {}: offset {offset} acknowledged twice ({old}, {value})",
                    self.seed
                );
            }
        }
    }

    fn produce(&mut self) {
        let candidates: Vec<i32> = self
            .nodes
            .values()
            .filter(|n| n.up && n.core.role() == Role::Leader)
            .map(|n| n.id)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let id = candidates[self.rng.below(candidates.len() as u64) as usize];
        let node = self.nodes.get_mut(&id).expect("node");
        if node.core.isr().len() < MIN_ISR {
            return; // NOT_ENOUGH_REPLICAS
        }
        let epoch = node.core.leader_epoch();
        let offset = node.log_end();
        let value = self.next_value;
        self.next_value += 1;
        node.append(&[(offset, (epoch, value))]);
        self.waiting.push(Waiting {
            node: id,
            epoch,
            offset,
            value,
        });
        self.complete_waiting();
    }

    fn start_fetches(&mut self) {
        for id in NODES {
            let n = &self.nodes[&id];
            if !n.up || n.fetching {
                continue;
            }
            let Role::Follower { leader } = n.core.role() else {
                continue;
            };
            let m = Message::Fetch {
                from: id,
                to: leader,
                epoch: n.core.leader_epoch(),
                fetch_offset: n.log_end(),
                last_fetched_epoch: n.epochs.latest_epoch().unwrap_or(-1),
            };
            self.nodes.get_mut(&id).expect("node").fetching = true;
            self.send(m);
        }
    }

    fn deliver(&mut self, m: Message) {
        match m {
            Message::Metadata { to } => {
                if !self.controller_reaches(to) {
                    return;
                }
                let n = self.nodes.get_mut(&to).expect("node");
                if n.seen >= self.versions.len() {
                    return;
                }
                n.seen = self.versions.len();
                let state = self.versions.last().expect("a version").clone();
                let now_ms = self.now_ms;
                self.step_node(to, Event::Metadata { state, now_ms });
            }
            Message::Fetch {
                from,
                to,
                epoch,
                fetch_offset,
                last_fetched_epoch,
            } => {
                if !self.reachable(from, to) {
                    self.fetch_lost(from);
                    return;
                }
                let answer = self.serve_fetch(from, to, epoch, fetch_offset, last_fetched_epoch);
                self.send(Message::FetchAnswer {
                    to: from,
                    epoch,
                    fetch_offset,
                    answer,
                });
            }
            Message::FetchAnswer {
                to,
                epoch,
                fetch_offset,
                answer,
            } => self.on_fetch_answer(to, epoch, fetch_offset, answer),
            Message::AlterPartition { from, change } => {
                if !self.controller_reaches(from) {
                    self.step_node(from, Event::AlterPartitionFailed);
                    return;
                }
                let (records, results) = elections::plan_alter_partition(&self.image, from, &[change]);
                self.commit(records);
                let event = match results.into_iter().next() {
                    Some(Ok(c)) => Event::IsrCommitted {
                        leader_epoch: c.leader_epoch,
                        partition_epoch: c.partition_epoch,
                        isr: c.isr,
                    },
                    _ => Event::AlterPartitionFailed,
                };
                self.step_node(from, event);
            }
        }
    }

    fn fetch_lost(&mut self, from: i32) {
        if let Some(n) = self.nodes.get_mut(&from) {
            n.fetching = false;
        }
    }

    /// The leader side of a follower's fetch (as `Partition::read_for_follower`).
    fn serve_fetch(&mut self, from: i32, to: i32, epoch: i32, fetch_offset: i64, last_fetched_epoch: i32) -> Answer {
        let now_ms = self.now_ms;
        let n = &self.nodes[&to];
        if n.core.role() != Role::Leader || n.core.leader_epoch() != epoch {
            return Answer::Error;
        }
        let hw = n.core.high_watermark();
        let out_of_range = Answer::OutOfRange {
            leader_end: n.log_end(),
        };
        if last_fetched_epoch >= 0 {
            let (e, end) = n.epochs.end_offset_for(last_fetched_epoch, n.log_end());
            if e < 0 || end < 0 {
                return out_of_range;
            }
            if e < last_fetched_epoch || end < fetch_offset {
                return Answer::Diverging {
                    epoch: e,
                    end_offset: end,
                };
            }
        }
        if fetch_offset > n.log_end() {
            return out_of_range;
        }
        let entries: Vec<(i64, Entry)> = (fetch_offset..n.log_end())
            .take(FETCH_MAX_RECORDS)
            .map(|o| (o, n.log[o as usize]))
            .collect();
        let eligible = self.image.broker(from).is_some_and(|b| !b.fenced);
        self.step_node(
            to,
            Event::FollowerFetched {
                replica: from,
                fetch_offset,
                log_start_offset: -1,
                eligible,
                now_ms,
            },
        );
        Answer::Records { entries, hw }
    }

    /// The follower side (as the fetcher with `Partition::append_as_follower`).
    fn on_fetch_answer(&mut self, to: i32, epoch: i32, fetch_offset: i64, answer: Answer) {
        self.fetch_lost(to);
        let Some(n) = self.nodes.get(&to) else {
            return;
        };
        // A stale answer: this replica moved on (leads, or follows a newer epoch), or its log
        // moved while the fetch was out.
        let following = matches!(n.core.role(), Role::Follower { .. }) && n.core.leader_epoch() == epoch;
        if !n.up || !following || n.log_end() != fetch_offset {
            return;
        }
        match answer {
            Answer::Error => {}
            Answer::OutOfRange { leader_end } => {
                if leader_end < n.log_end() {
                    self.check_truncation(to, leader_end);
                    self.nodes.get_mut(&to).expect("node").truncate(leader_end);
                }
            }
            Answer::Diverging { epoch: e, end_offset } => {
                let ours = n.epochs.end_offset_for(e, n.log_end());
                let to_offset = truncation_offset(e, end_offset, ours, n.log_end());
                self.check_truncation(to, to_offset);
                let n = self.nodes.get_mut(&to).expect("node");
                n.truncate(to_offset);
            }
            Answer::Records { entries, hw } => {
                let n = self.nodes.get_mut(&to).expect("node");
                if !entries.is_empty() {
                    n.append(&entries);
                }
                self.step_node(to, Event::LeaderHighWatermark { high_watermark: hw });
            }
        }
    }

    /// Nothing acknowledged may be cut from a log.
    fn check_truncation(&self, node: i32, to: i64) {
        let log = &self.nodes[&node].log;
        for (&offset, &value) in self.acked.range(to..) {
            if log.get(offset as usize).map(|e| e.1) == Some(value) {
                panic!(
                    "seed {}: node {node} truncates to {to}, cutting acknowledged {value} at {offset}",
                    self.seed
                );
            }
        }
    }

    fn tick(&mut self) {
        self.now_ms += 1 + self.rng.below(100) as i64;
        let now_ms = self.now_ms;
        for id in NODES {
            if self.nodes[&id].up {
                self.step_node(id, Event::Tick { now_ms });
                if self.controller_reaches(id) {
                    let n = self.nodes.get_mut(&id).expect("node");
                    n.last_heartbeat_ms = now_ms;
                    // A broker behind the metadata log catches up (as the log is replayed).
                    if n.seen < self.versions.len() {
                        self.send(Message::Metadata { to: id });
                    }
                }
            }
        }
        // The controller fences brokers silent for a session, and unfences returning ones.
        for id in NODES {
            let n = &self.nodes[&id];
            let fenced = self.image.broker(id).is_some_and(|b| b.fenced);
            if !fenced && now_ms - n.last_heartbeat_ms > SESSION_MS {
                let records = brokers::plan_fence(&self.image, id, &|_| false);
                self.commit(records);
            } else if fenced && n.up && !n.isolated && n.seen == self.versions.len() {
                let records = brokers::plan_unfence(&self.image, id, &|_| false);
                self.commit(records);
            }
        }
    }

    fn fault(&mut self) {
        let id = NODES[self.rng.below(3) as usize];
        let down = self.nodes.values().filter(|n| !n.up || n.isolated).count();
        let n = self.nodes.get_mut(&id).expect("node");
        match (n.up, n.isolated) {
            (true, false) if down == 0 => {
                if self.rng.chance(50) {
                    n.up = false; // crash (the log survives: it was in the page cache)
                } else {
                    n.isolated = true;
                }
            }
            (true, true) => n.isolated = false,
            (false, _) => self.restart(id),
            _ => {}
        }
    }

    fn restart(&mut self, id: i32) {
        let n = self.nodes.get_mut(&id).expect("node");
        n.up = true;
        n.isolated = false;
        n.fetching = false;
        n.seen = 0;
        // A new start: the core knows its log end and last high watermark, nothing else.
        let hw = n.core.high_watermark();
        n.core = Core::new(id, LAG_MS, MIN_ISR, n.log_end(), hw);
        self.send(Message::Metadata { to: id });
        if self.image.broker(id).is_some_and(|b| !b.fenced) {
            // Restarted within its session: registering again fences it first.
            let records = brokers::plan_fence(&self.image, id, &|_| false);
            self.commit(records);
        }
    }

    fn step(&mut self, faults: bool) {
        match self.rng.below(100) {
            0..=34 => {
                if let Some((_, m)) = self.network.pop_front() {
                    if self.rng.chance(3) {
                        // Lost: an RPC times out and its sender knows; metadata is replayed.
                        match m {
                            Message::Fetch { from, .. } | Message::FetchAnswer { to: from, .. } => {
                                self.fetch_lost(from)
                            }
                            Message::AlterPartition { from, .. } => self.step_node(from, Event::AlterPartitionFailed),
                            Message::Metadata { .. } => {}
                        }
                    } else {
                        self.deliver(m);
                    }
                }
            }
            35..=49 => {
                // Reordering: a later message overtakes.
                let len = self.network.len();
                if len > 1 {
                    let i = self.rng.below(len as u64) as usize;
                    if let Some((_, m)) = self.network.remove(i) {
                        self.deliver(m);
                    }
                }
            }
            50..=69 => self.produce(),
            70..=84 => self.start_fetches(),
            85..=97 => self.tick(),
            _ if faults => self.fault(),
            _ => {}
        }
        self.check();
    }

    fn check(&self) {
        for n in self.nodes.values() {
            if let Err(e) = n.core.check() {
                panic!("seed {}: node {}: {e}", self.seed, n.id);
            }
        }
    }

    fn heal(&mut self) {
        for id in NODES {
            let n = self.nodes.get_mut(&id).expect("node");
            n.isolated = false;
            if !n.up {
                self.restart(id);
            }
        }
    }

    fn describe(&self) -> String {
        self.nodes
            .values()
            .map(|n| {
                format!(
                    "node {}: up {} isolated {} fenced {:?} role {:?} epoch {} hw {} log_end {} seen {}/{} epochs {:?} follower2 {:?}\n",
                    n.id,
                    n.up,
                    n.isolated,
                    self.image.broker(n.id).map(|b| b.fenced),
                    n.core.role(),
                    n.core.leader_epoch(),
                    n.core.high_watermark(),
                    n.log_end(),
                    n.seen,
                    self.versions.len(),
                    n.epochs.entries(),
                    n.core.follower(2),
                )
            })
            .collect()
    }

    fn converged(&self) -> bool {
        let logs: BTreeSet<&Vec<Entry>> = self.nodes.values().map(|n| &n.log).collect();
        let state = self.partition();
        logs.len() == 1 && state.isr.len() == NODES.len() && state.leader >= 0
    }
}

fn run(seed: u64, steps: usize) {
    let mut w = World::new(seed);
    for _ in 0..steps {
        w.step(true);
    }
    w.heal();
    let mut settle = 0;
    while !w.converged() {
        w.step(false);
        settle += 1;
        assert!(
            settle < 200_000,
            "seed {seed}: no convergence after healing ({:?})\n{}",
            w.partition(),
            w.describe()
        );
    }
    let log = &w.nodes[&1].log;
    for (&offset, &value) in &w.acked {
        assert_eq!(
            log.get(offset as usize).map(|e| e.1),
            Some(value),
            "seed {seed}: acknowledged {value} at {offset} lost"
        );
    }
    assert!(
        !w.acked.is_empty() || steps < 1000,
        "seed {seed}: nothing was acknowledged"
    );
}

/// Seeds 1..=40 by default; `SLUICE_SIM_SEEDS=N` runs N (the long run of `make soak`).
#[test]
fn replication_survives_crashes_isolation_and_a_lossy_network() {
    let seeds: u64 = std::env::var("SLUICE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    for seed in 1..=seeds {
        run(seed, 20_000);
    }
}

#[test]
fn without_faults_every_produce_is_acknowledged_and_the_logs_agree() {
    let mut w = World::new(99);
    for _ in 0..20_000 {
        w.step(false);
    }
    w.heal();
    while !w.converged() {
        w.step(false);
    }
    assert!(w.acked.len() > 100, "{} acknowledged", w.acked.len());
}
