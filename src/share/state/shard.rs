//! One `__share_group_state` partition's share-partition states, as a pure core: events in
//! (read, write, delete, append done), actions out (respond, append). A write appends a
//! ShareSnapshot record and is answered, and applied to the state, only once the append is
//! committed, so a read never sees what a restart could lose.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::ResponseError;

use super::records::{self, ShareState, StateKey, StateRecord};
use super::SHARE_STATE_TOPIC;
use crate::coordinator::codec::CodecError;
use crate::coordinator::runtime::{Action, Core, CoreAction, LoadContext, LogRecord, RequestId, Write};

#[derive(Debug)]
pub(crate) enum Event {
    Read {
        req: RequestId,
        key: StateKey,
    },
    Write {
        req: RequestId,
        key: StateKey,
        state: ShareState,
    },
    Delete {
        req: RequestId,
        key: StateKey,
    },
    /// Kafka's WriteShareGroupState: a new start offset (-1: unchanged) and state batches
    /// overlaid on the latest state (committed or on its way), written as a new snapshot.
    Update {
        req: RequestId,
        key: StateKey,
        state_epoch: i32,
        leader_epoch: i32,
        start_offset: i64,
        batches: Vec<records::StateBatch>,
    },
    Persisted {
        token: u64,
        result: Result<(), ResponseError>,
    },
}

#[derive(Debug)]
pub(crate) enum Response {
    Read(Option<ShareState>),
    Written(Result<(), ResponseError>),
}

/// The share coordinator asks nothing of its shell beyond answers and appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoEffect {}

/// The share coordinator has no timers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum NoTimer {}

/// A write waiting for its append: what it applies once committed.
#[derive(Debug)]
struct Pending {
    req: RequestId,
    key: StateKey,
    state: Option<ShareState>,
}

/// The states of one `__share_group_state` partition.
#[derive(Debug, Default)]
pub(crate) struct ShareStateShard {
    states: HashMap<StateKey, ShareState>,
    pending: BTreeMap<u64, Pending>,
    next_token: u64,
}

impl ShareStateShard {
    /// Rebuilds the states from the partition's records, in log order.
    pub(crate) fn replay(records: Vec<LogRecord>) -> Result<ShareStateShard, CodecError> {
        let mut shard = ShareStateShard::default();
        for r in records {
            let LogRecord::Data { key, value, .. } = r else {
                continue;
            };
            match records::decode(&key, value.as_deref())? {
                Some(StateRecord::Snapshot(k, Some(state))) => {
                    shard.states.insert(k, state);
                }
                Some(StateRecord::Snapshot(k, None)) | Some(StateRecord::Update(k, None)) => {
                    shard.states.remove(&k);
                }
                Some(StateRecord::Update(k, Some((start, batches)))) => {
                    if let Some(s) = shard.states.get_mut(&k) {
                        apply_update(s, start, batches);
                    }
                }
                None => {}
            }
        }
        Ok(shard)
    }

    fn handle_event(&mut self, event: Event) -> Vec<CoreAction<Self>> {
        match event {
            Event::Read { req, key } => vec![Action::Respond {
                req,
                response: Response::Read(self.states.get(&key).cloned()),
            }],
            Event::Write { req, key, mut state } => {
                state.snapshot_epoch = self.states.get(&key).map_or(0, |s| s.snapshot_epoch.wrapping_add(1));
                let record = (
                    records::encode_snapshot_key(&key),
                    Some(records::encode_snapshot_value(&state)),
                );
                self.persist(req, key, Some(state), record)
            }
            Event::Update {
                req,
                key,
                state_epoch,
                leader_epoch,
                start_offset,
                batches,
            } => {
                let mut state = self.latest(&key).unwrap_or_default();
                apply_update(&mut state, start_offset, batches);
                state.state_epoch = state_epoch;
                state.leader_epoch = leader_epoch;
                self.handle_event(Event::Write { req, key, state })
            }
            Event::Delete { req, key } => {
                let record = (records::encode_snapshot_key(&key), None);
                self.persist(req, key, None, record)
            }
            Event::Persisted { token, result } => {
                let Some(p) = self.pending.remove(&token) else {
                    return Vec::new();
                };
                if result.is_ok() {
                    match p.state {
                        Some(s) => self.states.insert(p.key, s),
                        None => self.states.remove(&p.key),
                    };
                }
                vec![Action::Respond {
                    req: p.req,
                    response: Response::Written(result),
                }]
            }
        }
    }

