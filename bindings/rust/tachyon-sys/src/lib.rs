//! Raw FFI declarations for the Tachyon C library (`include/tachyon.h`).
//!
//! Tachyon moves messages between two processes on one machine through a
//! ring in shared memory: after a Unix-socket handshake no byte goes through
//! the kernel. This crate declares the C API by hand, one item per item of the
//! header, and builds or links the library (see `build.rs`). It adds nothing:
//! for a safe API use the `tachyon` crate.
//!
//! Every function is `unsafe`: the caller upholds the C contract written above
//! each declaration (a live bus pointer, one producer and one consumer thread
//! per bus, commit after acquire).
//!
//! # Example: a consumer, as the C API is called from Rust
//!
//! ```no_run
//! use std::ffi::CString;
//! use std::ptr;
//! use tachyon_sys::*;
//!
//! let path = CString::new("/tmp/example.sock").unwrap();
//! let mut rx: *mut tachyon_bus_t = ptr::null_mut();
//! // SAFETY: path is NUL-terminated and rx a valid out-pointer.
//! let rc = unsafe { tachyon_bus_listen(path.as_ptr(), 1 << 20, &mut rx) };
//! assert_eq!(rc, TACHYON_SUCCESS);
//! let (mut type_id, mut size) = (0u32, 0usize);
//! // SAFETY: rx is a live bus; the slot is read before it is committed.
//! unsafe {
//!     let ptr = tachyon_acquire_rx_blocking(rx, &mut type_id, &mut size, 10_000);
//!     if !ptr.is_null() {
//!         let bytes = std::slice::from_raw_parts(ptr as *const u8, size);
//!         println!("type {type_id}: {} bytes", bytes.len());
//!         tachyon_commit_rx(rx);
//!     }
//!     tachyon_bus_destroy(rx);
//! }
//! ```
#![allow(non_camel_case_types, non_snake_case)]
#![no_std]

use core::ffi::{c_char, c_int, c_uint, c_void};

/// A C `enum` of error codes (`tachyon_error_t`). Kept as a plain integer:
/// a Rust enum would be undefined behaviour for a value it does not list.
pub type tachyon_error_t = c_uint;
/// A C `enum` of bus states (`tachyon_state_t`), as in the segment header.
pub type tachyon_state_t = c_uint;
/// `uid_t` on Linux.
pub type uid_t = u32;

pub const TACHYON_SUCCESS: tachyon_error_t = 0;
/// A required pointer argument was NULL.
pub const TACHYON_ERR_NULL_PTR: tachyon_error_t = 1;
/// Out of memory.
pub const TACHYON_ERR_MEM: tachyon_error_t = 2;
/// memfd_create or socket creation failed.
pub const TACHYON_ERR_OPEN: tachyon_error_t = 3;
/// ftruncate failed, or the fd is smaller than claimed.
pub const TACHYON_ERR_TRUNCATE: tachyon_error_t = 4;
/// The socket file's permissions could not be set.
pub const TACHYON_ERR_CHMOD: tachyon_error_t = 5;
/// Seals could not be applied, or the peer's fd lacks them.
pub const TACHYON_ERR_SEAL: tachyon_error_t = 6;
/// mmap failed.
pub const TACHYON_ERR_MAP: tachyon_error_t = 7;
/// A size or capacity out of range.
pub const TACHYON_ERR_INVALID_SZ: tachyon_error_t = 8;
/// No room in the ring (or a timed wait for room expired).
pub const TACHYON_ERR_FULL: tachyon_error_t = 9;
/// Nothing to read.
pub const TACHYON_ERR_EMPTY: tachyon_error_t = 10;
/// Socket bind/connect/accept/send/recv failed.
pub const TACHYON_ERR_NETWORK: tachyon_error_t = 11;
/// Another system call failed.
pub const TACHYON_ERR_SYSTEM: tachyon_error_t = 12;
/// A signal interrupted a blocking call.
pub const TACHYON_ERR_INTERRUPTED: tachyon_error_t = 13;
/// Handshake or segment header does not match ABI v4.
pub const TACHYON_ERR_ABI_MISMATCH: tachyon_error_t = 14;
/// The peer process ended (or was killed) without closing the bus.
pub const TACHYON_ERR_PEER_DEAD: tachyon_error_t = 15;
/// The peer's uid is not allowed.
pub const TACHYON_ERR_PERMISSION: tachyon_error_t = 16;
/// The shared segment is corrupt; the bus is unusable.
pub const TACHYON_ERR_FATAL: tachyon_error_t = 17;
/// Call out of order (commit without acquire, ...).
pub const TACHYON_ERR_STATE: tachyon_error_t = 18;
/// A timed wait expired.
pub const TACHYON_ERR_TIMEOUT: tachyon_error_t = 19;
/// A live listener owns the socket path.
pub const TACHYON_ERR_ADDR_IN_USE: tachyon_error_t = 20;
/// The socket path exists and is not a socket.
pub const TACHYON_ERR_NOT_SOCKET: tachyon_error_t = 21;
/// The socket path does not fit in `sun_path`.
pub const TACHYON_ERR_PATH_TOO_LONG: tachyon_error_t = 22;
/// The peer closed the bus (a clean end of stream).
pub const TACHYON_ERR_PEER_CLOSED: tachyon_error_t = 23;
/// The handle belongs to the parent of this fork()ed process.
pub const TACHYON_ERR_FORKED: tachyon_error_t = 24;
/// Request/reply: the next reply answers another call.
pub const TACHYON_ERR_WRONG_REPLY: tachyon_error_t = 25;
/// Fan-out: this consumer fell a whole ring behind and was dropped
/// ([`tachyon_fanout_missed`] gives the count of messages it lost).
pub const TACHYON_ERR_OVERRUN: tachyon_error_t = 26;

