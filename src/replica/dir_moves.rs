//! Moves of partition replicas between this broker's log directories (AlterReplicaLogDirs),
//! as Kafka's `ReplicaAlterLogDirsManager` does them: a future log is created in the target
//! directory and caught up from the current log by a few background threads (never on the
//! async workers), at most `replica.alter.log.dirs.io.max.bytes.per.second` for all of them;
//! once it has nearly caught up, the last batches are copied and the logs swapped under the
//! partition lock (`log::future` has the crash-safe swap).
//!
//! Owns: the queue and state of the moves (one per partition at most, so bounded by the hosted
//! partitions), and their threads. May call: `log` (future logs, throttle), `partition`. Must
//! never: hold a partition's lock while writing the future log, except for the final step;
//! leave a future log behind when a move is cancelled, replaced or the broker stops.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use tracing::{info, warn};

use super::partition::Partition;
use super::ReplicaError;
use crate::clock::now_ms;
use crate::log::{
    apply_future_step, catch_up_once, plan_future_step, swap_future, FutureStep, Log, LogDirs, LogError, Throttle,
};

type Key = (String, i32);

/// Bytes read from the current log per step.
const CHUNK_BYTES: usize = 1 << 20;
/// The longest a throttled thread sleeps before it looks whether it should stop.
const PAUSE_SLICE: std::time::Duration = std::time::Duration::from_millis(100);

/// A future replica being built, for DescribeLogDirs.
#[derive(Debug, Clone)]
pub(crate) struct FutureReplica {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// Index of the target log dir.
    pub(crate) dir: usize,
    pub(crate) log_end_offset: i64,
    pub(crate) size_bytes: u64,
}

#[derive(Debug)]
struct Move {
    partition: Arc<Partition>,
    target: usize,
    /// Bumped when the move is asked again with another target: a worker running an older
    /// generation stops and drops its future log.
    generation: u64,
    /// Where the future log stands (None until it exists).
    future: Option<(i64, u64)>,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Key>,
    moves: HashMap<Key, Move>,
    next_generation: u64,
}

#[derive(Debug)]
struct Shared {
    logs: Arc<LogDirs>,
    state: Mutex<State>,
    wake: Condvar,
    throttle: Throttle,
    stop: AtomicBool,
    /// A swap happened since the last `take_swapped`: the checkpoints should be rewritten.
    swapped: AtomicBool,
}

