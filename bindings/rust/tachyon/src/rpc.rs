//! Request/reply: an [`RpcClient`] calls, an [`RpcServer`] answers.
//!
//! One connection is two rings in shared memory, requests one way and
//! replies the other (the wire format of the published tachyon-ipc request/
//! reply layer, so either end may be a program of that library). The server
//! listens; the client connects. Every request carries a correlation id, its
//! reply the same id, and replies come in the order the calls were made:
//! several calls may be in flight ([`RpcClient::send`] then
//! [`RpcClient::wait`], in order).
//!
//! ```no_run
//! use tachyon::{RpcClient, RpcServer};
//!
//! # fn main() -> tachyon::Result<()> {
//! // Server: answer each request with its bytes reversed until the client closes.
//! let mut server = RpcServer::listen("/tmp/echo.sock", 1 << 16, 1 << 16)?;
//! server.run(1 << 10, |_msg_type, request, reply| {
//!     reply[..request.len()].copy_from_slice(request);
//!     reply[..request.len()].reverse();
//!     Some(request.len())
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! ```no_run
//! use std::time::Duration;
//! use tachyon::RpcClient;
//!
//! # fn main() -> tachyon::Result<()> {
//! let mut client = RpcClient::connect_timeout("/tmp/echo.sock", Some(Duration::from_secs(5)))?;
//! let reply = client.call(1, b"hello")?;
//! assert_eq!(&reply[..], b"olleh");
//! # Ok(())
//! # }
//! ```
//!
//! # Threads
//!
//! As for [`crate::Bus`]: the C library allows one sending thread and one
//! receiving thread per handle at a time, never two on one side. Every
//! method takes `&mut self`, so a client or server is used by one thread at
//! a time: both are `Send`, not `Sync`.

use std::path::Path;
use std::ptr::{self, NonNull};
use std::time::{Duration, Instant};

use tachyon_sys as sys;

use crate::bus::{c_path, duration_to_ms, ListenOptions, PollingMode, State, DEFAULT_SPIN};
use crate::error::{Error, ErrorKind, Result};

/// The message type of an error reply: the server had no handler for the
/// request, or its handler failed. The payload is the request's message type,
/// 2 bytes big-endian (as the published Python layer sends it).
pub const MSG_TYPE_ERROR: u16 = 0xFFFF;

/// The raw handle and the calls both ends share.
#[derive(Debug)]
struct Handle {
    raw: NonNull<sys::tachyon_rpc_bus_t>,
    spin: u32,
}

impl Handle {
    fn from_out(code: sys::tachyon_error_t, out: *mut sys::tachyon_rpc_bus_t) -> Result<Handle> {
        Error::check(code)?;
        let raw = NonNull::new(out).ok_or_else(|| Error::from(ErrorKind::NullPointer))?;
        Ok(Handle { raw, spin: DEFAULT_SPIN })
    }

    fn ptr(&self) -> *mut sys::tachyon_rpc_bus_t {
        self.raw.as_ptr()
    }

    /// The error behind this thread's last failed call, with its detail.
    fn last_error(&self) -> Error {
        // SAFETY: the handle is live.
        let code = unsafe { sys::tachyon_rpc_last_error(self.ptr()) };
        Error::from_code(code).unwrap_or_else(|| ErrorKind::State.into())
    }

    fn check(&self, code: sys::tachyon_error_t) -> Result<()> {
        Error::check(code)
    }

    fn set_polling_mode(&mut self, mode: PollingMode) {
        // SAFETY: the handle is live.
        unsafe { sys::tachyon_rpc_set_polling_mode(self.ptr(), (mode == PollingMode::PureSpin) as i32) }
    }

    fn state(&self) -> State {
        // SAFETY: the handle is live.
        State::from_raw(unsafe { sys::tachyon_rpc_get_state(self.ptr()) })
    }

    fn peer_alive(&mut self) -> bool {
        // SAFETY: the handle is live.
        unsafe { sys::tachyon_rpc_peer_alive(self.ptr()) != 0 }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: we own the handle; no guard outlives its client or server.
        unsafe { sys::tachyon_rpc_destroy(self.ptr()) }
    }
}

// SAFETY: the C handle may be used from any thread, one thread at a time per
// side; `&mut self` on every call gives one thread at a time in all. Not
// Sync: the C object has no locks (NonNull already makes it !Sync).
unsafe impl Send for Handle {}