pub const TACHYON_STATE_UNINITIALIZED: tachyon_state_t = 0;
pub const TACHYON_STATE_INITIALIZING: tachyon_state_t = 1;
pub const TACHYON_STATE_READY: tachyon_state_t = 2;
/// The peer is gone (crash or clean destroy).
pub const TACHYON_STATE_DISCONNECTED: tachyon_state_t = 3;
/// A corrupt header or counter was seen.
pub const TACHYON_STATE_FATAL_ERROR: tachyon_state_t = 4;
pub const TACHYON_STATE_UNKNOWN: tachyon_state_t = 5;

/// [`tachyon_bus_fd_arm`]: wait for a message (or the peer's end, or fatal).
pub const TACHYON_WAIT_RX: c_uint = 1;
/// [`tachyon_bus_fd_arm`]: wait for room after the ring was full.
pub const TACHYON_WAIT_TX: c_uint = 2;

/// The largest `commits` [`tachyon_bus_set_publish_batch`] takes.
pub const TACHYON_MAX_PUBLISH_BATCH: u32 = 4096;

/// How many uids a listener's allowlist holds.
pub const TACHYON_MAX_ALLOWED_UIDS: usize = 16;

/// `TACHYON_TYPE_ID(route, type)`: bits 31..16 route id, bits 15..0 message type;
/// as in C, the type is not masked (a type above 0xFFFF spills into the route).
#[inline]
pub const fn TACHYON_TYPE_ID(route: u32, msg_type: u32) -> u32 {
    (route << 16) | msg_type
}

/// `TACHYON_ROUTE_ID(id)`: the route id in bits 31..16.
#[inline]
pub const fn TACHYON_ROUTE_ID(id: u32) -> u16 {
    ((id >> 16) & 0xFFFF) as u16
}

/// `TACHYON_MSG_TYPE(id)`: the message type in bits 15..0.
#[inline]
pub const fn TACHYON_MSG_TYPE(id: u32) -> u16 {
    (id & 0xFFFF) as u16
}

/// An opaque bus handle (`tachyon_bus_t`). Only ever used behind a pointer.
#[repr(C)]
pub struct tachyon_bus_t {
    _private: [u8; 0],
    // Neither Send, Sync nor Unpin: the C object is not thread-safe.
    _marker: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
}

/// An opaque request/reply handle (`tachyon_rpc_bus_t`): two rings, one
/// caller and one server. Only ever used behind a pointer.
#[repr(C)]
pub struct tachyon_rpc_bus_t {
    _private: [u8; 0],
    // Neither Send, Sync nor Unpin: the C object is not thread-safe.
    _marker: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
}

/// One received message in a batch (`tachyon_msg_view_t`, 32 bytes on 64-bit).
/// `reserved_` is private to the library.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tachyon_msg_view_t {
    pub ptr: *const c_void,
    pub actual_size: usize,
    pub reserved_: usize,
    pub type_id: u32,
    pub padding_: u32,
}

impl Default for tachyon_msg_view_t {
    fn default() -> Self {
        Self { ptr: core::ptr::null(), actual_size: 0, reserved_: 0, type_id: 0, padding_: 0 }
    }
}

/// What a bus has been doing, as seen from one handle (`tachyon_stats_t`);
/// filled by [`tachyon_bus_stats`]. See `tachyon.h` for each field.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tachyon_stats_t {
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
    pub ring_full: u64,
    pub sleeps: u64,
    pub wakeups: u64,
    pub capacity: u64,
    pub fill_bytes: u64,
    pub fill_max_bytes: u64,
    pub lag_messages: u64,
    pub idle_ns: u64,
    pub peer_pid: i32,
    pub peer_alive: i32,
    pub features: u32,
    pub state: u32,
}

