//! Replica fetchers: the follower side of replication. For each leader broker (times
//! `num.replica.fetchers`), one task sends Fetch requests for every partition this broker
//! follows there — Kafka's own protocol, with our replica id, current leader epochs and last
//! fetched epochs — and appends what comes back as it is (`Partition::append_as_follower`).
//!
//! What a response can say, and what the fetcher does (Kafka's `AbstractFetcherThread`):
//! - records: appended; the leader's high watermark becomes ours, capped at our log end;
//! - a diverging epoch: our log has batches the leader's does not; truncate to where they
//!   agree (`truncation_offset`) and fetch again from there;
//! - OFFSET_OUT_OF_RANGE: ask the leader its log end and start (ListOffsets as a replica);
//!   truncate to its end if we are ahead, or start over at its log start if we fell behind it;
//! - any other error (not leader, fenced or unknown epoch, unknown partition): back off
//!   `replica.fetch.backoff.ms` until the metadata names the leader we should follow.
//!
//! Disk work (appends, truncations) runs on the blocking pool, never on the async workers.
//! Batches are never decoded: a response's record bytes go to the log as they arrived.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::partition::{LeaderOffsets, Partition};
use super::ReplicaError;
use crate::clock::now_ms;
use crate::peer::PeerClient;

/// The Fetch version followers send: topic ids, ReplicaState (KIP-903), diverging epochs.
const FETCH_VERSION: i16 = 15;
/// ListOffsets with the leader epoch in the answer.
const LIST_OFFSETS_VERSION: i16 = 7;
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
/// How much longer than its long poll a fetch may take before the connection is given up.
const FETCH_TIMEOUT_SLACK: Duration = Duration::from_secs(30);

/// The settings the fetchers run with (Kafka's `replica.fetch.*`).
#[derive(Debug, Clone)]
pub(crate) struct FetcherConfig {
    pub(crate) node_id: i32,
    pub(crate) max_bytes: i32,
    pub(crate) partition_max_bytes: i32,
    pub(crate) wait_max_ms: i32,
    pub(crate) min_bytes: i32,
    pub(crate) backoff: Duration,
    pub(crate) fetchers_per_broker: usize,
}

type Key = (String, i32);

/// One partition a fetcher task follows.
#[derive(Debug, Clone)]
struct Followed {
    partition: Arc<Partition>,
    leader_epoch: i32,
    /// Not fetched before this (after an error).
    delayed_until: Option<Instant>,
}

/// What a fetcher task shares with the manager that adds and removes its partitions.
#[derive(Debug, Default)]
struct Shared {
    partitions: Mutex<BTreeMap<Key, Followed>>,
    changed: Notify,
}

