//! The bus handle: creating, connecting, sending by copy, receiving, state.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::RawFd;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::time::Duration;

use tachyon_sys as sys;

use crate::error::{Error, ErrorKind, Result};
use crate::rx::{Batch, RxGuard};
use crate::tx::TxGuard;

/// How many times a blocking receive polls before it sleeps, by default:
/// long enough to catch a steady stream without a system call, short enough
/// not to burn a core for long when traffic stops.
pub const DEFAULT_SPIN: u32 = 10_000;

/// How a waiting consumer behaves (see [`Bus::set_polling_mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollingMode {
    /// Spin a while, then sleep on a futex; the producer wakes it.
    SpinThenSleep,
    /// Never sleep: lowest latency, one core busy while waiting. The producer
    /// then skips its wake-up check.
    PureSpin,
}

/// What [`Bus::arm`] arms the event-loop descriptor for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A message (or the news that none will come: the peer's end, a corrupt ring).
    Rx,
    /// Room for the message the last failed send or acquire could not place.
    Tx,
    /// Either.
    RxTx,
}

impl Wait {
    fn raw(self) -> std::os::raw::c_uint {
        match self {
            Wait::Rx => sys::TACHYON_WAIT_RX,
            Wait::Tx => sys::TACHYON_WAIT_TX,
            Wait::RxTx => sys::TACHYON_WAIT_RX | sys::TACHYON_WAIT_TX,
        }
    }
}

/// The bus state as seen from this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Uninitialized,
    Initializing,
    Ready,
    /// The peer is gone (crash or clean close).
    Disconnected,
    /// The shared segment is corrupt.
    FatalError,
    Unknown,
}

impl State {
    pub(crate) fn from_raw(raw: sys::tachyon_state_t) -> State {
        match raw {
            sys::TACHYON_STATE_UNINITIALIZED => State::Uninitialized,
            sys::TACHYON_STATE_INITIALIZING => State::Initializing,
            sys::TACHYON_STATE_READY => State::Ready,
            sys::TACHYON_STATE_DISCONNECTED => State::Disconnected,
            sys::TACHYON_STATE_FATAL_ERROR => State::FatalError,
            _ => State::Unknown,
        }
    }
}

/// Options for [`Bus::listen_with`].
#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub(crate) raw: sys::tachyon_listen_opts_t,
}

impl ListenOptions {
    /// A ring of `capacity` bytes (a power of two, 64 B to 1 GiB); only this
    /// process's user may connect; wait forever.
    pub fn new(capacity: usize) -> ListenOptions {
        let mut raw = std::mem::MaybeUninit::<sys::tachyon_listen_opts_t>::uninit();
        // SAFETY: tachyon_listen_opts_init writes every field of the struct.
        let raw = unsafe {
            sys::tachyon_listen_opts_init(raw.as_mut_ptr(), capacity);
            raw.assume_init()
        };
        ListenOptions { raw }
    }

    /// Give up with [`ErrorKind::Timeout`] when no allowed peer came in time.
    pub fn timeout(mut self, timeout: Duration) -> ListenOptions {
        self.raw.timeout_ms = duration_to_ms(Some(timeout));
        self
    }

    /// Also let processes of `uid` connect (up to 16 uids).
    pub fn allow_uid(mut self, uid: u32) -> Result<ListenOptions> {
        // SAFETY: raw was initialised by tachyon_listen_opts_init.
        Error::check(unsafe { sys::tachyon_listen_opts_allow_uid(&mut self.raw, uid) })?;
        Ok(self)
    }

    /// Keep waiting after refusing a peer of another user, instead of failing
    /// with [`ErrorKind::Permission`].
    pub fn keep_waiting(mut self, keep: bool) -> ListenOptions {
        self.raw.keep_waiting = keep as i32;
        self
    }
}