/// One side's counters as a monitor reads them (`tachyon_side_info_t`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tachyon_side_info_t {
    pub pid: i32,
    pub valid: i32,
    pub messages: u64,
    pub bytes: u64,
    pub stalls: u64,
    pub wakes: u64,
    pub fill_max: u64,
    pub updated_ns: u64,
    pub active_ns: u64,
}

/// A segment read from the outside (`tachyon_segment_info_t`), by
/// [`tachyon_segment_inspect`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tachyon_segment_info_t {
    pub version: u32,
    pub state: u32,
    pub capacity: u64,
    pub head: u64,
    pub tail: u64,
    pub features: u32,
    pub consumer_sleeping: u32,
    pub producer: tachyon_side_info_t,
    pub consumer: tachyon_side_info_t,
}

/// Listener options (`tachyon_listen_opts_t`); fill with [`tachyon_listen_opts_init`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tachyon_listen_opts_t {
    pub capacity: usize,
    /// < 0 waits forever.
    pub timeout_ms: c_int,
    pub keep_waiting: c_int,
    /// 0 = the listener's own uid only.
    pub n_allowed_uids: c_uint,
    pub allowed_uids: [uid_t; TACHYON_MAX_ALLOWED_UIDS],
}

extern "C" {
    // ---- Published API -------------------------------------------------------

    /// Create a segment with a ring of `capacity` bytes (a power of two, 64 B
    /// to 1 GiB), bind `socket_path`, wait for exactly one peer, hand it the
    /// segment and remove the socket file. Blocks; a signal returns
    /// `TACHYON_ERR_INTERRUPTED`. On success `*out` holds one reference.
    pub fn tachyon_bus_listen(socket_path: *const c_char, capacity: usize, out: *mut *mut tachyon_bus_t)
        -> tachyon_error_t;
    /// Connect to a listener at `socket_path` and map the segment it hands
    /// over. One attempt; the listener must run as our uid or root.
    pub fn tachyon_bus_connect(socket_path: *const c_char, out: *mut *mut tachyon_bus_t) -> tachyon_error_t;
    /// Take one more reference; each one is dropped by [`tachyon_bus_destroy`].
    pub fn tachyon_bus_ref(bus: *mut tachyon_bus_t);
    /// Drop one reference; the last marks the bus disconnected, wakes the peer
    /// and unmaps. NULL is a no-op.
    pub fn tachyon_bus_destroy(bus: *mut tachyon_bus_t);
    /// Bind the segment's pages to a NUMA node. `TACHYON_ERR_SYSTEM` if unsupported.
    pub fn tachyon_bus_set_numa_node(bus: *const tachyon_bus_t, node_id: c_int) -> tachyon_error_t;
    /// Consumer side: `pure_spin != 0` means the consumer never sleeps.
    pub fn tachyon_bus_set_polling_mode(bus: *const tachyon_bus_t, pure_spin: c_int);
    /// Read the segment behind a memfd descriptor from the outside (a monitor).
    pub fn tachyon_segment_inspect(fd: c_int, out: *mut tachyon_segment_info_t) -> tachyon_error_t;
    /// A descriptor for poll/select/epoll (owned by the handle); -1 on error.
    pub fn tachyon_bus_fd(bus: *mut tachyon_bus_t) -> c_int;
    /// Clear and arm the descriptor for [`TACHYON_WAIT_RX`] and/or
    /// [`TACHYON_WAIT_TX`]: 1 ready now (do not wait), 0 armed, -1 error.
    pub fn tachyon_bus_fd_arm(bus: *mut tachyon_bus_t, what: c_uint) -> c_int;
    /// Fill `*out` with what the bus has been doing, as seen from this handle.
    pub fn tachyon_bus_stats(bus: *mut tachyon_bus_t, out: *mut tachyon_stats_t) -> tachyon_error_t;
    /// Producer side: store head every `commits` commits (1, the default:
    /// every commit is visible at once); at most [`TACHYON_MAX_PUBLISH_BATCH`].
    pub fn tachyon_bus_set_publish_batch(bus: *mut tachyon_bus_t, commits: u32) -> tachyon_error_t;
    /// Reserve a slot for up to `max_payload_size` bytes; its payload pointer
    /// (64-byte aligned) or NULL (see [`tachyon_bus_last_error`]). Non-blocking.
    pub fn tachyon_acquire_tx(bus: *mut tachyon_bus_t, max_payload_size: usize) -> *mut c_void;
    /// Commit the acquired slot with its real size and publish it.
    pub fn tachyon_commit_tx(bus: *mut tachyon_bus_t, actual_payload_size: usize, type_id: u32)
        -> tachyon_error_t;
    /// Give the acquired slot back unpublished.
    pub fn tachyon_rollback_tx(bus: *mut tachyon_bus_t) -> tachyon_error_t;
    /// Publish everything committed and wake a sleeping consumer.
    pub fn tachyon_flush(bus: *mut tachyon_bus_t);

    /// Non-blocking receive: the next payload or NULL. The slot stays ours
    /// until [`tachyon_commit_rx`].
    pub fn tachyon_acquire_rx(bus: *mut tachyon_bus_t, out_type_id: *mut u32, out_actual_size: *mut usize)
        -> *const c_void;
    /// As [`tachyon_acquire_rx`], polling up to `max_spins` times.
    pub fn tachyon_acquire_rx_spin(
        bus: *mut tachyon_bus_t,
        out_type_id: *mut u32,
        out_actual_size: *mut usize,
        max_spins: u32,
    ) -> *const c_void;
    /// Wait for the next message: spin `spin_threshold` times, then sleep.
    /// NULL when interrupted, fatal, or the peer is gone and everything it
    /// committed was read ([`tachyon_get_state`] tells which).
    pub fn tachyon_acquire_rx_blocking(
        bus: *mut tachyon_bus_t,
        out_type_id: *mut u32,
        out_actual_size: *mut usize,
        spin_threshold: u32,
    ) -> *const c_void;
    /// Release the slot returned by the last acquire_rx* call.
    pub fn tachyon_commit_rx(bus: *mut tachyon_bus_t) -> tachyon_error_t;
    /// Fill up to `max_msgs` views with the messages available now; how many.
    pub fn tachyon_acquire_rx_batch(bus: *mut tachyon_bus_t, out: *mut tachyon_msg_view_t, max_msgs: usize)
        -> usize;
    /// As [`tachyon_acquire_rx_batch`], waiting for at least one message.
    /// 0: interrupted, fatal or peer gone.
    pub fn tachyon_drain_batch(
        bus: *mut tachyon_bus_t,
        out: *mut tachyon_msg_view_t,
        max_msgs: usize,
        spin_threshold: u32,
    ) -> usize;
    /// Release the first `count` views of the last batch.
    pub fn tachyon_commit_rx_batch(bus: *mut tachyon_bus_t, views: *const tachyon_msg_view_t, count: usize)
        -> tachyon_error_t;

    /// READY, DISCONNECTED (peer gone), FATAL_ERROR (corrupt segment), ...
    pub fn tachyon_get_state(bus: *const tachyon_bus_t) -> tachyon_state_t;
    /// A full acquire fence, for callers that read shared memory by hand.
    pub fn tachyon_memory_barrier_acquire();

    // ---- Additions of this project ------------------------------------------

    /// A static English message for an error code ("unknown error" for others).
    pub fn tachyon_strerror(err: tachyon_error_t) -> *const c_char;

    /// The best sentence for `err` just returned to the calling thread: the
    /// recorded details (path, system error, peer pid) if any, else the
    /// strerror text. Valid until this thread's next call into the library.
    pub fn tachyon_error_message(err: tachyon_error_t) -> *const c_char;
    /// The error behind the last NULL/0/failed result of a call on this bus.
    pub fn tachyon_bus_last_error(bus: *const tachyon_bus_t) -> tachyon_error_t;
    /// Default options: own uid only, wait forever, the given capacity.
    pub fn tachyon_listen_opts_init(opts: *mut tachyon_listen_opts_t, capacity: usize);
    /// Add a uid to the allowlist (`TACHYON_ERR_INVALID_SZ` when full).
    pub fn tachyon_listen_opts_allow_uid(opts: *mut tachyon_listen_opts_t, uid: uid_t) -> tachyon_error_t;
    /// [`tachyon_bus_listen`] with options (timeout, allowed uids).
    pub fn tachyon_bus_listen_ex(
        socket_path: *const c_char,
        opts: *const tachyon_listen_opts_t,
        out: *mut *mut tachyon_bus_t,
    ) -> tachyon_error_t;
    /// Connect, retrying while nothing listens yet, for up to `timeout_ms` (< 0:
    /// forever). Accepts a listener running as our own uid or root, refuses
    /// any other with `TACHYON_ERR_PERMISSION`.
    pub fn tachyon_bus_connect_timeout(socket_path: *const c_char, timeout_ms: c_int, out: *mut *mut tachyon_bus_t)
        -> tachyon_error_t;
    /// As [`tachyon_bus_connect_timeout`], accepting only listeners whose uid
    /// is one of `allowed_uids` (at most [`TACHYON_MAX_ALLOWED_UIDS`]; none =
    /// the default rule).
    pub fn tachyon_bus_connect_ex(
        socket_path: *const c_char,
        timeout_ms: c_int,
        allowed_uids: *const uid_t,
        n_allowed_uids: usize,
        out: *mut *mut tachyon_bus_t,
    ) -> tachyon_error_t;
    /// [`tachyon_acquire_rx_blocking`] with a deadline (NULL with `TACHYON_ERR_TIMEOUT`).
    pub fn tachyon_acquire_rx_timeout(
        bus: *mut tachyon_bus_t,
        out_type_id: *mut u32,
        out_actual_size: *mut usize,
        spin_threshold: u32,
        timeout_ms: c_int,
    ) -> *const c_void;
    /// [`tachyon_drain_batch`] with a deadline (0 with `TACHYON_ERR_TIMEOUT`).
    pub fn tachyon_drain_batch_timeout(
        bus: *mut tachyon_bus_t,
        out: *mut tachyon_msg_view_t,
        max_msgs: usize,
        spin_threshold: u32,
        timeout_ms: c_int,
    ) -> usize;
    /// Producer side: wait for room for up to `timeout_ms` (< 0: forever).
    pub fn tachyon_acquire_tx_blocking(
        bus: *mut tachyon_bus_t,
        max_payload_size: usize,
        spin_threshold: u32,
        timeout_ms: c_int,
    ) -> *mut c_void;
    /// Copy `size` bytes in, commit and publish. Non-blocking (`TACHYON_ERR_FULL`).
    pub fn tachyon_send(bus: *mut tachyon_bus_t, data: *const c_void, size: usize, type_id: u32) -> tachyon_error_t;
    /// Send `count` records of `record_size` bytes, one message each, publish
    /// once; returns how many were sent. Non-blocking.
    pub fn tachyon_send_batch(
        bus: *mut tachyon_bus_t,
        records: *const c_void,
        record_size: usize,
        count: usize,
        type_id: u32,
    ) -> usize;
    /// 1 when the peer is alive and has not destroyed the bus, else 0.
    pub fn tachyon_peer_alive(bus: *mut tachyon_bus_t) -> c_int;
    /// The ring's capacity in bytes.
    pub fn tachyon_bus_capacity(bus: *const tachyon_bus_t) -> usize;
    /// The largest payload one message can carry.
    pub fn tachyon_bus_max_payload(bus: *const tachyon_bus_t) -> usize;

    // ---- Request/reply (published: listen .. get_state) ------------------------
    //
    // The listener is the server (serve, commit_serve, reply, acquire_reply_tx,
    // commit_reply, rollback_reply); the connector is the caller (call,
    // acquire_tx, commit_call, rollback_call, wait, commit_rx, abandon). A
    // handle refuses the other role's calls with `TACHYON_ERR_STATE`. Sending
    // calls are one side, receiving calls the other: one thread at a time per
    // side. Replies come in the order the calls were made.

    /// Server: create the request ring (`cap_fwd` bytes) and the reply ring
    /// (`cap_rev`), wait for one caller at `socket_path`. Blocks.
    pub fn tachyon_rpc_listen(
        socket_path: *const c_char,
        cap_fwd: usize,
        cap_rev: usize,
        out: *mut *mut tachyon_rpc_bus_t,
    ) -> tachyon_error_t;
    /// Caller: connect to a request/reply listener, one attempt.
    pub fn tachyon_rpc_connect(socket_path: *const c_char, out: *mut *mut tachyon_rpc_bus_t) -> tachyon_error_t;
    /// Drop one reference; the last closes this end and frees the handle. NULL is a no-op.
    pub fn tachyon_rpc_destroy(rpc: *mut tachyon_rpc_bus_t);
    /// Take one more reference on the handle.
    pub fn tachyon_rpc_ref(rpc: *mut tachyon_rpc_bus_t);
    /// Caller: copy `size` bytes into a request, publish it, set `*out_cid`. Non-blocking.
    pub fn tachyon_rpc_call(
        rpc: *mut tachyon_rpc_bus_t,
        payload: *const c_void,
        size: usize,
        msg_type: u32,
        out_cid: *mut u64,
    ) -> tachyon_error_t;
    /// Caller: reserve a request slot (64-byte aligned); NULL when full or too large.
    pub fn tachyon_rpc_acquire_tx(rpc: *mut tachyon_rpc_bus_t, max_size: usize) -> *mut c_void;
    /// Caller: publish the acquired slot as a request; each attempt uses an id.
    pub fn tachyon_rpc_commit_call(
        rpc: *mut tachyon_rpc_bus_t,
        actual_size: usize,
        msg_type: u32,
        out_cid: *mut u64,
    ) -> tachyon_error_t;
    /// Caller: give the acquired slot back unsent.
    pub fn tachyon_rpc_rollback_call(rpc: *mut tachyon_rpc_bus_t);
    /// Caller: wait for the reply to `cid` (0: the next one); valid until
    /// [`tachyon_rpc_commit_rx`]. NULL: see [`tachyon_rpc_last_error`].
    pub fn tachyon_rpc_wait(
        rpc: *mut tachyon_rpc_bus_t,
        cid: u64,
        out_size: *mut usize,
        out_msg_type: *mut u32,
        spin: u32,
    ) -> *const c_void;
    /// Caller: release the reply the last wait returned.
    pub fn tachyon_rpc_commit_rx(rpc: *mut tachyon_rpc_bus_t) -> tachyon_error_t;
    /// Server: wait for the next request (outputs: id, type, size).
    pub fn tachyon_rpc_serve(
        rpc: *mut tachyon_rpc_bus_t,
        out_cid: *mut u64,
        out_msg_type: *mut u32,
        out_size: *mut usize,
        spin: u32,
    ) -> *const c_void;
    /// Server: release the request the last serve returned.
    pub fn tachyon_rpc_commit_serve(rpc: *mut tachyon_rpc_bus_t) -> tachyon_error_t;
    /// Server: copy `size` bytes into the reply to `cid` and publish it. Non-blocking.
    pub fn tachyon_rpc_reply(
        rpc: *mut tachyon_rpc_bus_t,
        cid: u64,
        payload: *const c_void,
        size: usize,
        msg_type: u32,
    ) -> tachyon_error_t;
    /// Server: reserve a reply slot.
    pub fn tachyon_rpc_acquire_reply_tx(rpc: *mut tachyon_rpc_bus_t, max_size: usize) -> *mut c_void;
    /// Server: publish the acquired slot as the reply to `cid` (0 refused, slot kept).
    pub fn tachyon_rpc_commit_reply(
        rpc: *mut tachyon_rpc_bus_t,
        cid: u64,
        actual_size: usize,
        msg_type: u32,
    ) -> tachyon_error_t;
    /// Server: give the acquired reply slot back unsent.
    pub fn tachyon_rpc_rollback_reply(rpc: *mut tachyon_rpc_bus_t);
    /// `pure_spin != 0`: this side's waits never sleep.
    pub fn tachyon_rpc_set_polling_mode(rpc: *const tachyon_rpc_bus_t, pure_spin: c_int);
    /// FATAL_ERROR, DISCONNECTED, READY or UNKNOWN.
    pub fn tachyon_rpc_get_state(rpc: *const tachyon_rpc_bus_t) -> tachyon_state_t;

    // ---- Request/reply: additions of this project ------------------------------

    /// [`tachyon_rpc_listen`] with listener options (`opts.capacity` ignored; NULL: defaults).
    pub fn tachyon_rpc_listen_ex(
        socket_path: *const c_char,
        cap_fwd: usize,
        cap_rev: usize,
        opts: *const tachyon_listen_opts_t,
        out: *mut *mut tachyon_rpc_bus_t,
    ) -> tachyon_error_t;
    /// Connect, retrying while nothing listens yet, for up to `timeout_ms` (< 0: forever).
    pub fn tachyon_rpc_connect_timeout(
        socket_path: *const c_char,
        timeout_ms: c_int,
        out: *mut *mut tachyon_rpc_bus_t,
    ) -> tachyon_error_t;
    /// [`tachyon_rpc_connect_timeout`] accepting only listeners of `allowed_uids`.
    pub fn tachyon_rpc_connect_ex(
        socket_path: *const c_char,
        timeout_ms: c_int,
        allowed_uids: *const uid_t,
        n_allowed_uids: usize,
        out: *mut *mut tachyon_rpc_bus_t,
    ) -> tachyon_error_t;
    /// [`tachyon_rpc_wait`] with a deadline (NULL with `TACHYON_ERR_TIMEOUT`).
    pub fn tachyon_rpc_wait_timeout(
        rpc: *mut tachyon_rpc_bus_t,
        cid: u64,
        out_size: *mut usize,
        out_msg_type: *mut u32,
        spin: u32,
        timeout_ms: c_int,
    ) -> *const c_void;
    /// [`tachyon_rpc_serve`] with a deadline.
    pub fn tachyon_rpc_serve_timeout(
        rpc: *mut tachyon_rpc_bus_t,
        out_cid: *mut u64,
        out_msg_type: *mut u32,
        out_size: *mut usize,
        spin: u32,
        timeout_ms: c_int,
    ) -> *const c_void;
    /// [`tachyon_rpc_acquire_tx`] waiting for room up to `timeout_ms` (< 0: forever).
    pub fn tachyon_rpc_acquire_tx_timeout(rpc: *mut tachyon_rpc_bus_t, max_size: usize, timeout_ms: c_int)
        -> *mut c_void;
    /// [`tachyon_rpc_acquire_reply_tx`] waiting for room.
    pub fn tachyon_rpc_acquire_reply_tx_timeout(
        rpc: *mut tachyon_rpc_bus_t,
        max_size: usize,
        timeout_ms: c_int,
    ) -> *mut c_void;
    /// Caller: give up on call `cid`; its reply is dropped when it comes.
    pub fn tachyon_rpc_abandon(rpc: *mut tachyon_rpc_bus_t, cid: u64) -> tachyon_error_t;
    /// The error behind this thread's last failed call on the handle.
    pub fn tachyon_rpc_last_error(rpc: *const tachyon_rpc_bus_t) -> tachyon_error_t;
    /// 1 while the peer lives and has not destroyed its handle.
    pub fn tachyon_rpc_peer_alive(rpc: *mut tachyon_rpc_bus_t) -> c_int;
    /// The largest request payload.
    pub fn tachyon_rpc_max_request(rpc: *const tachyon_rpc_bus_t) -> usize;
    /// The largest reply payload.
    pub fn tachyon_rpc_max_reply(rpc: *const tachyon_rpc_bus_t) -> usize;
}

