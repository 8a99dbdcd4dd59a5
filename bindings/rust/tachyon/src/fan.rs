//! Fan-out (one producer, many readers) and fan-in (many producers, one reader).
//!
//! A [`FanOut`] writes each message once into one shared ring; every
//! [`FanOutReader`] reads it in place through its own cursor. Readers join
//! and leave at any time. With [`SlowReader::Block`] the producer waits for
//! the slowest reader; with [`SlowReader::Drop`] it drops a reader a whole
//! ring behind, whose next receive fails with [`ErrorKind::Overrun`] and
//! [`FanOutReader::missed`] says exactly how many messages it lost.
//!
//! A [`FanIn`] takes messages from many producers, round robin, each with the
//! sender's index and pid; a producer joins with [`FanIn::connect`] and sends
//! on the [`Bus`] it gets.
//!
//! ```no_run
//! use tachyon::fan::{FanOut, SlowReader, Start};
//! use std::time::Duration;
//!
//! # fn main() -> tachyon::Result<()> {
//! let mut feed = FanOut::listen("/tmp/ticks.sock", 1 << 20, 8, SlowReader::Block)?;
//! let mut reader = FanOut::connect("/tmp/ticks.sock", Start::Newest, Some(Duration::from_secs(5)))?;
//! feed.send(b"tick", 1, None)?;
//! let msg = reader.recv(Some(Duration::from_secs(1)))?;
//! assert_eq!(msg.data(), b"tick");
//! # Ok(())
//! # }
//! ```

use std::marker::PhantomData;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::time::Duration;

use tachyon_sys as sys;

use crate::bus::{c_path, duration_to_ms};
use crate::{Bus, Error, ErrorKind, Result};

/// Polls before a blocking receive sleeps.
const DEFAULT_SPIN: u32 = 2000;

/// What a fan-out producer does about a reader that does not keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowReader {
    /// Wait for it (back-pressure), up to the send's timeout.
    Block,
    /// Drop it once it is a whole ring behind; it gets [`ErrorKind::Overrun`].
    Drop,
}

/// Where a joining fan-out reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The newest message in the ring.
    Newest,
    /// The oldest message still in the ring.
    Oldest,
}

/// The producer of a fan-out channel.
pub struct FanOut {
    raw: NonNull<sys::tachyon_fanout_t>,
}

// SAFETY: the C handle may be used from any thread, one at a time; every
// call that touches the ring takes `&mut self`.
unsafe impl Send for FanOut {}

impl FanOut {
    /// Create the ring (`capacity` a power of two, 256 B to 1 GiB) and admit
    /// up to `max_consumers` readers at `path`. Returns at once.
    pub fn listen(path: impl AsRef<Path>, capacity: usize, max_consumers: u32, policy: SlowReader) -> Result<FanOut> {
        let path = c_path(path.as_ref())?;
        let policy = match policy {
            SlowReader::Block => sys::TACHYON_FAN_BLOCK,
            SlowReader::Drop => sys::TACHYON_FAN_DROP_SLOW,
        };
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, out a valid out-pointer.
        let code = unsafe { sys::tachyon_fanout_listen(path.as_ptr(), capacity, max_consumers, policy, &mut out) };
        Error::check(code)?;
        Ok(FanOut { raw: NonNull::new(out).ok_or_else(|| Error::from(ErrorKind::NullPointer))? })
    }

    /// Join the fan-out at `path` as a reader, retrying while nothing listens
    /// for up to `timeout` (`None`: forever).
    pub fn connect(path: impl AsRef<Path>, start: Start, timeout: Option<Duration>) -> Result<FanOutReader> {
        let path = c_path(path.as_ref())?;
        let start = match start {
            Start::Newest => sys::TACHYON_FAN_START_NEWEST,
            Start::Oldest => sys::TACHYON_FAN_START_OLDEST,
        };
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, out a valid out-pointer.
        let code = unsafe { sys::tachyon_fanout_connect(path.as_ptr(), start, duration_to_ms(timeout), &mut out) };
        Error::check(code)?;
        Ok(FanOutReader { raw: NonNull::new(out).ok_or_else(|| Error::from(ErrorKind::NullPointer))? })
    }