/// One end of a Tachyon bus.
///
/// Dropping it closes this end: the peer reads what was committed, then sees
/// [`ErrorKind::PeerClosed`].
///
/// Guards borrow the bus mutably, so at most one message is held at a time
/// and the C library's call order (acquire, then commit) is enforced by the
/// compiler.
///
/// # Threads
///
/// The C library lets one producer thread (the sending calls) and one
/// consumer thread (the receiving calls) work on a bus at the same time, but
/// never two threads on the same side: the ring is single-producer,
/// single-consumer. Every method here takes `&mut self` or reads only, so a
/// `Bus` is used by one thread at a time, and it is `Send` (move it to the
/// thread that uses it) but not `Sync` (it cannot be shared: two threads on
/// one side would break the ring). Each method says which side it belongs
/// to. Errors are read in the calling thread right after the failing call
/// (the C library keeps them per thread), which `&mut self` also guarantees.
#[derive(Debug)]
pub struct Bus {
    raw: NonNull<sys::tachyon_bus_t>,
    spin: u32,
    batch_views: Vec<sys::tachyon_msg_view_t>,
}

// SAFETY: the C bus may be used from any thread, one thread at a time; `&mut`
// on every call that touches the ring gives exactly that. It is not Sync:
// the C object has no locks (NonNull already makes it !Sync).
unsafe impl Send for Bus {}

pub(crate) fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        Error::new(ErrorKind::InvalidPath, format!("the socket path {:?} contains a NUL byte", path))
    })
}

/// Milliseconds for the C library; `None` means forever (-1). Saturates.
pub(crate) fn duration_to_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
    }
}

impl Bus {
    pub(crate) fn from_out(code: sys::tachyon_error_t, out: *mut sys::tachyon_bus_t) -> Result<Bus> {
        Error::check(code)?;
        let raw = NonNull::new(out).ok_or_else(|| Error::from(ErrorKind::NullPointer))?;
        Ok(Bus { raw, spin: DEFAULT_SPIN, batch_views: Vec::new() })
    }

    /// Create a bus with a ring of `capacity` bytes at `path` and wait until
    /// one peer connects. The socket file is removed once the peer is in.
    pub fn listen(path: impl AsRef<Path>, capacity: usize) -> Result<Bus> {
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, out a valid out-pointer.
        let code = unsafe { sys::tachyon_bus_listen(path.as_ptr(), capacity, &mut out) };
        Bus::from_out(code, out)
    }

    /// [`Bus::listen`] with options (timeout, allowed users).
    pub fn listen_with(path: impl AsRef<Path>, options: &ListenOptions) -> Result<Bus> {
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, options initialised, out valid.
        let code = unsafe { sys::tachyon_bus_listen_ex(path.as_ptr(), &options.raw, &mut out) };
        Bus::from_out(code, out)
    }

    /// Connect to the listener at `path` (it must be there already).
    pub fn connect(path: impl AsRef<Path>) -> Result<Bus> {
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, out a valid out-pointer.
        let code = unsafe { sys::tachyon_bus_connect(path.as_ptr(), &mut out) };
        Bus::from_out(code, out)
    }

