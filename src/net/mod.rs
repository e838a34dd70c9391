//! The network layer: TCP listeners with their security protocol (TLS, SASL), Kafka framing
//! (i32 size prefix), one task per connection, responses written in request order.
//!
//! Knows bytes, request frames and the stream a connection runs over (plain TCP or TLS, one
//! trait: `stream`); hands each frame to `api::dispatch`. Must never look at topics or records.

mod authenticate;
mod connection;
mod server;
mod stream;

pub(crate) use server::{accept_loop, SecuredListener};