#[derive(Debug)]
pub(crate) struct DirMoves {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

/// Why a move ended without a swap.
#[derive(Debug)]
enum Stopped {
    /// Cancelled, replaced by a move elsewhere, the partition deleted, or the broker stopping.
    Cancelled,
    Failed(ReplicaError),
}

impl From<LogError> for Stopped {
    fn from(e: LogError) -> Self {
        Stopped::Failed(e.into())
    }
}

impl From<ReplicaError> for Stopped {
    fn from(e: ReplicaError) -> Self {
        match e {
            ReplicaError::UnknownTopicOrPartition { .. } => Stopped::Cancelled,
            other => Stopped::Failed(other),
        }
    }
}

impl DirMoves {
    pub(crate) fn start(logs: Arc<LogDirs>, threads: usize, bytes_per_second: f64) -> DirMoves {
        let shared = Arc::new(Shared {
            logs,
            state: Mutex::default(),
            wake: Condvar::new(),
            throttle: Throttle::new(bytes_per_second),
            stop: AtomicBool::new(false),
            swapped: AtomicBool::new(false),
        });
        let workers = (0..threads.max(1))
            .filter_map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("log-dir-move-{i}"))
                    .spawn(move || shared.work())
                    .map_err(|e| warn!(error = %e, "cannot start a log dir move thread"))
                    .ok()
            })
            .collect();
        DirMoves {
            shared,
            workers: Mutex::new(workers),
        }
    }

    /// Moves `p` to log dir `target`: queued unless already moving there; a move to another
    /// dir replaces it. Asking for the dir the log is in cancels a move in flight.
    pub(crate) fn request(&self, p: Arc<Partition>, target: usize, current: usize) {
        let key = (p.topic.clone(), p.index);
        let mut state = self.shared.lock();
        if state.moves.get(&key).is_some_and(|m| m.target == target) {
            return;
        }
        state.next_generation += 1;
        let generation = state.next_generation;
        if target == current {
            state.moves.remove(&key);
            return;
        }
        let queued = state.moves.contains_key(&key);
        state.moves.insert(
            key.clone(),
            Move {
                partition: p,
                target,
                generation,
                future: None,
            },
        );
        if !queued {
            state.queue.push_back(key);
        }
        drop(state);
        self.shared.wake.notify_one();
    }

    /// The future replicas being built, for DescribeLogDirs.
    pub(crate) fn futures(&self) -> Vec<FutureReplica> {
        let state = self.shared.lock();
        state
            .moves
            .iter()
            .filter_map(|((topic, partition), m)| {
                m.future.map(|(log_end_offset, size_bytes)| FutureReplica {
                    topic: topic.clone(),
                    partition: *partition,
                    dir: m.target,
                    log_end_offset,
                    size_bytes,
                })
            })
            .collect()
    }

    /// Whether a swap happened since the last call.
    pub(crate) fn take_swapped(&self) -> bool {
        self.shared.swapped.swap(false, Ordering::AcqRel)
    }

    /// Stops the threads; each drops the future log it was building (the move is lost, as it
    /// would be in a crash, and must be asked again).
    pub(crate) fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        for w in workers {
            let _ = w.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn work(&self) {
        while let Some((key, p, target, generation)) = self.next() {
            let result = self.run(&key, &p, target, generation);
            let mut state = self.lock();
            if state.moves.get(&key).is_some_and(|m| m.generation == generation) {
                state.moves.remove(&key);
            } else if state.moves.contains_key(&key) {
                // Asked again with another target while this one ran: run that one.
                state.queue.push_back(key.clone());
                self.wake.notify_one();
            }
            drop(state);
            match result {
                Ok(()) => info!(topic = %key.0, partition = key.1, dir = target, "replica moved to another log dir"),
                Err(Stopped::Cancelled) => info!(topic = %key.0, partition = key.1, "log dir move stopped"),
                Err(Stopped::Failed(e)) => warn!(topic = %key.0, partition = key.1, error = %e, "log dir move failed"),
            }
        }
    }

    /// The next queued move, waiting for one; None once stopping.
    fn next(&self) -> Option<(Key, Arc<Partition>, usize, u64)> {
        let mut state = self.lock();
        loop {
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            while let Some(key) = state.queue.pop_front() {
                if let Some(m) = state.moves.get(&key) {
                    return Some((key, m.partition.clone(), m.target, m.generation));
                }
            }
            state = self.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Sleeps for the throttle, in slices, so that neither stopping nor a cancelled move waits
    /// for a long pause.
    fn pause(&self, pause: std::time::Duration, key: &Key, generation: u64) {
        let until = std::time::Instant::now() + pause;
        while self.still_wanted(key, generation) {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(PAUSE_SLICE));
        }
    }

    fn still_wanted(&self, key: &Key, generation: u64) -> bool {
        !self.stop.load(Ordering::Acquire) && self.lock().moves.get(key).is_some_and(|m| m.generation == generation)
    }

    fn report(&self, key: &Key, generation: u64, future: &Log) {
        if let Some(m) = self.lock().moves.get_mut(key).filter(|m| m.generation == generation) {
            m.future = Some((future.log_end_offset(), future.size_bytes()));
        }
    }

    /// One move: create, catch up, swap. The future log is deleted on any way out but the swap.
    fn run(&self, key: &Key, p: &Partition, target: usize, generation: u64) -> Result<(), Stopped> {
        let config = p.with_log(|log| Ok(log.config().clone()))?;
        info!(topic = %p.topic, partition = p.index, dir = target, "moving replica to another log dir");
        let mut future = Some(self.logs.create_future(target, &p.topic, p.index, config)?);
        let result = self.catch_up_and_swap(key, p, generation, &mut future);
        if let Some(f) = future {
            if let Err(e) = f.delete() {
                warn!(topic = %p.topic, partition = p.index, error = %e, "could not delete a future log");
            }
        }
        result
    }

    fn catch_up_and_swap(
        &self,
        key: &Key,
        p: &Partition,
        generation: u64,
        slot: &mut Option<Log>,
    ) -> Result<(), Stopped> {
        loop {
            if !self.still_wanted(key, generation) {
                return Err(Stopped::Cancelled);
            }
            let future = slot.as_mut().expect("the future log is only taken by the swap");
            let step = p.with_log(|current| Ok(plan_future_step(current, future, CHUNK_BYTES)?))?;
            let copied = apply_future_step(future, &step, now_ms())?;
            self.report(key, generation, future);
            if let Some(pause) = self.throttle.account(copied as u64) {
                self.pause(pause, key, generation);
            }
            // Caught up, or less than a chunk behind: finish under the partition lock.
            let near = matches!(step, FutureStep::CaughtUp) || copied < CHUNK_BYTES / 2;
            if near && matches!(step, FutureStep::CaughtUp | FutureStep::Copy(_)) {
                break;
            }
        }
        // Taken only once the partition lock is held, and only if the move is still wanted
        // (checked again under the lock: it may have been cancelled during the last pause);
        // otherwise `run` deletes it.
        let outcome = p.replace_log(|current| {
            if !self.still_wanted(key, generation) {
                return (Some(current), Err(Stopped::Cancelled));
            }
            match slot.take() {
                Some(future) => finish(current, future),
                None => (Some(current), Err(Stopped::Cancelled)),
            }
        })?;
        if outcome.is_ok() {
            self.swapped.store(true, Ordering::Release);
        }
        outcome
    }
}

/// Under the partition lock: the last batches, then the swap. Returns the log the partition
/// keeps, and how it went.
fn finish(current: Log, mut future: Log) -> (Option<Log>, Result<(), Stopped>) {
    loop {
        match catch_up_once(&current, &mut future, CHUNK_BYTES, now_ms()) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                let _ = future.delete();
                return (Some(current), Err(e.into()));
            }
        }
    }
    let (kept, swapped) = swap_future(current, future);
    if let (None, Err(e)) = (&kept, &swapped) {
        warn!(error = %e, "log dir move failed after the old log was closed: the partition is unavailable until a restart");
    }
    (kept, swapped.map_err(Stopped::from))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use tokio::sync::mpsc;
    use uuid::Uuid;

    use super::*;
    use crate::log::testutil::{batch_of, config, read_all};
    use crate::replica::partition::PartitionSetup;

    fn setup(dirs: &[&Path], records: usize) -> (Arc<LogDirs>, Arc<Partition>) {
        let ids: Vec<_> = dirs.iter().map(|d| (d.to_path_buf(), Uuid::new_v4())).collect();
        let logs = Arc::new(LogDirs::open(&ids).unwrap());
        let mut log = logs.create("t", 0, config(), &[0, 1]).unwrap();
        for i in 0..records {
            log.append(&mut batch_of(10, i as i64), 0, 0).unwrap();
        }
        let (proposals, _) = mpsc::unbounded_channel();
        let p = Partition::new(PartitionSetup {
            topic: "t".into(),
            index: 0,
            topic_id: Uuid::nil(),
            node_id: 1,
            log,
            high_watermark: 0,
            lag_max_ms: 30_000,
            min_insync_replicas: 1,
            proposals,
        });
        (logs, p)
    }

    fn dir_of(logs: &LogDirs, p: &Partition) -> Option<usize> {
        logs.index_of(&p.log_dir()?)
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn futures_in(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with("-future"))
            .count()
    }

    #[test]
    fn a_move_copies_the_log_and_swaps_it_into_the_target_dir() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (logs, p) = setup(&[a.path(), b.path()], 500);
        let before = p.with_log(|log| Ok(read_all(log))).unwrap();
        let moves = DirMoves::start(logs.clone(), 1, f64::MAX);
        moves.request(p.clone(), 1, 0);
        wait_until("moved", || dir_of(&logs, &p) == Some(1));
        assert_eq!(p.with_log(|log| Ok(read_all(log))).unwrap(), before);
        wait_until("swap reported", || moves.take_swapped());
        wait_until("move forgotten", || moves.futures().is_empty());
        wait_until("old copy removed", || std::fs::read_dir(a.path()).unwrap().count() == 0);
        // Asked again for where it is: nothing to do.
        moves.request(p.clone(), 1, 1);
        assert!(moves.futures().is_empty() && !moves.take_swapped());
        moves.shutdown();
    }

    #[test]
    fn a_move_asked_back_to_its_dir_or_stopped_leaves_no_future_log() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (logs, p) = setup(&[a.path(), b.path()], 500);
        // Slow enough to be caught in flight.
        let moves = DirMoves::start(logs.clone(), 1, 20_000.0);
        moves.request(p.clone(), 1, 0);
        wait_until("a future replica", || !moves.futures().is_empty());
        assert_eq!(moves.futures()[0].dir, 1);
        moves.request(p.clone(), 0, 0);
        wait_until("future log dropped", || futures_in(b.path()) == 0);
        assert_eq!(dir_of(&logs, &p), Some(0));
        assert!(!moves.take_swapped());
        // Stopping the broker mid-move drops the future log too, without waiting out the throttle.
        moves.request(p.clone(), 1, 0);
        wait_until("a future replica again", || futures_in(b.path()) == 1);
        let stopping = Instant::now();
        moves.shutdown();
        assert!(stopping.elapsed() < Duration::from_secs(2));
        wait_until("future log dropped at stop", || futures_in(b.path()) == 0);
        assert_eq!(dir_of(&logs, &p), Some(0));
    }
}