    /// The state as the last write (committed or still on its way) leaves it.
    fn latest(&self, key: &StateKey) -> Option<ShareState> {
        match self.pending.values().rev().find(|p| &p.key == key) {
            Some(p) => p.state.clone(),
            None => self.states.get(key).cloned(),
        }
    }

    fn persist(
        &mut self,
        req: RequestId,
        key: StateKey,
        state: Option<ShareState>,
        record: (bytes::Bytes, Option<bytes::Bytes>),
    ) -> Vec<CoreAction<Self>> {
        self.next_token += 1;
        let token = self.next_token;
        self.pending.insert(token, Pending { req, key, state });
        vec![Action::Persist {
            token,
            write: Write::Records(vec![record]),
        }]
    }
}

/// An update record: a new start offset (unless -1), its batches overlaid on the old ones.
fn apply_update(state: &mut ShareState, start: i64, batches: Vec<records::StateBatch>) {
    if start >= 0 {
        state.start_offset = start;
    }
    for b in batches {
        state
            .batches
            .retain(|o| o.last_offset < b.first_offset || o.first_offset > b.last_offset);
        state.batches.push(b);
    }
    let start = state.start_offset;
    state.batches.retain(|b| b.last_offset >= start);
    state.batches.sort_by_key(|b| b.first_offset);
}

impl Core for ShareStateShard {
    type Event = Event;
    type Response = Response;
    type TimerKey = NoTimer;
    type Effect = NoEffect;
    type Config = ();
    type LoadError = CodecError;
    const TOPIC: &'static str = SHARE_STATE_TOPIC;

    fn load(_: (), ctx: LoadContext, records: Vec<LogRecord>) -> Result<(Self, Vec<CoreAction<Self>>), CodecError> {
        let shard = Self::replay(records)?;
        tracing::debug!(
            partition = ctx.partition,
            states = shard.states.len(),
            "share state partition loaded"
        );
        Ok((shard, Vec::new()))
    }

    fn handle(&mut self, _now_ms: i64, event: Event) -> Vec<CoreAction<Self>> {
        self.handle_event(event)
    }

    fn unload(self) -> Vec<CoreAction<Self>> {
        // Parked writes: their clients hear the coordinator moved.
        self.pending
            .into_values()
            .map(|p| Action::Respond {
                req: p.req,
                response: Response::Written(Err(ResponseError::NotCoordinator)),
            })
            .collect()
    }

    fn persisted(token: u64, result: Result<(), ResponseError>) -> Event {
        Event::Persisted { token, result }
    }

    fn timer_fired(key: NoTimer) -> Event {
        match key {}
    }
}

/// Every share-state shard this broker hosts.
pub(crate) type ShareCoordinator = crate::coordinator::runtime::Coordinator<ShareStateShard>;

#[cfg(test)]
mod tests {
    use super::records::{encode_update, StateBatch, DELIVERY_ACKNOWLEDGED};
    use super::*;

    fn key() -> StateKey {
        StateKey {
            group_id: "g".into(),
            topic_id: uuid::Uuid::from_u128(9),
            partition: 0,
        }
    }

    fn state(start: i64) -> ShareState {
        ShareState {
            start_offset: start,
            ..ShareState::default()
        }
    }

    fn written(actions: &[CoreAction<ShareStateShard>]) -> (u64, Write) {
        match actions {
            [Action::Persist { token, write }] => (*token, write.clone()),
            other => panic!("expected one append, got {other:?}"),
        }
    }

