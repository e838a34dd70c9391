//! The network layer: TCP listeners, Kafka framing (i32 size prefix), one task per connection,
//! responses written in request order.
//!
//! Knows bytes and request frames only; hands each frame to `api::dispatch`. Must never look
//! at topics or records.

mod connection;
mod server;

pub(crate) use server::accept_loop;
