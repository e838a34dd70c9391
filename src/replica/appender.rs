//! The threads that write partition logs (`num.io.threads` lanes), so the async workers that
//! serve every connection never wait on a disk: a write that the kernel holds back (dirty
//! page throttling, a slow device, an fsync of `flush.messages`) stalls its lane, not the
//! broker's network.
//!
//! Owns: the lanes and their queues. A job goes to the lane its key picks, and each lane runs
//! its jobs one at a time in the order they came: a connection's produce requests (keyed by
//! connection) are appended in request order, as Kafka requires, and a group coordinator's
//! appends (keyed by its partition) in the order its core made them. Different keys run in
//! parallel; the partition's log lock orders writers that share a partition.
//!
//! The queues are unbounded, yet bounded: every produce job holds its request's charge against
//! `queued.max.request.bytes` until answered, and a coordinator waits on each append it makes.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;
use tracing::error;

type Job = Box<dyn FnOnce() + Send>;

/// The appender lanes.
#[derive(Debug)]
pub(crate) struct Appender {
    lanes: Vec<mpsc::Sender<Job>>,
}

impl Appender {
    /// Starts `lanes` threads (at least one).
    pub(crate) fn start(lanes: usize) -> Appender {
        let lanes = (0..lanes.max(1))
            .map(|i| {
                let (tx, rx) = mpsc::channel::<Job>();
                let spawned = thread::Builder::new().name(format!("sluice-io-{i}")).spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                });
                if let Err(e) = spawned {
                    error!(error = %e, "cannot start a log writer thread");
                }
                tx
            })
            .collect();
        Appender { lanes }
    }

    /// Runs `job` on the lane of `key`, after the jobs of that lane before it; the receiver
    /// gets its result (a closed receiver: the lanes are gone).
    pub(crate) fn run<T: Send + 'static>(
        &self,
        key: u64,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        let lane = &self.lanes[(key % self.lanes.len() as u64) as usize];
        // If the lane is gone, `tx` drops with the job and the receiver reports it.
        let _ = lane.send(Box::new(move || {
            let _ = tx.send(job());
        }));
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lane_runs_its_jobs_in_order_and_lanes_run_side_by_side() {
        let appender = Appender::start(2);
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waits = Vec::new();
        for i in 0..100u64 {
            let order = order.clone();
            waits.push(appender.run(7, move || order.lock().unwrap().push(i)));
        }
        // Another lane is not held up by lane 7's queue.
        let (tx, rx) = std::sync::mpsc::channel();
        appender.run(8, move || tx.send(()).unwrap()).await.unwrap();
        rx.recv().unwrap();
        for w in waits {
            w.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..100).collect::<Vec<_>>());
    }
}
