//! A minimal Kafka protocol client, and the length-prefixed framing that
//! Kafka speaks on the wire.
//!
//! [`KafkaClient`] sends one `kafka_protocol` request at a time over one TCP
//! connection and decodes its response; the broker's replica fetcher,
//! `kraftctl`, the tests and the benchmarks use it. [`frame`] reads and
//! writes whole frames (a big-endian `i32` size, then the bytes); the
//! client and the broker's Kafka listener share it, so the framing exists
//! once. This crate knows nothing of Kraft itself: it speaks to any
//! Kafka-compatible broker.

#![forbid(unsafe_code)]

pub mod client;
pub mod frame;

pub use client::{KafkaClient, KafkaClientError, MAX_RESPONSE_BYTES};
pub use frame::{FrameError, FramedConnection};
