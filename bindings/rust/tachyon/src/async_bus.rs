//! [`AsyncBus`]: a [`Bus`] that waits inside a tokio runtime (feature
//! `tokio`), on the bus's event-loop descriptor through
//! `tokio::io::unix::AsyncFd`, instead of blocking a thread.
//!
//! Every wait has the same shape: try the non-blocking call; when it finds
//! nothing, arm the descriptor ([`Bus::arm`]); if the arm says it is there
//! already, try again, else wait until the descriptor is readable (tokio's
//! readiness is edge-triggered and cleared after each wake-up; an event
//! after the arm always makes a new edge, because the arm left the
//! descriptor unreadable). Nothing is taken from the ring before the wait
//! has ended, and the step that takes it has no `.await` in it, so a future
//! dropped while it waits (a `select!` branch that lost, a timeout, an
//! aborted task) has taken nothing: a cancelled receive leaves its message
//! for the next one, a cancelled send has sent nothing.

use std::future::Future;
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::bus::{Bus, ListenOptions, Wait};
use crate::error::{Error, ErrorKind, Result};
use crate::rx::{Batch, RxGuard};
use crate::tx::TxGuard;

/// The bus's descriptor as tokio sees it. It does not own the descriptor:
/// the bus closes it.
#[derive(Debug)]
struct BusFd(RawFd);

impl AsRawFd for BusFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A [`Bus`] whose receives and sends wait on the tokio runtime.
///
/// ```no_run
/// use tachyon::{AsyncBus, ErrorKind};
///
/// # async fn consume() -> tachyon::Result<()> {
/// let mut bus = AsyncBus::listen("/tmp/quotes.sock", 1 << 20).await?;
/// let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
/// loop {
///     tokio::select! {
///         msg = bus.recv() => match msg {
///             Ok(msg) => println!("type {} with {} bytes", msg.type_id(), msg.len()),
///             Err(e) if e.kind() == ErrorKind::PeerClosed => break,
///             Err(e) => return Err(e),
///         },
///         _ = ticks.tick() => println!("still here"),
///     }
/// }
/// # Ok(())
/// # }
/// ```
///
/// It must be made inside a tokio runtime with I/O enabled (and time, for
/// the `_timeout` calls). Every method takes `&mut self`, as [`Bus`]'s do:
/// one task at a time works the bus (move it between tasks and threads
/// freely: it is `Send`). Errors are [`Bus`]'s: [`ErrorKind::PeerClosed`]
/// and [`ErrorKind::PeerDead`] once the peer is gone and everything it
/// committed was read, [`ErrorKind::Fatal`] for a corrupt ring.
#[derive(Debug)]
pub struct AsyncBus {
    // Declared before `bus`: deregistered from the reactor before the bus
    // closes the descriptor.
    fd: AsyncFd<BusFd>,
    bus: Bus,
}

fn io_error(doing: &str, e: std::io::Error) -> Error {
    Error::new(ErrorKind::System, format!("{doing}: {e}"))
}

impl AsyncBus {
    /// Watch `bus`'s descriptor on the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or in one without I/O enabled (as tokio's
    /// `AsyncFd::new` does).
    pub fn new(bus: Bus) -> Result<AsyncBus> {
        let fd = bus.event_fd()?;
        // Newer tokio releases deprecate with_interest for descriptors whose
        // owner may close them first; this one is owned by `bus`, which the
        // AsyncBus holds and drops after `fd` (field order), so it outlives
        // the registration.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(BusFd(fd), Interest::READABLE)
            .map_err(|e| io_error("registering the bus's descriptor with the tokio runtime", e))?;
        Ok(AsyncBus { fd, bus })
    }

    /// [`Bus::listen`] on tokio's blocking pool. Dropping the future does not
    /// stop the listen: it goes on until a peer comes; bound it with
    /// [`AsyncBus::listen_with`] and [`ListenOptions::timeout`].
    pub async fn listen(path: impl AsRef<Path>, capacity: usize) -> Result<AsyncBus> {
        AsyncBus::listen_with(path, &ListenOptions::new(capacity)).await
    }

    /// [`Bus::listen_with`] on tokio's blocking pool.
    pub async fn listen_with(path: impl AsRef<Path>, options: &ListenOptions) -> Result<AsyncBus> {
        let (path, options) = (path.as_ref().to_path_buf(), options.clone());
        let bus = blocking(move || Bus::listen_with(path, &options)).await?;
        AsyncBus::new(bus)
    }

    /// [`Bus::connect_timeout`] on tokio's blocking pool.
    pub async fn connect(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<AsyncBus> {
        let path = path.as_ref().to_path_buf();
        let bus = blocking(move || Bus::connect_timeout(path, timeout)).await?;
        AsyncBus::new(bus)
    }

    /// The bus, for the calls that do not wait ([`Bus::stats`], [`Bus::send`]
    /// without waiting, [`Bus::try_recv`], ...).
    pub fn bus(&mut self) -> &mut Bus {
        &mut self.bus
    }

    /// Stop watching and give the bus back.
    pub fn into_inner(self) -> Bus {
        let AsyncBus { fd, bus } = self;
        drop(fd.into_inner()); // deregisters
        bus
    }

    // ---- consumer -----------------------------------------------------------

    /// The next message, waiting for it on the runtime. Consumer side.
    pub async fn recv(&mut self) -> Result<RxGuard<'_>> {
        let RawRx(ptr, size, type_id) = self.ready(Wait::Rx, try_rx).await?;
        // SAFETY: the slot the last acquire returned, `size` readable bytes,
        // ours until committed; the guard commits it.
        Ok(unsafe { RxGuard::new(&mut self.bus, ptr, size, type_id) })
    }