    /// Connect, retrying while nobody listens yet, for up to `timeout`
    /// (`None`: forever).
    pub fn connect_timeout(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<Bus> {
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, out a valid out-pointer.
        let code = unsafe { sys::tachyon_bus_connect_timeout(path.as_ptr(), duration_to_ms(timeout), &mut out) };
        Bus::from_out(code, out)
    }

    /// [`Bus::connect_timeout`], accepting only a listener run by one of
    /// `uids` (at most 16); any other is refused with [`ErrorKind::Permission`].
    /// By default (the other connect calls) the listener must run as our own
    /// user or root.
    pub fn connect_allowing(path: impl AsRef<Path>, timeout: Option<Duration>, uids: &[u32]) -> Result<Bus> {
        if uids.len() > sys::TACHYON_MAX_ALLOWED_UIDS {
            return Err(Error::new(
                ErrorKind::InvalidSize,
                format!("{} uids given; at most {} are allowed", uids.len(), sys::TACHYON_MAX_ALLOWED_UIDS),
            ));
        }
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, uids valid for uids.len() entries,
        // out a valid out-pointer.
        let code = unsafe {
            sys::tachyon_bus_connect_ex(path.as_ptr(), duration_to_ms(timeout), uids.as_ptr(), uids.len(), &mut out)
        };
        Bus::from_out(code, out)
    }

    /// The raw handle, for calls this crate does not wrap. It stays owned by
    /// this `Bus`: do not destroy it.
    pub fn as_raw(&self) -> *mut sys::tachyon_bus_t {
        self.raw.as_ptr()
    }

    /// The error behind this thread's last failed call on the bus, with its
    /// detail; call it right after that call.
    pub(crate) fn last_error(&self) -> Error {
        // SAFETY: self.raw is a live bus.
        let code = unsafe { sys::tachyon_bus_last_error(self.raw.as_ptr()) };
        // A NULL result with no error recorded would be a library bug; call it a state error.
        Error::from_code(code).unwrap_or_else(|| ErrorKind::State.into())
    }

    /// How many times blocking receives poll before they sleep. Consumer side.
    pub fn set_spin(&mut self, spins: u32) {
        self.spin = spins;
    }

    // ---- producer -----------------------------------------------------------

    /// Copy `data` into the ring as one message and publish it. Non-blocking:
    /// [`ErrorKind::Full`] when the consumer has not made room. Producer side.
    pub fn send(&mut self, data: &[u8], type_id: u32) -> Result<()> {
        // SAFETY: data is valid for data.len() bytes; the bus is live and ours.
        Error::check(unsafe { sys::tachyon_send(self.raw.as_ptr(), data.as_ptr().cast(), data.len(), type_id) })
    }

    /// [`Bus::send`], waiting for room up to `timeout` (`None`: forever).
    /// [`ErrorKind::PeerDead`] / [`ErrorKind::PeerClosed`] if the consumer goes
    /// away meanwhile. Producer side.
    pub fn send_blocking(&mut self, data: &[u8], type_id: u32, timeout: Option<Duration>) -> Result<()> {
        let mut tx = self.acquire_tx(data.len(), timeout)?;
        tx.write(data)?;
        tx.set_type_id(type_id);
        tx.commit()
    }

    /// Send `records` as messages of `record_size` bytes each, all with
    /// `type_id`, and publish once. Returns how many went in: fewer than all
    /// when the ring filled up. Non-blocking. Producer side.
    pub fn send_batch(&mut self, records: &[u8], record_size: usize, type_id: u32) -> Result<usize> {
        if record_size == 0 || records.len() % record_size != 0 {
            return Err(Error::new(
                ErrorKind::InvalidSize,
                format!("{} bytes are not a whole number of {record_size}-byte records", records.len()),
            ));
        }
        let count = records.len() / record_size;
        // SAFETY: records holds count * record_size readable bytes.
        let sent = unsafe {
            sys::tachyon_send_batch(self.raw.as_ptr(), records.as_ptr().cast(), record_size, count, type_id)
        };
        if sent == count {
            return Ok(sent);
        }
        // Partial: a full ring is not an error; any other error surfaces
        // now if nothing went in, else on the next call.
        match self.last_error() {
            err if err.kind() == ErrorKind::Full => Ok(sent),
            _ if sent > 0 => Ok(sent),
            err => Err(err),
        }
    }

    /// Reserve a slot for up to `max_size` bytes without waiting. Producer side.
    pub fn try_acquire_tx(&mut self, max_size: usize) -> Result<TxGuard<'_>> {
        match self.try_acquire_tx_raw(max_size)? {
            Some(slot) => Ok(TxGuard::new(self, slot, max_size)),
            None => Err(self.last_error()),
        }
    }

