//! Start-up time to a first acknowledged record, the same probe for every broker: as soon as
//! the broker's client port accepts connections, create a one-partition topic through the
//! AdminClient (retried until the broker can) and produce one record with acks=1. The time
//! counts from the broker process's spawn to that record's delivery report, so it covers what
//! a client waits for after a restart: the runtime starting, the log loaded, the metadata
//! quorum elected, the topic created and led.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::{producer_config, AckContext, Ctx};

/// Bound on the whole probe, counted from the spawn.
const LIMIT: Duration = Duration::from_secs(90);
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Spawn → the first acknowledged record.
pub fn first_ack(ctx: &Ctx, spawned_at: Instant) -> Result<Duration> {
    let deadline = spawned_at + LIMIT;
    let topic = loop {
        // A new name each time (create_topic numbers them): an attempt that timed out may
        // still have created its topic.
        match ctx.create_topic("startup", 1) {
            Ok(topic) => break topic,
            Err(e) if Instant::now() >= deadline => return Err(e.context("create the start-up probe's topic")),
            Err(_) => std::thread::sleep(RETRY_PAUSE),
        }
    };
    let producer: BaseProducer<AckContext> = BaseProducer::from_config_and_context(
        &producer_config(&ctx.bootstrap, "1", "none", 0),
        AckContext::new(Instant::now()),
    )
    .context("create the start-up probe's producer")?;
    let acks = producer.context();
    while Instant::now() < deadline {
        producer
            .send(BaseRecord::<(), _, _>::with_opaque_to(&topic, 0).payload("first"))
            .map_err(|(e, _)| anyhow!("produce the start-up probe's record: {e}"))?;
        let _ = producer.flush(deadline.saturating_duration_since(Instant::now()));
        let at = spawned_at.elapsed();
        if acks.inner.lock().expect("ack stats").acked > 0 {
            ctx.delete_topics(&[topic]);
            return Ok(at);
        }
        std::thread::sleep(RETRY_PAUSE);
    }
    Err(anyhow!("no record acknowledged within {LIMIT:?} of the broker's start"))
}