#[derive(Debug)]
struct FetcherTask {
    addr: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// Every fetcher task of this broker, keyed by (leader broker, fetcher index).
#[derive(Debug)]
pub(crate) struct Fetchers {
    config: FetcherConfig,
    tasks: Mutex<HashMap<(i32, usize), FetcherTask>>,
    shutdown: CancellationToken,
}

impl Fetchers {
    pub(crate) fn new(config: FetcherConfig, shutdown: CancellationToken) -> Fetchers {
        Fetchers {
            config,
            tasks: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    /// Follows `partition` at `leader` (reached at `addr`) in `leader_epoch`, replacing any
    /// earlier fetcher of it.
    pub(crate) fn add(&self, partition: Arc<Partition>, leader: i32, addr: String, leader_epoch: i32) {
        let key = (partition.topic.clone(), partition.index);
        let slot = fetcher_index(&key.0, key.1, self.config.fetchers_per_broker);
        let mut tasks = self.tasks.lock().expect("fetchers lock");
        stop_following(&tasks, &key, Some((leader, slot)));
        let stale = tasks
            .get(&(leader, slot))
            .is_some_and(|t| t.addr != addr || t.stop.is_cancelled());
        if stale {
            if let Some(old) = tasks.remove(&(leader, slot)) {
                old.stop.cancel();
            }
        }
        let task = tasks.entry((leader, slot)).or_insert_with(|| self.spawn(leader, addr));
        task.shared.partitions.lock().expect("fetcher lock").insert(
            key,
            Followed {
                partition,
                leader_epoch,
                delayed_until: None,
            },
        );
        task.shared.changed.notify_one();
    }

    /// Stops following the partition (it is led here now, has no leader, or is gone).
    pub(crate) fn remove(&self, topic: &str, index: i32) {
        let tasks = self.tasks.lock().expect("fetchers lock");
        stop_following(&tasks, &(topic.to_string(), index), None);
    }

    /// Partitions followed, per leader (for metrics and tests).
    pub(crate) fn followed(&self) -> Vec<(i32, usize)> {
        let tasks = self.tasks.lock().expect("fetchers lock");
        tasks
            .iter()
            .map(|((leader, _), t)| (*leader, t.shared.partitions.lock().expect("fetcher lock").len()))
            .collect()
    }

    fn spawn(&self, leader: i32, addr: String) -> FetcherTask {
        let shared = Arc::new(Shared::default());
        let stop = self.shutdown.child_token();
        let client = PeerClient::new(
            addr.clone(),
            format!("sluice-replica-fetcher-{}-{leader}", self.config.node_id),
            // A fetch response carries at most what was asked for, plus framing.
            self.config.max_bytes.max(self.config.partition_max_bytes) as usize + (1 << 20),
        );
        let run = FetchLoop {
            config: self.config.clone(),
            client,
            shared: shared.clone(),
            stop: stop.clone(),
            leader,
        };
        tokio::spawn(run.run());
        FetcherTask { addr, shared, stop }
    }
}

/// Takes `key` out of every fetcher task but `keep`'s, waking those that had it.
fn stop_following(tasks: &HashMap<(i32, usize), FetcherTask>, key: &Key, keep: Option<(i32, usize)>) {
    for (_, task) in tasks.iter().filter(|(slot, _)| Some(**slot) != keep) {
        if task
            .shared
            .partitions
            .lock()
            .expect("fetcher lock")
            .remove(key)
            .is_some()
        {
            task.shared.changed.notify_one();
        }
    }
}

/// Kafka's fetcher id: `abs(31 * topic.hashCode + partition) % num.replica.fetchers`.
fn fetcher_index(topic: &str, partition: i32, fetchers: usize) -> usize {
    let hash = topic
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let mixed = hash.wrapping_mul(31).wrapping_add(partition);
    (mixed.checked_abs().unwrap_or(0) as usize) % fetchers.max(1)
}

/// Where a follower cuts its log when the leader says it diverged: the leader's end of the
/// epoch (`leader_epoch`, `leader_end`), our own end of that epoch (`ours`, from our epoch
/// cache), never past our log end. Kafka's `getOffsetTruncationState`.
pub(crate) fn truncation_offset(leader_epoch: i32, leader_end: i64, ours: (i32, i64), log_end: i64) -> i64 {
    if leader_end < 0 {
        return log_end;
    }
    if leader_epoch < 0 {
        return leader_end.min(log_end);
    }
    let (our_epoch, our_end) = ours;
    if our_epoch < 0 || our_end < 0 {
        leader_end.min(log_end)
    } else if our_epoch != leader_epoch {
        // We never had the leader's epoch: cut to the end of our last older epoch, and the next
        // fetch (with our new last epoch) lets the leader check again.
        our_end.min(log_end)
    } else {
        our_end.min(leader_end).min(log_end)
    }
}

/// What one partition's answer asks of the fetcher afterwards.
enum Next {
    Continue,
    Delay,
    /// OFFSET_OUT_OF_RANGE: reconcile with the leader's log end and start.
    Reset,
}

struct FetchLoop {
    config: FetcherConfig,
    client: PeerClient,
    shared: Arc<Shared>,
    stop: CancellationToken,
    leader: i32,
}

/// A partition in one fetch request: what we asked for.
struct Asked {
    key: Key,
    followed: Followed,
    fetch_offset: i64,
}

impl FetchLoop {
    async fn run(mut self) {
        debug!(
            leader = self.leader,
            addr = self.client.addr(),
            "replica fetcher started"
        );
        while !self.stop.is_cancelled() {
            let ready = self.ready();
            if ready.is_empty() {
                self.idle().await;
                continue;
            }
            let (request, asked) = self.request(ready);
            if asked.is_empty() {
                self.pause(self.config.backoff).await;
                continue;
            }
            let timeout = Duration::from_millis(self.config.wait_max_ms as u64) + FETCH_TIMEOUT_SLACK;
            let response = tokio::select! {
                _ = self.stop.cancelled() => return,
                r = self.client.send(FETCH_VERSION, &request, timeout) => r,
            };
            match response {
                Ok(response) if response.error_code == 0 => self.handle(response, asked).await,
                Ok(response) => {
                    debug!(
                        leader = self.leader,
                        code = response.error_code,
                        "fetch refused as a whole"
                    );
                    self.delay_all(&asked);
                    self.pause(self.config.backoff).await;
                }
                Err(e) => {
                    debug!(leader = self.leader, error = %e, "replica fetch failed");
                    self.delay_all(&asked);
                    self.pause(self.config.backoff).await;
                }
            }
        }
    }

    /// The partitions not in back-off.
    fn ready(&self) -> Vec<(Key, Followed)> {
        let now = Instant::now();
        let partitions = self.shared.partitions.lock().expect("fetcher lock");
        partitions
            .iter()
            .filter(|(_, f)| f.delayed_until.is_none_or(|t| t <= now))
            .map(|(k, f)| (k.clone(), f.clone()))
            .collect()
    }

    /// Waits for a partition to be added, or for the first back-off to end.
    async fn idle(&self) {
        let next = {
            let partitions = self.shared.partitions.lock().expect("fetcher lock");
            partitions.values().filter_map(|f| f.delayed_until).min()
        };
        let until = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = self.stop.cancelled() => {}
            _ = self.shared.changed.notified() => {}
            _ = tokio::time::sleep_until(until) => {}
        }
    }

    async fn pause(&self, d: Duration) {
        tokio::select! {
            _ = self.stop.cancelled() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }

    fn request(&self, ready: Vec<(Key, Followed)>) -> (FetchRequest, Vec<Asked>) {
        let mut topics: BTreeMap<Uuid, FetchTopic> = BTreeMap::new();
        let mut asked = Vec::new();
        for (key, followed) in ready {
            let Ok((log_end, last_epoch)) = followed.partition.fetch_position() else {
                continue;
            };
            let p = &followed.partition;
            topics
                .entry(p.topic_id)
                .or_insert_with(|| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(p.topic.clone())))
                        .with_topic_id(p.topic_id)
                })
                .partitions
                .push(
                    FetchPartition::default()
                        .with_partition(p.index)
                        .with_current_leader_epoch(followed.leader_epoch)
                        .with_fetch_offset(log_end)
                        .with_last_fetched_epoch(last_epoch)
                        .with_log_start_offset(p.log_start_offset())
                        .with_partition_max_bytes(self.config.partition_max_bytes),
                );
            asked.push(Asked {
                key,
                followed,
                fetch_offset: log_end,
            });
        }
        let request = FetchRequest::default()
            .with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(self.config.node_id))
                    .with_replica_epoch(-1),
            )
            .with_max_wait_ms(self.config.wait_max_ms)
            .with_min_bytes(self.config.min_bytes)
            .with_max_bytes(self.config.max_bytes)
            .with_session_epoch(-1)
            .with_topics(topics.into_values().collect());
        (request, asked)
    }

    async fn handle(&mut self, response: kafka_protocol::messages::FetchResponse, asked: Vec<Asked>) {
        let mut answers: HashMap<(Uuid, i32), PartitionData> = HashMap::new();
        for topic in response.responses {
            for p in topic.partitions {
                answers.insert((topic.topic_id, p.partition_index), p);
            }
        }
        let work: Vec<(Asked, Option<PartitionData>)> = asked
            .into_iter()
            .map(|a| {
                let answer = answers.remove(&(a.followed.partition.topic_id, a.followed.partition.index));
                (a, answer)
            })
            .collect();
        let leader = self.leader;
        let outcomes = tokio::task::spawn_blocking(move || {
            work.into_iter()
                .map(|(asked, answer)| {
                    let next = match answer {
                        Some(data) => apply(leader, &asked, data),
                        None => Next::Delay,
                    };
                    (asked, next)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let Ok(outcomes) = outcomes else {
            warn!(leader = self.leader, "replica fetch processing failed");
            return;
        };
        for (asked, next) in outcomes {
            match next {
                Next::Continue => {}
                Next::Delay => self.delay(&asked.key),
                Next::Reset => {
                    if let Err(why) = self.reset(&asked).await {
                        debug!(topic = %asked.key.0, partition = asked.key.1, why, "cannot reset the fetch offset yet");
                        self.delay(&asked.key);
                    }
                }
            }
        }
    }

    fn delay(&self, key: &Key) {
        let until = Instant::now() + self.config.backoff;
        if let Some(f) = self.shared.partitions.lock().expect("fetcher lock").get_mut(key) {
            f.delayed_until = Some(until);
        }
    }

    fn delay_all(&self, asked: &[Asked]) {
        for a in asked {
            self.delay(&a.key);
        }
    }

    /// OFFSET_OUT_OF_RANGE: truncate to the leader's log end when we are ahead of it, or start
    /// over at its log start when we fell behind it.
    async fn reset(&mut self, asked: &Asked) -> Result<(), String> {
        let leader_end = self.list_offset(asked, LATEST).await?;
        let partition = asked.followed.partition.clone();
        let our_end = partition.log_end_offset();
        if leader_end < our_end {
            info!(topic = %partition.topic, partition = partition.index, leader_end, our_end, "follower ahead of its leader: truncating");
            let epoch = asked.followed.leader_epoch;
            return blocking(move || partition.truncate_to(epoch, leader_end)).await;
        }
        let leader_start = self.list_offset(asked, EARLIEST).await?;
        if leader_start > our_end {
            info!(topic = %partition.topic, partition = partition.index, leader_start, our_end, "follower behind its leader's log start: starting over");
            let epoch = asked.followed.leader_epoch;
            return blocking(move || partition.restart_from(epoch, leader_start)).await;
        }
        Ok(())
    }

    async fn list_offset(&mut self, asked: &Asked, timestamp: i64) -> Result<i64, String> {
        let p = &asked.followed.partition;
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(self.config.node_id))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(p.topic.clone())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(p.index)
                    .with_current_leader_epoch(asked.followed.leader_epoch)
                    .with_timestamp(timestamp)])]);
        let response = self
            .client
            .send(LIST_OFFSETS_VERSION, &request, Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        let answer = response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|x| x.partition_index == p.index)
            .ok_or("no answer for the partition")?;
        if answer.error_code != 0 {
            return Err(format!("error {}", answer.error_code));
        }
        Ok(answer.offset)
    }
}