    /// [`AsyncBus::recv`], giving up after `timeout` with
    /// [`ErrorKind::Timeout`]. Consumer side.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<RxGuard<'_>> {
        let RawRx(ptr, size, type_id) = within(timeout, "no message", self.ready(Wait::Rx, try_rx)).await?;
        // SAFETY: as in recv.
        Ok(unsafe { RxGuard::new(&mut self.bus, ptr, size, type_id) })
    }

    /// Wait for at least one message, then take up to `max_msgs` of those
    /// there, in place; released when the batch is dropped. Consumer side.
    pub async fn recv_batch(&mut self, max_msgs: usize) -> Result<Batch<'_>> {
        let n = self.ready(Wait::Rx, |bus| try_batch(bus, max_msgs)).await?;
        Ok(Batch::new(&mut self.bus, n))
    }

    /// [`AsyncBus::recv_batch`] giving up after `timeout`. Consumer side.
    pub async fn recv_batch_timeout(&mut self, max_msgs: usize, timeout: Duration) -> Result<Batch<'_>> {
        let n = within(timeout, "no message", self.ready(Wait::Rx, |bus| try_batch(bus, max_msgs))).await?;
        Ok(Batch::new(&mut self.bus, n))
    }

    // ---- producer -----------------------------------------------------------

    /// A slot for up to `max_size` bytes, waiting for room on the runtime.
    /// Producer side.
    pub async fn acquire_tx(&mut self, max_size: usize) -> Result<TxGuard<'_>> {
        let RawTx(slot) = self.ready(Wait::Tx, |bus| try_tx(bus, max_size)).await?;
        Ok(TxGuard::new(&mut self.bus, slot, max_size))
    }

    /// [`AsyncBus::acquire_tx`] giving up after `timeout` with
    /// [`ErrorKind::Timeout`]. Producer side.
    pub async fn acquire_tx_timeout(&mut self, max_size: usize, timeout: Duration) -> Result<TxGuard<'_>> {
        let RawTx(slot) = within(timeout, "no room", self.ready(Wait::Tx, |bus| try_tx(bus, max_size))).await?;
        Ok(TxGuard::new(&mut self.bus, slot, max_size))
    }

    /// Copy `data` in as one message, waiting for room. Producer side.
    pub async fn send(&mut self, data: &[u8], type_id: u32) -> Result<()> {
        let mut tx = self.acquire_tx(data.len()).await?;
        tx.write(data)?;
        tx.set_type_id(type_id);
        tx.commit()
    }

    /// [`AsyncBus::send`] giving up after `timeout`. Producer side.
    pub async fn send_timeout(&mut self, data: &[u8], type_id: u32, timeout: Duration) -> Result<()> {
        let mut tx = self.acquire_tx_timeout(data.len(), timeout).await?;
        tx.write(data)?;
        tx.set_type_id(type_id);
        tx.commit()
    }

    // ---- waiting ------------------------------------------------------------

    /// Run `attempt` until it finds something, waiting on the descriptor in
    /// between. `attempt` must take nothing when it returns `Ok(None)`.
    async fn ready<T>(&mut self, side: Wait, mut attempt: impl FnMut(&mut Bus) -> Result<Option<T>>) -> Result<T> {
        let mut told_in_vain = 0u32;
        loop {
            if let Some(found) = attempt(&mut self.bus)? {
                return Ok(found);
            }
            if self.bus.arm(side)? {
                // There already. A readiness the attempt cannot use twice in
                // a row (a message not complete yet) must not spin the
                // runtime: let other tasks run once.
                told_in_vain += 1;
                if told_in_vain > 1 {
                    YieldOnce(false).await;
                }
                continue;
            }
            told_in_vain = 0;
            let mut woken = self
                .fd
                .readable()
                .await
                .map_err(|e| io_error("waiting for the bus's descriptor", e))?;
            // Consumed: the next wait is for a new edge. One that came
            // after this wake-up is kept by tokio (its readiness tick moved).
            woken.clear_ready();
        }
    }
}

/// A received slot, moved out of the wait as plain values (raw pointers are
/// not `Send`, and the futures must be).
struct RawRx(*const u8, usize, u32);
// SAFETY: the pointer is only turned into a guard on the bus that gave it,
// by the task that owns that bus; moving it between threads changes nothing.
unsafe impl Send for RawRx {}

struct RawTx(NonNull<u8>);
// SAFETY: as RawRx.
unsafe impl Send for RawTx {}

fn try_rx(bus: &mut Bus) -> Result<Option<RawRx>> {
    Ok(bus.try_acquire_rx_raw()?.map(|(p, s, t)| RawRx(p, s, t)))
}

fn try_batch(bus: &mut Bus, max_msgs: usize) -> Result<Option<usize>> {
    Ok(Some(bus.try_acquire_batch_raw(max_msgs)?).filter(|&n| n > 0))
}

fn try_tx(bus: &mut Bus, max_size: usize) -> Result<Option<RawTx>> {
    Ok(bus.try_acquire_tx_raw(max_size)?.map(RawTx))
}

/// `wait`, or [`ErrorKind::Timeout`] after `timeout`. A wait that is dropped
/// at the deadline has taken nothing.
async fn within<T>(timeout: Duration, what: &str, wait: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(timeout, wait).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(ErrorKind::Timeout, format!("{what} within {timeout:?}"))),
    }
}

/// A blocking call on tokio's blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(Error::new(ErrorKind::System, format!("the blocking task failed: {e}"))),
    }
}

/// Pending once (waking itself at once), then ready: lets the runtime run
/// other tasks.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