    fn last_error(&self) -> Error {
        // SAFETY: self.raw is a live producer.
        let code = unsafe { sys::tachyon_fanout_last_error(self.raw.as_ptr()) };
        Error::from_code(code).unwrap_or_else(|| ErrorKind::State.into())
    }

    /// Copy `data` in and publish it to every reader, waiting up to `timeout`
    /// for room with [`SlowReader::Block`] (`None`: as long as it takes;
    /// `Some(ZERO)`: not at all, [`ErrorKind::Full`]).
    pub fn send(&mut self, data: &[u8], type_id: u32, timeout: Option<Duration>) -> Result<()> {
        let mut tx = self.acquire_tx(data.len(), timeout)?;
        tx.buf().copy_from_slice(data);
        tx.set_type_id(type_id);
        tx.commit()
    }

    /// A slot for up to `max_size` bytes, written in place; committed when
    /// the guard is dropped (rolled back when dropped during a panic).
    pub fn acquire_tx(&mut self, max_size: usize, timeout: Option<Duration>) -> Result<FanTxGuard<'_>> {
        // SAFETY: self.raw is a live producer.
        let p = unsafe { sys::tachyon_fanout_acquire_tx(self.raw.as_ptr(), max_size, duration_to_ms(timeout)) };
        match NonNull::new(p as *mut u8) {
            Some(slot) => Ok(FanTxGuard { fo: self, slot, cap: max_size, len: max_size, type_id: 0, done: false }),
            None => Err(self.last_error()),
        }
    }

    /// Readers joined right now.
    pub fn consumers(&self) -> u32 {
        // SAFETY: self.raw is a live producer.
        unsafe { sys::tachyon_fanout_consumers(self.raw.as_ptr()) }
    }

    /// The largest message (half the ring less 64 bytes).
    pub fn max_payload(&self) -> usize {
        // SAFETY: self.raw is a live producer.
        unsafe { sys::tachyon_fanout_max_payload(self.raw.as_ptr()) }
    }
}

impl Drop for FanOut {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and dropped once.
        unsafe { sys::tachyon_fanout_destroy(self.raw.as_ptr()) }
    }
}

/// A fan-out slot being written. Committed on drop (or [`FanTxGuard::commit`]).
pub struct FanTxGuard<'a> {
    fo: &'a mut FanOut,
    slot: NonNull<u8>,
    cap: usize,
    len: usize,
    type_id: u32,
    done: bool,
}

impl FanTxGuard<'_> {
    /// The slot's bytes (as many as were asked for).
    pub fn buf(&mut self) -> &mut [u8] {
        // SAFETY: the slot holds `cap` writable bytes until commit or rollback,
        // and this guard is its only user.
        unsafe { std::slice::from_raw_parts_mut(self.slot.as_ptr(), self.cap) }
    }

    /// Commit only the first `len` bytes (at most what was asked for).
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.cap);
    }

    /// The message's type id.
    pub fn set_type_id(&mut self, type_id: u32) {
        self.type_id = type_id;
    }

    /// Publish the message to every reader.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        // SAFETY: a slot is acquired on this live producer.
        Error::check(unsafe { sys::tachyon_fanout_commit_tx(self.fo.raw.as_ptr(), self.len, self.type_id) })
    }

    /// Give the slot back unpublished.
    pub fn rollback(mut self) {
        self.done = true;
        // SAFETY: a slot is acquired on this live producer.
        unsafe { sys::tachyon_fanout_rollback_tx(self.fo.raw.as_ptr()) };
    }
}