/// Applies one partition's answer (on the blocking pool).
fn apply(leader: i32, asked: &Asked, data: PartitionData) -> Next {
    let p = &asked.followed.partition;
    if p.log_end_offset() != asked.fetch_offset {
        // The log moved while the fetch was out (a truncation): this answer is stale.
        return Next::Continue;
    }
    match ResponseError::try_from_code(data.error_code) {
        None => {}
        Some(ResponseError::OffsetOutOfRange) => return Next::Reset,
        Some(e) => {
            debug!(leader, topic = %p.topic, partition = p.index, error = ?e, "replica fetch error");
            return Next::Delay;
        }
    }
    if data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0 {
        let d = &data.diverging_epoch;
        let ours = p.end_offset_for_epoch(d.epoch).unwrap_or((-1, -1));
        let to = truncation_offset(d.epoch, d.end_offset, ours, asked.fetch_offset);
        info!(leader, topic = %p.topic, partition = p.index, epoch = d.epoch, leader_end = d.end_offset, to, "log diverged from the leader's: truncating");
        if let Err(e) = p.truncate_to(asked.followed.leader_epoch, to) {
            warn!(topic = %p.topic, partition = p.index, error = %e, "truncation failed");
            return Next::Delay;
        }
        return Next::Continue;
    }
    let records = data.records.unwrap_or_default();
    let leader_offsets = LeaderOffsets {
        high_watermark: data.high_watermark,
        log_start_offset: data.log_start_offset,
    };
    match p.append_as_follower(asked.followed.leader_epoch, &records, leader_offsets, now_ms()) {
        Ok(_) => Next::Continue,
        Err(ReplicaError::StaleFetch { .. }) => Next::Continue,
        Err(e) => {
            warn!(leader, topic = %p.topic, partition = p.index, error = %e, "follower append failed");
            Next::Delay
        }
    }
}

async fn blocking(f: impl FnOnce() -> Result<(), super::ReplicaError> + Send + 'static) -> Result<(), String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_follows_kafka() {
        // Same epoch on both sides: the smaller end.
        assert_eq!(truncation_offset(3, 100, (3, 120), 130), 100);
        assert_eq!(truncation_offset(3, 100, (3, 90), 130), 90);
        // We never had the leader's epoch: the end of our older one.
        assert_eq!(truncation_offset(4, 100, (2, 80), 130), 80);
        // Nothing to compare: the leader's end, never past ours.
        assert_eq!(truncation_offset(4, 100, (-1, -1), 130), 100);
        assert_eq!(truncation_offset(-1, 150, (-1, -1), 130), 130);
        assert_eq!(truncation_offset(2, -1, (2, 5), 130), 130);
    }

    #[test]
    fn fetcher_index_is_kafkas() {
        // Java: abs(31 * "orders".hashCode() + 2) % 3
        let java_hash: i32 = "orders"
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
        let expected = (java_hash.wrapping_mul(31).wrapping_add(2).unsigned_abs() as usize) % 3;
        assert_eq!(fetcher_index("orders", 2, 3), expected);
        assert_eq!(fetcher_index("t", 0, 1), 0);
    }
}