    /// Reserve a slot for up to `max_size` bytes, waiting for room up to
    /// `timeout` (`None`: forever). Producer side.
    pub fn acquire_tx(&mut self, max_size: usize, timeout: Option<Duration>) -> Result<TxGuard<'_>> {
        let ms = duration_to_ms(timeout);
        // SAFETY: the bus is live; `&mut self` means no other slot is held.
        let ptr = unsafe { sys::tachyon_acquire_tx_blocking(self.raw.as_ptr(), max_size, self.spin, ms) };
        match NonNull::new(ptr.cast::<u8>()) {
            Some(slot) => Ok(TxGuard::new(self, slot, max_size)),
            None => Err(self.last_error()),
        }
    }

    /// Publish everything committed and wake a sleeping consumer. Commits
    /// already publish; this exists for symmetry with the C and Python APIs.
    /// Producer side.
    pub fn flush(&mut self) {
        // SAFETY: the bus is live.
        unsafe { sys::tachyon_flush(self.raw.as_ptr()) }
    }

    // ---- consumer -----------------------------------------------------------

    /// The next message if one is there now; `Ok(None)` when the ring is empty.
    /// Consumer side.
    pub fn try_recv(&mut self) -> Result<Option<RxGuard<'_>>> {
        Ok(match self.try_acquire_rx_raw()? {
            // SAFETY: the slot the last acquire returned, `size` readable bytes,
            // ours until committed; the guard commits it.
            Some((ptr, size, type_id)) => Some(unsafe { RxGuard::new(self, ptr, size, type_id) }),
            None => None,
        })
    }

    /// tachyon_acquire_rx: the slot (payload, size, type id), acquired and not
    /// yet committed, or `None` when the ring is empty. No borrow outlives the
    /// call, so a loop may call it again (the event-loop waits do).
    pub(crate) fn try_acquire_rx_raw(&mut self) -> Result<Option<(*const u8, usize, u32)>> {
        let (mut type_id, mut size) = (0u32, 0usize);
        // SAFETY: the bus is live; `&mut self` means no other slot is held.
        let ptr = unsafe { sys::tachyon_acquire_rx(self.raw.as_ptr(), &mut type_id, &mut size) };
        if ptr.is_null() {
            return match self.last_error() {
                err if err.kind() == ErrorKind::Empty => Ok(None),
                err => Err(err),
            };
        }
        Ok(Some((ptr.cast(), size, type_id)))
    }

    /// tachyon_acquire_rx_batch into this bus's views: how many (0: empty).
    pub(crate) fn try_acquire_batch_raw(&mut self, max_msgs: usize) -> Result<usize> {
        self.prepare_views(max_msgs)?;
        // SAFETY: batch_views has room for max_msgs views; the bus is live and
        // `&mut self` means no slot is held.
        let n = unsafe { sys::tachyon_acquire_rx_batch(self.raw.as_ptr(), self.batch_views.as_mut_ptr(), max_msgs) };
        if n == 0 {
            return match self.last_error() {
                err if err.kind() == ErrorKind::Empty => Ok(0),
                err => Err(err),
            };
        }
        Ok(n.min(max_msgs))
    }

    /// tachyon_acquire_tx: a slot of `max_size` bytes, or `None` when full.
    pub(crate) fn try_acquire_tx_raw(&mut self, max_size: usize) -> Result<Option<NonNull<u8>>> {
        // SAFETY: the bus is live; `&mut self` means no other slot is held.
        let ptr = unsafe { sys::tachyon_acquire_tx(self.raw.as_ptr(), max_size) };
        match NonNull::new(ptr.cast::<u8>()) {
            Some(slot) => Ok(Some(slot)),
            None => match self.last_error() {
                err if err.kind() == ErrorKind::Full => Ok(None),
                err => Err(err),
            },
        }
    }

    /// Wait for the next message. [`ErrorKind::PeerClosed`] (a clean close) or
    /// [`ErrorKind::PeerDead`] (a crash) once the producer is gone and
    /// everything it committed has been read; [`ErrorKind::Interrupted`]
    /// when a signal handler ran. Consumer side.
    pub fn recv(&mut self) -> Result<RxGuard<'_>> {
        self.recv_deadline(-1)
    }

    /// [`Bus::recv`] with a deadline: [`ErrorKind::Timeout`] when it passes.
    /// Consumer side.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<RxGuard<'_>> {
        self.recv_deadline(duration_to_ms(Some(timeout)))
    }

    fn recv_deadline(&mut self, timeout_ms: i32) -> Result<RxGuard<'_>> {
        let (mut type_id, mut size) = (0u32, 0usize);
        // SAFETY: the bus is live; `&mut self` means no other slot is held.
        let ptr = unsafe {
            sys::tachyon_acquire_rx_timeout(self.raw.as_ptr(), &mut type_id, &mut size, self.spin, timeout_ms)
        };
        if ptr.is_null() {
            return Err(self.last_error());
        }
        // SAFETY: as in try_recv.
        Ok(unsafe { RxGuard::new(self, ptr.cast(), size, type_id) })
    }

    /// Wait (up to `timeout`, `None`: forever) for at least one message, then
    /// take up to `max_msgs` that are there. Released together when the batch
    /// is dropped. Consumer side.
    pub fn drain_batch(&mut self, max_msgs: usize, timeout: Option<Duration>) -> Result<Batch<'_>> {
        self.prepare_views(max_msgs)?;
        let ms = duration_to_ms(timeout);
        // SAFETY: batch_views has room for max_msgs views; the bus is live and
        // `&mut self` means no slot is held.
        let n = unsafe {
            sys::tachyon_drain_batch_timeout(self.raw.as_ptr(), self.batch_views.as_mut_ptr(), max_msgs, self.spin, ms)
        };
        if n == 0 {
            return Err(self.last_error());
        }
        Ok(Batch::new(self, n.min(max_msgs)))
    }

    /// Take up to `max_msgs` messages that are there now, without waiting; the
    /// batch may be empty. Consumer side.
    pub fn try_recv_batch(&mut self, max_msgs: usize) -> Result<Batch<'_>> {
        let n = self.try_acquire_batch_raw(max_msgs)?;
        Ok(Batch::new(self, n))
    }

    fn prepare_views(&mut self, max_msgs: usize) -> Result<()> {
        if max_msgs == 0 {
            return Err(Error::new(ErrorKind::InvalidSize, "a batch of 0 messages: max_msgs must be at least 1"));
        }
        if self.batch_views.len() < max_msgs {
            self.batch_views.resize(max_msgs, sys::tachyon_msg_view_t::default());
        }
        Ok(())
    }

    pub(crate) fn views(&self) -> &[sys::tachyon_msg_view_t] {
        &self.batch_views
    }

    // ---- event loops ----------------------------------------------------------

    /// A descriptor for poll, select, epoll or an event loop (mio, tokio's
    /// `AsyncFd`; with the `tokio` feature, [`crate::AsyncBus`] does it all).
    /// Owned by the bus (closed when it is dropped: deregister it first) and
    /// the same on every call. It turns readable after [`Bus::arm`] once what
    /// was armed for may be there. Either side.
    pub fn event_fd(&self) -> Result<RawFd> {
        // SAFETY: the bus is live.
        let fd = unsafe { sys::tachyon_bus_fd(self.raw.as_ptr()) };
        if fd < 0 {
            return Err(self.last_error());
        }
        Ok(fd)
    }

    /// Clear the event-loop descriptor and arm it for `what`. `Ok(true)`: it
    /// is there already, do not wait (call the non-blocking calls:
    /// [`Bus::try_recv`], [`Bus::try_recv_batch`], [`Bus::send`],
    /// [`Bus::try_acquire_tx`]); `Ok(false)`: armed, wait until the
    /// descriptor is readable, then call them, and arm again when they find
    /// nothing. Level-triggered: the descriptor stays readable until the next
    /// arm. Call it from the thread that works that side.
    pub fn arm(&mut self, what: Wait) -> Result<bool> {
        // SAFETY: the bus is live.
        match unsafe { sys::tachyon_bus_fd_arm(self.raw.as_ptr(), what.raw()) } {
            r if r < 0 => Err(self.last_error()),
            r => Ok(r == 1),
        }
    }

    // ---- state --------------------------------------------------------------

    /// Spin then sleep (default), or never sleep. Consumer side.
    pub fn set_polling_mode(&mut self, mode: PollingMode) {
        // SAFETY: the bus is live.
        unsafe { sys::tachyon_bus_set_polling_mode(self.raw.as_ptr(), (mode == PollingMode::PureSpin) as i32) }
    }

    /// Ready, Disconnected (peer gone), FatalError (corrupt segment), ...
    /// Either side.
    pub fn state(&self) -> State {
        // SAFETY: the bus is live.
        State::from_raw(unsafe { sys::tachyon_get_state(self.raw.as_ptr()) })
    }

    /// Whether the peer process is alive and has not closed the bus. Either side.
    pub fn peer_alive(&mut self) -> bool {
        // SAFETY: the bus is live.
        unsafe { sys::tachyon_peer_alive(self.raw.as_ptr()) != 0 }
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> usize {
        // SAFETY: the bus is live.
        unsafe { sys::tachyon_bus_capacity(self.raw.as_ptr()) }
    }

    /// The largest payload one message can carry.
    pub fn max_payload(&self) -> usize {
        // SAFETY: the bus is live.
        unsafe { sys::tachyon_bus_max_payload(self.raw.as_ptr()) }
    }

    /// What the bus has been doing, as seen from this handle: messages and
    /// bytes each way, times the ring was full, sleeps and wake-ups, fill now
    /// and at its highest, consumer lag, the peer's pid and liveness, idle
    /// time. Also stores this handle's counters where `tachyon-top` reads
    /// them. Takes `&mut self`: it reads both sides' private counters.
    pub fn stats(&mut self) -> Result<Stats> {
        let mut raw = sys::tachyon_stats_t::default();
        // SAFETY: the bus is live and `raw` is a valid, writable struct.
        Error::check(unsafe { sys::tachyon_bus_stats(self.raw.as_ptr(), &mut raw) })?;
        Ok(Stats::from_raw(&raw))
    }
}