impl Drop for FanTxGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // SAFETY: a slot is acquired on this live producer.
        unsafe {
            if std::thread::panicking() {
                sys::tachyon_fanout_rollback_tx(self.fo.raw.as_ptr());
            } else {
                sys::tachyon_fanout_commit_tx(self.fo.raw.as_ptr(), self.len, self.type_id);
            }
        }
    }
}

/// One reader of a fan-out channel.
pub struct FanOutReader {
    raw: NonNull<sys::tachyon_fanout_rx_t>,
}

// SAFETY: as FanOut: one thread at a time, `&mut self` on every receive.
unsafe impl Send for FanOutReader {}

impl FanOutReader {
    /// The next message, in place, waiting up to `timeout` (`None`: forever;
    /// `Some(ZERO)`: only one already there, else [`ErrorKind::Empty`]).
    /// [`ErrorKind::Overrun`]: this reader was dropped ([`Self::missed`]);
    /// the next call continues from the newest message.
    /// [`ErrorKind::PeerClosed`] / [`ErrorKind::PeerDead`]: the producer is
    /// gone and everything it published was read.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<FanMessage<'_>> {
        let mut m = sys::tachyon_fan_msg_t::default();
        // SAFETY: self.raw is a live reader; m a valid out-pointer.
        let code = unsafe { sys::tachyon_fanout_acquire_rx(self.raw.as_ptr(), &mut m, DEFAULT_SPIN, duration_to_ms(timeout)) };
        Error::check(code)?;
        Ok(FanMessage::new(Owner::Out(self.raw), &m))
    }

    /// Messages lost at the last [`ErrorKind::Overrun`].
    pub fn missed(&self) -> u64 {
        // SAFETY: self.raw is a live reader.
        unsafe { sys::tachyon_fanout_missed(self.raw.as_ptr()) }
    }

    /// Messages lost to overruns since joining.
    pub fn missed_total(&self) -> u64 {
        // SAFETY: self.raw is a live reader.
        unsafe { sys::tachyon_fanout_missed_total(self.raw.as_ptr()) }
    }

    /// This reader's slot in the producer's table.
    pub fn index(&self) -> u32 {
        // SAFETY: self.raw is a live reader.
        unsafe { sys::tachyon_fanout_index(self.raw.as_ptr()) }
    }
}

impl Drop for FanOutReader {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and dropped once.
        unsafe { sys::tachyon_fanout_rx_destroy(self.raw.as_ptr()) }
    }
}

#[derive(Clone, Copy)]
enum Owner {
    Out(NonNull<sys::tachyon_fanout_rx_t>),
    In(NonNull<sys::tachyon_fanin_t>),
}

/// A received message in place in shared memory; released on drop (or
/// [`FanMessage::release`]).
pub struct FanMessage<'a> {
    owner: Owner,
    ptr: *const u8,
    size: usize,
    type_id: u32,
    seq: u64,
    producer: u32,
    pid: i32,
    released: bool,
    _reader: PhantomData<&'a mut ()>,
}

impl FanMessage<'_> {
    fn new(owner: Owner, m: &sys::tachyon_fan_msg_t) -> Self {
        FanMessage {
            owner,
            ptr: m.ptr as *const u8,
            size: m.size,
            type_id: m.type_id,
            seq: m.seq,
            producer: m.producer,
            pid: m.pid,
            released: false,
            _reader: PhantomData,
        }
    }

    /// The payload (read-only, in the ring).
    pub fn data(&self) -> &[u8] {
        if self.size == 0 {
            return &[];
        }
        // SAFETY: the library validated that `size` bytes at ptr lie inside the
        // ring; they stay ours until this message is released.
        unsafe { std::slice::from_raw_parts(self.ptr, self.size) }
    }

    /// The message's type id.
    pub fn type_id(&self) -> u32 {
        self.type_id
    }

    /// Fan-out: the message's number (0, 1, 2, ...); fan-in: how many
    /// messages of its producer came before it.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Fan-in: the sending producer's index; fan-out: 0.
    pub fn producer(&self) -> u32 {
        self.producer
    }

    /// The sending process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn do_release(&mut self) -> Result<()> {
        self.released = true;
        // SAFETY: the owner is live for 'a and holds this message.
        let code = unsafe {
            match self.owner {
                Owner::Out(rx) => sys::tachyon_fanout_commit_rx(rx.as_ptr()),
                Owner::In(fi) => sys::tachyon_fanin_commit_rx(fi.as_ptr()),
            }
        };
        Error::check(code)
    }

    /// Release the message. [`ErrorKind::Overrun`]: the reader was dropped
    /// while it held the message, whose bytes may have been overwritten
    /// (discard what was read).
    pub fn release(mut self) -> Result<()> {
        self.do_release()
    }
}