/// What is left of `deadline` as a C timeout (-1: none).
fn remaining_ms(deadline: Option<Instant>) -> i32 {
    duration_to_ms(deadline.map(|d| d.saturating_duration_since(Instant::now())))
}

// ---- the client -------------------------------------------------------------

/// The calling end of a request/reply connection.
///
/// Dropping it closes the connection: the server reads every request sent,
/// then its `serve` ends with [`ErrorKind::PeerClosed`].
#[derive(Debug)]
pub struct RpcClient {
    handle: Handle,
}

impl RpcClient {
    /// Connect to the server at `path` (one attempt).
    pub fn connect(path: impl AsRef<Path>) -> Result<RpcClient> {
        RpcClient::connect_timeout(path, Some(Duration::ZERO))
    }

    /// Connect, retrying while nobody listens yet, for up to `timeout`
    /// (`None`: forever). The server must run as our own user or root.
    pub fn connect_timeout(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<RpcClient> {
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, out a valid out-pointer.
        let code = unsafe { sys::tachyon_rpc_connect_timeout(path.as_ptr(), duration_to_ms(timeout), &mut out) };
        Ok(RpcClient { handle: Handle::from_out(code, out)? })
    }

    /// [`RpcClient::connect_timeout`], accepting only a server run by one of
    /// `uids` (at most 16).
    pub fn connect_allowing(path: impl AsRef<Path>, timeout: Option<Duration>, uids: &[u32]) -> Result<RpcClient> {
        if uids.len() > sys::TACHYON_MAX_ALLOWED_UIDS {
            return Err(Error::new(ErrorKind::InvalidSize, format!("{} uids given; at most 16", uids.len())));
        }
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, uids valid for uids.len() entries,
        // out a valid out-pointer.
        let code = unsafe {
            sys::tachyon_rpc_connect_ex(path.as_ptr(), duration_to_ms(timeout), uids.as_ptr(), uids.len(), &mut out)
        };
        Ok(RpcClient { handle: Handle::from_out(code, out)? })
    }

    /// Call: send `request` as a message of `msg_type` and wait for its reply
    /// (forever). [`ErrorKind::ErrorReply`] when the server answers with an
    /// error reply; [`ErrorKind::PeerClosed`] / [`ErrorKind::PeerDead`] when
    /// it is gone. Replies to earlier [`RpcClient::send`]s must have been
    /// waited for (or abandoned) first.
    pub fn call(&mut self, msg_type: u32, request: &[u8]) -> Result<Reply<'_>> {
        self.call_deadline(msg_type, request, None)
    }

