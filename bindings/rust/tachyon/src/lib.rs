//! Safe Rust API for Tachyon: zero-copy messaging between two processes on
//! one machine through a ring in shared memory.
//!
//! One [`Bus`] joins exactly two processes. The listener creates the shared
//! segment and waits on a Unix socket; the connector receives the segment's
//! file descriptor; after that no byte goes through the kernel. Whichever side
//! sends is the producer, the other the consumer.
//!
//! Messages are written in place with a [`TxGuard`] (commit on drop, roll back
//! when dropped during a panic) and read in place with an [`RxGuard`] (the slot
//! is released on drop), or in batches with [`Batch`].
//!
//! ```no_run
//! use tachyon::{Bus, ErrorKind};
//!
//! # fn main() -> tachyon::Result<()> {
//! // Consumer: owns the socket, blocks until the producer connects.
//! let mut bus = Bus::listen("/tmp/quotes.sock", 1 << 20)?;
//! loop {
//!     match bus.recv() {
//!         Ok(msg) => println!("type {} with {} bytes", msg.type_id(), msg.data().len()),
//!         // The producer closed the bus (or, PeerDead, died) and all was read.
//!         Err(e) if matches!(e.kind(), ErrorKind::PeerClosed | ErrorKind::PeerDead) => break,
//!         Err(e) => return Err(e), // Display says what went wrong, with the C library's detail
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ```no_run
//! use tachyon::Bus;
//!
//! # fn main() -> tachyon::Result<()> {
//! // Producer: copy a message in, or write it in place.
//! let mut bus = Bus::connect("/tmp/quotes.sock")?;
//! bus.send(b"hello", 1)?;
//! let mut tx = bus.acquire_tx(16, None)?;
//! tx.buf()[..5].copy_from_slice(b"world");
//! tx.set_len(5);
//! tx.set_type_id(2);
//! tx.commit()?;
//! # Ok(())
//! # }
//! ```
//!
//! Fan-out (one producer, many readers, one shared ring) and fan-in (many
//! producers, one reader, round robin) are in the [`fan`] module.
//!
//! Request/reply (a client calls, a server answers, over two rings) is in
//! [`RpcClient`] and [`RpcServer`]; see the [`rpc`] module.
//!
//! Errors are [`Error`]s: a kind to match on ([`Error::kind`], an
//! [`ErrorKind`]) and the C library's sentence about what went wrong (the
//! path and the system's reason, the peer's pid), which Display and Debug
//! print.
//!
//! # Threads
//!
//! The C library lets one producer thread and one consumer thread use a bus
//! at the same time, never two threads on one side (the ring is
//! single-producer, single-consumer). This crate's handles take `&mut self`
//! for every call, so each is used by one thread at a time: a [`Bus`] (and
//! an [`RpcClient`] or [`RpcServer`]) is `Send` (move it to the thread that
//! uses it) but not `Sync`:
//!
//! ```compile_fail
//! fn shared_between_threads<T: Sync>() {}
//! shared_between_threads::<tachyon::Bus>();
//! ```
//!
//! ```compile_fail
//! fn shared_between_threads<T: Sync>() {}
//! shared_between_threads::<tachyon::RpcClient>();
//! ```

#[cfg(feature = "tokio")]
mod async_bus;
mod bus;
mod error;
pub mod fan;
pub mod rpc;
mod rx;
mod tx;

#[cfg(feature = "tokio")]
pub use async_bus::AsyncBus;
pub use bus::{Bus, ListenOptions, PollingMode, State, Stats, Wait};
pub use error::{Error, ErrorKind, Result};
pub use fan::{FanIn, FanInEvent, FanMessage, FanOut, FanOutReader, FanTxGuard};
pub use rpc::{Reply, Request, RpcClient, RpcServer, MSG_TYPE_ERROR};
pub use rx::{Batch, BatchIter, Message, RxGuard};
pub use tx::TxGuard;

/// Re-export of the raw bindings, for what this crate does not wrap.
pub use tachyon_sys as sys;

/// A type id from a route (bits 31..16) and a message type (bits 15..0).
///
/// ```
/// assert_eq!(tachyon::make_type_id(1, 2), 0x0001_0002);
/// assert_eq!(tachyon::route_id(0x0001_0002), 1);
/// assert_eq!(tachyon::msg_type(0x0001_0002), 2);
/// ```
pub const fn make_type_id(route: u16, msg_type: u16) -> u32 {
    sys::TACHYON_TYPE_ID(route as u32, msg_type as u32)
}

/// The route id of a type id (bits 31..16).
pub const fn route_id(type_id: u32) -> u16 {
    sys::TACHYON_ROUTE_ID(type_id)
}

/// The message type of a type id (bits 15..0).
pub const fn msg_type(type_id: u32) -> u16 {
    sys::TACHYON_MSG_TYPE(type_id)
}