impl Drop for FanMessage<'_> {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.do_release();
        }
    }
}

/// The reader of a fan-in channel.
pub struct FanIn {
    raw: NonNull<sys::tachyon_fanin_t>,
}

// SAFETY: as FanOut.
unsafe impl Send for FanIn {}

/// What [`FanIn::recv`] returns: a message, or the news that a producer left
/// (after everything it sent was read).
pub enum FanInEvent<'a> {
    /// A message, with its sender in [`FanMessage::producer`] and [`FanMessage::pid`].
    Message(FanMessage<'a>),
    /// Producer `producer` (process `pid`) left, or died (`dead`), after `messages` messages.
    Left { producer: u32, pid: i32, dead: bool, messages: u64 },
}

impl FanIn {
    /// Admit up to `max_producers` producers at `path`, each with a ring of
    /// `capacity` bytes. Returns at once.
    pub fn listen(path: impl AsRef<Path>, capacity: usize, max_producers: u32) -> Result<FanIn> {
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, out a valid out-pointer.
        let code = unsafe { sys::tachyon_fanin_listen(path.as_ptr(), capacity, max_producers, &mut out) };
        Error::check(code)?;
        Ok(FanIn { raw: NonNull::new(out).ok_or_else(|| Error::from(ErrorKind::NullPointer))? })
    }

    /// Join the fan-in at `path` as a producer: the bus to send on and this
    /// producer's index.
    pub fn connect(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<(Bus, u32)> {
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        let mut index = 0u32;
        // SAFETY: path is NUL-terminated, index and out valid out-pointers.
        let code = unsafe { sys::tachyon_fanin_connect(path.as_ptr(), duration_to_ms(timeout), &mut index, &mut out) };
        Ok((Bus::from_out(code, out)?, index))
    }

    /// The next message from any producer (round robin), or a producer's
    /// departure; waits up to `timeout`.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<FanInEvent<'_>> {
        let mut m = sys::tachyon_fan_msg_t::default();
        // SAFETY: self.raw is a live fan-in; m a valid out-pointer.
        let code = unsafe { sys::tachyon_fanin_acquire_rx(self.raw.as_ptr(), &mut m, DEFAULT_SPIN, duration_to_ms(timeout)) };
        match code {
            sys::TACHYON_SUCCESS => Ok(FanInEvent::Message(FanMessage::new(Owner::In(self.raw), &m))),
            sys::TACHYON_ERR_PEER_CLOSED | sys::TACHYON_ERR_PEER_DEAD | sys::TACHYON_ERR_FATAL => {
                Ok(FanInEvent::Left { producer: m.producer, pid: m.pid, dead: code != sys::TACHYON_ERR_PEER_CLOSED, messages: m.seq })
            }
            _ => Err(Error::from_code(code).unwrap_or_else(|| ErrorKind::State.into())),
        }
    }

    /// Producers joined right now.
    pub fn producers(&self) -> u32 {
        // SAFETY: self.raw is a live fan-in.
        unsafe { sys::tachyon_fanin_producers(self.raw.as_ptr()) }
    }
}

impl Drop for FanIn {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and dropped once.
        unsafe { sys::tachyon_fanin_destroy(self.raw.as_ptr()) }
    }
}