    /// [`RpcClient::call`] with a deadline for the whole call (room for the
    /// request, then the reply): [`ErrorKind::Timeout`]. A call that timed
    /// out is abandoned: its reply is dropped when it comes.
    pub fn call_timeout(&mut self, msg_type: u32, request: &[u8], timeout: Duration) -> Result<Reply<'_>> {
        self.call_deadline(msg_type, request, Some(Instant::now() + timeout))
    }

    fn call_deadline(&mut self, msg_type: u32, request: &[u8], deadline: Option<Instant>) -> Result<Reply<'_>> {
        let cid = self.send_with(msg_type, request.len(), deadline, |buf| {
            buf[..request.len()].copy_from_slice(request);
            request.len()
        })?;
        self.wait_for_call(cid, deadline)
    }

    /// Call with the request written in place: `fill` gets a slot of
    /// `max_size` bytes in shared memory and returns how many it wrote (at
    /// most `max_size`). Waits for room and for the reply up to `timeout`
    /// (`None`: forever); as [`RpcClient::call`] otherwise.
    pub fn call_with<F>(&mut self, msg_type: u32, max_size: usize, timeout: Option<Duration>, fill: F) -> Result<Reply<'_>>
    where
        F: FnOnce(&mut [u8]) -> usize,
    {
        let deadline = timeout.map(|t| Instant::now() + t);
        let cid = self.send_with(msg_type, max_size, deadline, fill)?;
        self.wait_for_call(cid, deadline)
    }

    /// The reply to a call whose id the caller never saw: abandoned if the
    /// wait fails, and an error reply turned into an error.
    fn wait_for_call(&mut self, cid: u64, deadline: Option<Instant>) -> Result<Reply<'_>> {
        let raw = self.handle.ptr();
        let reply = match self.wait_until(cid, deadline) {
            Ok(reply) => reply,
            Err(err) => {
                // Nobody else knows the id: drop its reply when it comes.
                // SAFETY: the handle is live (self is borrowed); cid came from a call on it.
                let _ = unsafe { sys::tachyon_rpc_abandon(raw, cid) };
                return Err(err);
            }
        };
        if reply.msg_type() == MSG_TYPE_ERROR {
            let failed = (reply.len() >= 2).then(|| u16::from_be_bytes([reply[0], reply[1]]));
            drop(reply);
            let what = failed.map_or("the request".to_string(), |t| format!("msg_type {t}"));
            return Err(Error::new(
                ErrorKind::ErrorReply,
                format!("the server could not handle {what} (call {cid}): it has no handler for it, or the handler failed"),
            ));
        }
        Ok(reply)
    }

    /// Send a request without waiting for its reply; its correlation id, to
    /// [`RpcClient::wait`] for. Non-blocking: [`ErrorKind::Full`] when the
    /// request ring has no room (read replies to make some).
    pub fn send(&mut self, msg_type: u32, request: &[u8]) -> Result<u64> {
        let mut cid = 0;
        // SAFETY: request is valid for request.len() bytes; cid a valid out-pointer.
        let code = unsafe {
            sys::tachyon_rpc_call(self.handle.ptr(), request.as_ptr().cast(), request.len(), msg_type, &mut cid)
        };
        self.handle.check(code).map(|()| cid)
    }

    /// [`RpcClient::send`] with the request written in place (see
    /// [`RpcClient::call_with`]), waiting for room up to `timeout`.
    pub fn send_with_timeout<F>(&mut self, msg_type: u32, max_size: usize, timeout: Option<Duration>, fill: F) -> Result<u64>
    where
        F: FnOnce(&mut [u8]) -> usize,
    {
        self.send_with(msg_type, max_size, timeout.map(|t| Instant::now() + t), fill)
    }

    fn send_with<F>(&mut self, msg_type: u32, max_size: usize, deadline: Option<Instant>, fill: F) -> Result<u64>
    where
        F: FnOnce(&mut [u8]) -> usize,
    {
        let h = &self.handle;
        // SAFETY: the handle is live; `&mut self` means no other slot is held.
        let slot = unsafe { sys::tachyon_rpc_acquire_tx_timeout(h.ptr(), max_size, remaining_ms(deadline)) };
        let Some(slot) = NonNull::new(slot.cast::<u8>()) else {
            return Err(h.last_error());
        };
        // SAFETY: the library reserved at least max_size writable bytes for us
        // alone until commit or rollback.
        let buf = unsafe { std::slice::from_raw_parts_mut(slot.as_ptr(), max_size) };
        let len = fill(buf);
        if len > max_size {
            // SAFETY: the slot acquired above is still ours.
            unsafe { sys::tachyon_rpc_rollback_call(h.ptr()) };
            return Err(Error::new(
                ErrorKind::InvalidSize,
                format!("the request filler wrote {len} bytes into a {max_size}-byte slot"),
            ));
        }
        let mut cid = 0;
        // SAFETY: the slot is acquired; len <= max_size.
        let code = unsafe { sys::tachyon_rpc_commit_call(h.ptr(), len, msg_type, &mut cid) };
        h.check(code).map(|()| cid)
    }

    /// Wait for the reply to call `cid` (0: whichever comes next), up to
    /// `timeout` (`None`: forever). Wait in the order the calls were made:
    /// [`ErrorKind::WrongReply`] when the next reply answers another call
    /// (it stays for the wait that asks for it). After a timeout the call is
    /// still in flight: wait again, or [`RpcClient::abandon`] it.
    pub fn wait(&mut self, cid: u64, timeout: Option<Duration>) -> Result<Reply<'_>> {
        self.wait_until(cid, timeout.map(|t| Instant::now() + t))
    }

    fn wait_until(&mut self, cid: u64, deadline: Option<Instant>) -> Result<Reply<'_>> {
        let (mut size, mut msg_type) = (0usize, 0u32);
        let h = &self.handle;
        // SAFETY: the handle is live; `&mut self` means no other reply is held.
        let ptr = unsafe {
            sys::tachyon_rpc_wait_timeout(h.ptr(), cid, &mut size, &mut msg_type, h.spin, remaining_ms(deadline))
        };
        if ptr.is_null() {
            return Err(h.last_error());
        }
        Ok(Reply { client: self, ptr: ptr.cast(), len: size, msg_type: msg_type as u16, cid })
    }

    /// Give up on call `cid`: its reply is dropped when it comes.
    pub fn abandon(&mut self, cid: u64) -> Result<()> {
        // SAFETY: the handle is live.
        let code = unsafe { sys::tachyon_rpc_abandon(self.handle.ptr(), cid) };
        self.handle.check(code)
    }

    /// How many times waits poll before they sleep (default 10 000).
    pub fn set_spin(&mut self, spins: u32) {
        self.handle.spin = spins;
    }

    /// Spin then sleep while waiting (default), or never sleep.
    pub fn set_polling_mode(&mut self, mode: PollingMode) {
        self.handle.set_polling_mode(mode)
    }

    /// Ready, Disconnected (the server is gone), FatalError (a corrupt ring).
    pub fn state(&self) -> State {
        self.handle.state()
    }

    /// Whether the server process lives and has not closed the connection.
    pub fn peer_alive(&mut self) -> bool {
        self.handle.peer_alive()
    }

    /// The largest request payload.
    pub fn max_request(&self) -> usize {
        // SAFETY: the handle is live.
        unsafe { sys::tachyon_rpc_max_request(self.handle.ptr()) }
    }

    /// The raw handle, for calls this crate does not wrap (do not destroy it).
    pub fn as_raw(&self) -> *mut sys::tachyon_rpc_bus_t {
        self.handle.ptr()
    }
}

