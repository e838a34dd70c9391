//! The group coordinator on the shared coordinator runtime (`coordinator::runtime`): one shard
//! per `__consumer_offsets` partition this broker leads, each a `GroupCoordinatorState`.
//!
//! Only the glue lives here: how the runtime loads, drives and unloads the core. The runtime
//! appends the core's records on the partition's log writer lane and reports each append back
//! (`Event::Persisted`), in order, once the ISR has it.

use kafka_protocol::ResponseError;

use super::api::{Action, Event, TimerKey};
use super::config::GroupConfig;
use super::coordinator::{handle, GroupCoordinatorState};
use super::records::RecordError;
use super::{replay, OFFSETS_TOPIC};
use crate::coordinator::runtime::{Coordinator, Core, LoadContext, LogRecord};

/// Every group shard this broker hosts.
pub(crate) type GroupCoordinator = Coordinator<GroupCoordinatorState>;

impl Core for GroupCoordinatorState {
    type Event = Event;
    type Response = super::api::Response;
    type TimerKey = TimerKey;
    type Effect = super::api::NoEffect;
    type Config = GroupConfig;
    type LoadError = RecordError;
    const TOPIC: &'static str = OFFSETS_TOPIC;

    fn load(
        config: GroupConfig,
        ctx: LoadContext,
        records: Vec<LogRecord>,
    ) -> Result<(Self, Vec<Action>), RecordError> {
        let loaded = replay::load_log(config, ctx.seed, ctx.now_ms, records)?;
        tracing::debug!(
            partition = ctx.partition,
            skipped = loaded.skipped_records,
            groups = loaded.state.groups.len(),
            "group coordinator partition loaded"
        );
        Ok((loaded.state, loaded.actions))
    }

    fn handle(&mut self, now_ms: i64, event: Event) -> Vec<Action> {
        handle(self, now_ms, event)
    }

    fn unload(self) -> Vec<Action> {
        replay::unload(self)
    }

    fn persisted(token: u64, result: Result<(), ResponseError>) -> Event {
        Event::Persisted { token, result }
    }

    fn timer_fired(key: TimerKey) -> Event {
        Event::TimerFired { key }
    }
}