/// What a bus has been doing, as seen from one handle ([`Bus::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Messages this handle committed (producer side) and their payload bytes.
    pub messages_sent: u64,
    pub bytes_sent: u64,
    /// Messages this handle released (consumer side) and their payload bytes.
    pub messages_received: u64,
    pub bytes_received: u64,
    /// Times a send or acquire found no room.
    pub ring_full: u64,
    /// Times this consumer slept on the futex.
    pub sleeps: u64,
    /// Times this producer woke a sleeping consumer.
    pub wakeups: u64,
    /// Ring size, bytes in it now (committed, not yet given back), the most
    /// this producer has seen in it.
    pub capacity: u64,
    pub fill_bytes: u64,
    pub fill_max_bytes: u64,
    /// Consumer: messages the producer counted that this handle has not received.
    pub lag_messages: u64,
    /// Since this handle last sent or received (zero: active since the previous call).
    pub idle: Duration,
    /// The other process, and whether it is still there.
    pub peer_pid: i32,
    pub peer_alive: bool,
    /// Extension features agreed with the peer (0: a plain ABI v4 peer).
    pub features: u32,
    pub state: State,
}

impl Stats {
    fn from_raw(r: &sys::tachyon_stats_t) -> Stats {
        Stats {
            messages_sent: r.messages_sent,
            bytes_sent: r.bytes_sent,
            messages_received: r.messages_received,
            bytes_received: r.bytes_received,
            ring_full: r.ring_full,
            sleeps: r.sleeps,
            wakeups: r.wakeups,
            capacity: r.capacity,
            fill_bytes: r.fill_bytes,
            fill_max_bytes: r.fill_max_bytes,
            lag_messages: r.lag_messages,
            idle: Duration::from_nanos(r.idle_ns),
            peer_pid: r.peer_pid,
            peer_alive: r.peer_alive != 0,
            features: r.features,
            state: State::from_raw(r.state as sys::tachyon_state_t),
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        // SAFETY: we own the one reference taken at listen/connect; no guard
        // can outlive the bus, so nothing points into the segment any more.
        unsafe { sys::tachyon_bus_destroy(self.raw.as_ptr()) }
    }
}