/// A reply read in place in shared memory; released when dropped.
#[derive(Debug)]
pub struct Reply<'a> {
    client: &'a mut RpcClient,
    ptr: *const u8,
    len: usize,
    msg_type: u16,
    cid: u64,
}

impl Reply<'_> {
    /// The payload.
    pub fn data(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the library validated that the reply's `len` bytes lie in
        // the ring; they stay ours until commit, which needs `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The reply's message type (bits 15..0).
    pub fn msg_type(&self) -> u16 {
        self.msg_type
    }

    /// The id of the call this answers (the id waited for; 0 for a wait on 0).
    pub fn correlation_id(&self) -> u64 {
        self.cid
    }

    /// Release the reply now and see any error.
    pub fn commit(self) -> Result<()> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the handle is live and holds the reply this guard owns.
        let code = unsafe { sys::tachyon_rpc_commit_rx(this.client.handle.ptr()) };
        Error::check(code)
    }
}

impl std::ops::Deref for Reply<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data()
    }
}

impl Drop for Reply<'_> {
    fn drop(&mut self) {
        // SAFETY: as in commit.
        let _ = unsafe { sys::tachyon_rpc_commit_rx(self.client.handle.ptr()) };
    }
}

// ---- the server -------------------------------------------------------------

/// The answering end of a request/reply connection.
///
/// Dropping it closes the connection: the client reads every reply sent,
/// then its waits end with [`ErrorKind::PeerClosed`].
#[derive(Debug)]
pub struct RpcServer {
    handle: Handle,
}

impl RpcServer {
    /// Create a request ring of `cap_fwd` bytes and a reply ring of `cap_rev`
    /// bytes (powers of two, 64 B to 1 GiB) and wait at `path` for one client.
    pub fn listen(path: impl AsRef<Path>, cap_fwd: usize, cap_rev: usize) -> Result<RpcServer> {
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, out a valid out-pointer.
        let code = unsafe { sys::tachyon_rpc_listen(path.as_ptr(), cap_fwd, cap_rev, &mut out) };
        Ok(RpcServer { handle: Handle::from_out(code, out)? })
    }

    /// [`RpcServer::listen`] with listener options (timeout, allowed users;
    /// the options' capacity is not used).
    pub fn listen_with(path: impl AsRef<Path>, cap_fwd: usize, cap_rev: usize, options: &ListenOptions) -> Result<RpcServer> {
        let path = c_path(path.as_ref())?;
        let mut out = ptr::null_mut();
        // SAFETY: path is NUL-terminated, options initialised, out valid.
        let code = unsafe { sys::tachyon_rpc_listen_ex(path.as_ptr(), cap_fwd, cap_rev, &options.raw, &mut out) };
        Ok(RpcServer { handle: Handle::from_out(code, out)? })
    }