// ---- Fan-out and fan-in ----------------------------------------------------------

/// An opaque fan-out producer (`tachyon_fanout_t`).
#[repr(C)]
pub struct tachyon_fanout_t {
    _private: [u8; 0],
    _marker: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
}

/// An opaque fan-out consumer (`tachyon_fanout_rx_t`).
#[repr(C)]
pub struct tachyon_fanout_rx_t {
    _private: [u8; 0],
    _marker: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
}

/// An opaque fan-in consumer (`tachyon_fanin_t`).
#[repr(C)]
pub struct tachyon_fanin_t {
    _private: [u8; 0],
    _marker: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
}

/// `tachyon_fan_policy_t`.
pub type tachyon_fan_policy_t = c_uint;
/// The producer waits for the slowest consumer.
pub const TACHYON_FAN_BLOCK: tachyon_fan_policy_t = 0;
/// The producer drops a consumer a whole ring behind.
pub const TACHYON_FAN_DROP_SLOW: tachyon_fan_policy_t = 1;

/// `tachyon_fan_start_t`.
pub type tachyon_fan_start_t = c_uint;
/// Start at the newest message in the ring.
pub const TACHYON_FAN_START_NEWEST: tachyon_fan_start_t = 0;
/// Start at the oldest message still in the ring.
pub const TACHYON_FAN_START_OLDEST: tachyon_fan_start_t = 1;

