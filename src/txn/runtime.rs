//! The transaction coordinator on the shared coordinator runtime (`coordinator::runtime`): one
//! shard per `__transaction_state` partition this broker leads, each a `TxnCoordinatorState`.
//! Its effects (markers to write) go to the marker sender (`marker_sender`).

use kafka_protocol::ResponseError;

use super::api::{Action, Effect, Event, Response, TimerKey};
use super::coordinator::{handle, TxnConfig, TxnCoordinatorState};
use super::records::RecordError;
use super::{replay, TRANSACTION_STATE_TOPIC};
use crate::coordinator::runtime::{Coordinator, Core, LoadContext, LogRecord};

/// Every transaction coordinator shard this broker hosts.
pub(crate) type TxnCoordinator = Coordinator<TxnCoordinatorState>;

impl Core for TxnCoordinatorState {
    type Event = Event;
    type Response = Response;
    type TimerKey = TimerKey;
    type Effect = Effect;
    type Config = TxnConfig;
    type LoadError = RecordError;
    const TOPIC: &'static str = TRANSACTION_STATE_TOPIC;

    fn load(config: TxnConfig, ctx: LoadContext, records: Vec<LogRecord>) -> Result<(Self, Vec<Action>), RecordError> {
        // The coordinator writes no transactions of its own in its partition.
        let records = records.into_iter().filter_map(|r| match r {
            LogRecord::Data {
                key,
                value,
                producer_id: None,
            } => Some((key, value)),
            LogRecord::Data { .. } | LogRecord::Marker { .. } => None,
        });
        let (state, actions) = replay::load(config, ctx.now_ms, records)?;
        tracing::debug!(
            partition = ctx.partition,
            coordinator_epoch = ctx.coordinator_epoch,
            transactional_ids = state.txns.len(),
            "transaction coordinator partition loaded"
        );
        Ok((state, actions))
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