    /// Wait for the next request, up to `timeout` (`None`: forever).
    /// [`ErrorKind::PeerClosed`] / [`ErrorKind::PeerDead`] once the client is
    /// gone and every request it sent has been served.
    pub fn serve(&mut self, timeout: Option<Duration>) -> Result<Request<'_>> {
        let (mut cid, mut msg_type, mut size) = (0u64, 0u32, 0usize);
        let h = &self.handle;
        // SAFETY: the handle is live; `&mut self` means no other request is held.
        let ptr = unsafe {
            sys::tachyon_rpc_serve_timeout(h.ptr(), &mut cid, &mut msg_type, &mut size, h.spin, duration_to_ms(timeout))
        };
        if ptr.is_null() {
            return Err(h.last_error());
        }
        Ok(Request { server: self, ptr: ptr.cast(), len: size, msg_type: msg_type as u16, cid })
    }

    /// Send `data` as the reply to call `cid`, waiting for room up to
    /// `timeout` (`None`: forever; the client makes room by reading replies).
    pub fn reply(&mut self, cid: u64, msg_type: u32, data: &[u8], timeout: Option<Duration>) -> Result<()> {
        self.reply_with(cid, msg_type, data.len(), timeout, |buf| {
            buf[..data.len()].copy_from_slice(data);
            data.len()
        })
    }

    /// Send the reply to call `cid` written in place: `fill` gets a slot of
    /// `max_size` bytes and returns how many it wrote.
    pub fn reply_with<F>(&mut self, cid: u64, msg_type: u32, max_size: usize, timeout: Option<Duration>, fill: F) -> Result<()>
    where
        F: FnOnce(&mut [u8]) -> usize,
    {
        reply_in_place(&self.handle, cid, msg_type, max_size, duration_to_ms(timeout), fill)
    }

    /// Send an error reply to call `cid`: [`MSG_TYPE_ERROR`] carrying the
    /// request's `msg_type` (what a client's call turns into
    /// [`ErrorKind::ErrorReply`]).
    pub fn reply_error(&mut self, cid: u64, msg_type: u16) -> Result<()> {
        self.reply(cid, MSG_TYPE_ERROR.into(), &msg_type.to_be_bytes(), None)
    }

    /// Answer requests until the client closes the connection (`Ok(())`).
    ///
    /// For each request, `handler(msg_type, request, reply)` writes the reply
    /// into `reply` (a slot of `max_reply` bytes in shared memory) and
    /// returns `Some(length)`: it is sent with the request's message type.
    /// `None` (or a length above `max_reply`) sends an error reply instead
    /// ([`MSG_TYPE_ERROR`]). A client that died ends it with
    /// [`ErrorKind::PeerDead`]; any other error ends it too.
    pub fn run<F>(&mut self, max_reply: usize, mut handler: F) -> Result<()>
    where
        F: FnMut(u16, &[u8], &mut [u8]) -> Option<usize>,
    {
        loop {
            let request = match self.serve(None) {
                Ok(request) => request,
                Err(err) if err.kind() == ErrorKind::PeerClosed => return Ok(()),
                Err(err) => return Err(err),
            };
            let (cid, msg_type) = (request.correlation_id(), request.msg_type());
            let mut refused = false;
            // The reply is written while the request is still held, so the
            // handler reads and writes shared memory without a copy.
            let result = reply_in_place(&request.server.handle, cid, msg_type.into(), max_reply, -1, |out| {
                match handler(msg_type, request.data(), out) {
                    Some(n) if n <= out.len() => n,
                    _ => {
                        refused = true;
                        usize::MAX // more than the slot: given back unsent
                    }
                }
            });
            drop(request);
            match result {
                Ok(()) => {}
                Err(_) if refused => self.reply_error(cid, msg_type)?,
                Err(err) => return Err(err),
            }
        }
    }

    /// How many times serve polls before it sleeps (default 10 000).
    pub fn set_spin(&mut self, spins: u32) {
        self.handle.spin = spins;
    }

    /// Spin then sleep while serving (default), or never sleep.
    pub fn set_polling_mode(&mut self, mode: PollingMode) {
        self.handle.set_polling_mode(mode)
    }

    /// Ready, Disconnected (the client is gone), FatalError (a corrupt ring).
    pub fn state(&self) -> State {
        self.handle.state()
    }

    /// Whether the client process lives and has not closed the connection.
    pub fn peer_alive(&mut self) -> bool {
        self.handle.peer_alive()
    }

    /// The largest reply payload.
    pub fn max_reply(&self) -> usize {
        // SAFETY: the handle is live.
        unsafe { sys::tachyon_rpc_max_reply(self.handle.ptr()) }
    }

    /// The raw handle, for calls this crate does not wrap (do not destroy it).
    pub fn as_raw(&self) -> *mut sys::tachyon_rpc_bus_t {
        self.handle.ptr()
    }
}