    fn read(shard: &mut ShareStateShard) -> Option<ShareState> {
        match &shard.handle_event(Event::Read { req: 1, key: key() })[..] {
            [Action::Respond {
                response: Response::Read(s),
                ..
            }] => s.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_write_is_seen_only_once_committed_and_replays_from_its_record() {
        let mut shard = ShareStateShard::default();
        let actions = shard.handle_event(Event::Write {
            req: 7,
            key: key(),
            state: state(5),
        });
        let (token, write) = written(&actions);
        assert_eq!(read(&mut shard), None, "not committed yet");
        let answered = shard.handle_event(Event::Persisted { token, result: Ok(()) });
        assert!(matches!(
            &answered[..],
            [Action::Respond {
                req: 7,
                response: Response::Written(Ok(()))
            }]
        ));
        assert_eq!(read(&mut shard).map(|s| s.start_offset), Some(5));
        let Write::Records(records) = write else { panic!() };
        let log: Vec<LogRecord> = records
            .into_iter()
            .map(|(key, value)| LogRecord::Data {
                key,
                value,
                producer_id: None,
            })
            .collect();
        let mut replayed = ShareStateShard::replay(log).unwrap();
        assert_eq!(read(&mut replayed).map(|s| s.start_offset), Some(5));
    }

    #[test]
    fn a_failed_append_changes_nothing_and_a_delete_is_a_tombstone() {
        let mut shard = ShareStateShard::default();
        let (token, _) = written(&shard.handle_event(Event::Write {
            req: 1,
            key: key(),
            state: state(5),
        }));
        shard.handle_event(Event::Persisted {
            token,
            result: Err(ResponseError::NotEnoughReplicas),
        });
        assert_eq!(read(&mut shard), None);
        let (token, write) = written(&shard.handle_event(Event::Delete { req: 2, key: key() }));
        assert!(matches!(write, Write::Records(ref r) if r[0].1.is_none()));
        shard.handle_event(Event::Persisted { token, result: Ok(()) });
        assert_eq!(read(&mut shard), None);
    }

    #[test]
    fn an_update_overlays_the_latest_state_even_before_it_is_committed() {
        let mut shard = ShareStateShard::default();
        shard.handle_event(Event::Write {
            req: 1,
            key: key(),
            state: state(0),
        });
        let batch = |first, state| StateBatch {
            first_offset: first,
            last_offset: first,
            delivery_state: state,
            delivery_count: 1,
        };
        let (token, _) = written(&shard.handle_event(Event::Update {
            req: 2,
            key: key(),
            state_epoch: 1,
            leader_epoch: 0,
            start_offset: -1,
            batches: vec![batch(3, DELIVERY_ACKNOWLEDGED)],
        }));
        shard.handle_event(Event::Persisted {
            token: 1,
            result: Ok(()),
        });
        shard.handle_event(Event::Persisted { token, result: Ok(()) });
        let s = read(&mut shard).unwrap();
        assert_eq!(
            (s.start_offset, s.state_epoch, s.batches),
            (0, 1, vec![batch(3, DELIVERY_ACKNOWLEDGED)])
        );
    }

    #[test]
    fn kafkas_update_records_overlay_the_snapshot() {
        let snapshot = ShareState {
            start_offset: 0,
            batches: vec![StateBatch {
                first_offset: 0,
                last_offset: 4,
                delivery_state: 0,
                delivery_count: 1,
            }],
            ..ShareState::default()
        };
        let update = StateBatch {
            first_offset: 0,
            last_offset: 4,
            delivery_state: DELIVERY_ACKNOWLEDGED,
            delivery_count: 1,
        };
        let (uk, uv) = encode_update(&key(), 5, &[update]);
        let log = vec![
            LogRecord::Data {
                key: records::encode_snapshot_key(&key()),
                value: Some(records::encode_snapshot_value(&snapshot)),
                producer_id: None,
            },
            LogRecord::Data {
                key: uk,
                value: Some(uv),
                producer_id: None,
            },
        ];
        let mut shard = ShareStateShard::replay(log).unwrap();
        let s = read(&mut shard).unwrap();
        assert_eq!(
            (s.start_offset, s.batches.len()),
            (5, 0),
            "the acknowledged batch is below the new start"
        );
    }
}