/// One received fan message (`tachyon_fan_msg_t`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tachyon_fan_msg_t {
    pub ptr: *const c_void,
    pub size: usize,
    pub type_id: u32,
    pub producer: u32,
    pub pid: i32,
    pub reserved_: u32,
    pub seq: u64,
}

impl Default for tachyon_fan_msg_t {
    fn default() -> Self {
        Self { ptr: core::ptr::null(), size: 0, type_id: 0, producer: 0, pid: 0, reserved_: 0, seq: 0 }
    }
}

extern "C" {
    /// Producer: create the ring and admit up to `max_consumers` consumers at `socket_path`.
    pub fn tachyon_fanout_listen(
        socket_path: *const c_char,
        capacity: usize,
        max_consumers: u32,
        policy: tachyon_fan_policy_t,
        out: *mut *mut tachyon_fanout_t,
    ) -> tachyon_error_t;
    /// [`tachyon_fanout_listen`] with listener options (NULL: defaults).
    pub fn tachyon_fanout_listen_ex(
        socket_path: *const c_char,
        capacity: usize,
        max_consumers: u32,
        policy: tachyon_fan_policy_t,
        opts: *const tachyon_listen_opts_t,
        out: *mut *mut tachyon_fanout_t,
    ) -> tachyon_error_t;
    /// Close the channel (consumers end with PEER_CLOSED after reading everything).
    pub fn tachyon_fanout_destroy(fo: *mut tachyon_fanout_t);
    /// Reserve a slot, waiting up to `timeout_ms` for room (BLOCK). NULL: see last_error.
    pub fn tachyon_fanout_acquire_tx(fo: *mut tachyon_fanout_t, max_payload: usize, timeout_ms: c_int) -> *mut c_void;
    /// Publish the acquired slot.
    pub fn tachyon_fanout_commit_tx(fo: *mut tachyon_fanout_t, actual_size: usize, type_id: u32) -> tachyon_error_t;
    /// Give the acquired slot back.
    pub fn tachyon_fanout_rollback_tx(fo: *mut tachyon_fanout_t) -> tachyon_error_t;
    /// acquire_tx + memcpy + commit_tx.
    pub fn tachyon_fanout_send(
        fo: *mut tachyon_fanout_t,
        data: *const c_void,
        size: usize,
        type_id: u32,
        timeout_ms: c_int,
    ) -> tachyon_error_t;
    /// Consumers joined right now.
    pub fn tachyon_fanout_consumers(fo: *const tachyon_fanout_t) -> u32;
    /// The largest payload (capacity / 2 - 64).
    pub fn tachyon_fanout_max_payload(fo: *const tachyon_fanout_t) -> usize;
    /// This thread's last error on the producer.
    pub fn tachyon_fanout_last_error(fo: *const tachyon_fanout_t) -> tachyon_error_t;
    /// Consumer: join the fan-out at `socket_path`.
    pub fn tachyon_fanout_connect(
        socket_path: *const c_char,
        start: tachyon_fan_start_t,
        timeout_ms: c_int,
        out: *mut *mut tachyon_fanout_rx_t,
    ) -> tachyon_error_t;
    /// Leave.
    pub fn tachyon_fanout_rx_destroy(rx: *mut tachyon_fanout_rx_t);
    /// The next message in place (valid until [`tachyon_fanout_commit_rx`]).
    pub fn tachyon_fanout_acquire_rx(
        rx: *mut tachyon_fanout_rx_t,
        msg: *mut tachyon_fan_msg_t,
        spin: u32,
        timeout_ms: c_int,
    ) -> tachyon_error_t;
    /// Release the message; OVERRUN: it may have been overwritten while held.
    pub fn tachyon_fanout_commit_rx(rx: *mut tachyon_fanout_rx_t) -> tachyon_error_t;
    /// Messages lost at the last overrun.
    pub fn tachyon_fanout_missed(rx: *const tachyon_fanout_rx_t) -> u64;
    /// Messages lost to overruns in all.
    pub fn tachyon_fanout_missed_total(rx: *const tachyon_fanout_rx_t) -> u64;
    /// This consumer's slot.
    pub fn tachyon_fanout_index(rx: *const tachyon_fanout_rx_t) -> u32;
    /// This thread's last error on the consumer.
    pub fn tachyon_fanout_rx_last_error(rx: *const tachyon_fanout_rx_t) -> tachyon_error_t;
    /// Fan-in consumer: admit up to `max_producers` producers at `socket_path`.
    pub fn tachyon_fanin_listen(
        socket_path: *const c_char,
        capacity: usize,
        max_producers: u32,
        out: *mut *mut tachyon_fanin_t,
    ) -> tachyon_error_t;
    /// [`tachyon_fanin_listen`] with listener options.
    pub fn tachyon_fanin_listen_ex(
        socket_path: *const c_char,
        capacity: usize,
        max_producers: u32,
        opts: *const tachyon_listen_opts_t,
        out: *mut *mut tachyon_fanin_t,
    ) -> tachyon_error_t;
    /// Close the fan-in.
    pub fn tachyon_fanin_destroy(fi: *mut tachyon_fanin_t);
    /// The next message from any producer, round robin; PEER_CLOSED/PEER_DEAD report a departure.
    pub fn tachyon_fanin_acquire_rx(
        fi: *mut tachyon_fanin_t,
        msg: *mut tachyon_fan_msg_t,
        spin: u32,
        timeout_ms: c_int,
    ) -> tachyon_error_t;
    /// Release the message.
    pub fn tachyon_fanin_commit_rx(fi: *mut tachyon_fanin_t) -> tachyon_error_t;
    /// Producers joined right now.
    pub fn tachyon_fanin_producers(fi: *const tachyon_fanin_t) -> u32;
    /// This thread's last error on the fan-in.
    pub fn tachyon_fanin_last_error(fi: *const tachyon_fanin_t) -> tachyon_error_t;
    /// Producer: join the fan-in and get a bus to send on.
    pub fn tachyon_fanin_connect(
        socket_path: *const c_char,
        timeout_ms: c_int,
        out_index: *mut u32,
        out: *mut *mut tachyon_bus_t,
    ) -> tachyon_error_t;
}