/// Acquire a reply slot (waiting for room up to timeout_ms), let `fill`
/// write it, commit it as the reply to `cid`. A length above the slot rolls
/// it back with InvalidSize.
fn reply_in_place<F>(h: &Handle, cid: u64, msg_type: u32, max_size: usize, timeout_ms: i32, fill: F) -> Result<()>
where
    F: FnOnce(&mut [u8]) -> usize,
{
    if cid == 0 {
        return Err(Error::new(ErrorKind::InvalidSize, "correlation id 0 answers no call (use the request's id)"));
    }
    // SAFETY: the handle is live; the server side's sending calls are ours
    // (one thread: `&mut` on the server or its request).
    let slot = unsafe { sys::tachyon_rpc_acquire_reply_tx_timeout(h.ptr(), max_size, timeout_ms) };
    let Some(slot) = NonNull::new(slot.cast::<u8>()) else {
        return Err(h.last_error());
    };
    // SAFETY: at least max_size writable bytes, ours until commit or rollback.
    let buf = unsafe { std::slice::from_raw_parts_mut(slot.as_ptr(), max_size) };
    let len = fill(buf);
    if len > max_size {
        // SAFETY: the slot acquired above is still ours.
        unsafe { sys::tachyon_rpc_rollback_reply(h.ptr()) };
        return Err(Error::new(ErrorKind::InvalidSize, format!("a reply of {len} bytes in a {max_size}-byte slot")));
    }
    // SAFETY: the slot is acquired; len <= max_size.
    Error::check(unsafe { sys::tachyon_rpc_commit_reply(h.ptr(), cid, len, msg_type) })
}

/// A request read in place in shared memory; released when dropped.
#[derive(Debug)]
pub struct Request<'a> {
    server: &'a mut RpcServer,
    ptr: *const u8,
    len: usize,
    msg_type: u16,
    cid: u64,
}

impl Request<'_> {
    /// The payload.
    pub fn data(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the library validated that the request's `len` bytes lie in
        // the ring; they stay ours until commit, which needs `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The request's message type (bits 15..0).
    pub fn msg_type(&self) -> u16 {
        self.msg_type
    }

    /// The call's id: what the reply must carry.
    pub fn correlation_id(&self) -> u64 {
        self.cid
    }

    /// Answer this request with `data` (its message type `msg_type`), then
    /// release it. Waits for room up to `timeout` (`None`: forever).
    pub fn reply(self, msg_type: u32, data: &[u8], timeout: Option<Duration>) -> Result<()> {
        self.reply_with(msg_type, data.len(), timeout, |_, buf| {
            buf[..data.len()].copy_from_slice(data);
            data.len()
        })
    }

    /// Answer this request in place: `fill(request, reply)` reads the request
    /// and writes up to `max_size` bytes of reply, returning how many.
    pub fn reply_with<F>(self, msg_type: u32, max_size: usize, timeout: Option<Duration>, fill: F) -> Result<()>
    where
        F: FnOnce(&[u8], &mut [u8]) -> usize,
    {
        let request = self.data();
        reply_in_place(&self.server.handle, self.cid, msg_type, max_size, duration_to_ms(timeout), |out| fill(request, out))
    }

    /// Release the request now and see any error.
    pub fn commit(self) -> Result<()> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the handle is live and holds the request this guard owns.
        Error::check(unsafe { sys::tachyon_rpc_commit_serve(this.server.handle.ptr()) })
    }
}

impl std::ops::Deref for Request<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data()
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        // SAFETY: as in commit.
        let _ = unsafe { sys::tachyon_rpc_commit_serve(self.server.handle.ptr()) };
    }
}
