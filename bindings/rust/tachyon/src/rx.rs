//! Reading messages in place, one at a time or in batches.

use std::marker::PhantomData;

use tachyon_sys as sys;

use crate::bus::Bus;
use crate::error::{Error, Result};

/// One received message, read in place in the ring. The slot is released
/// (the producer may reuse it) when the guard is dropped or committed.
#[derive(Debug)]
pub struct RxGuard<'a> {
    bus: &'a mut Bus,
    ptr: *const u8,
    len: usize,
    type_id: u32,
    finished: bool,
}

impl<'a> RxGuard<'a> {
    /// # Safety
    ///
    /// `ptr` must be the slot the last acquire_rx* call on `bus` returned,
    /// with `len` readable bytes, not yet committed.
    pub(crate) unsafe fn new(bus: &'a mut Bus, ptr: *const u8, len: usize, type_id: u32) -> RxGuard<'a> {
        RxGuard { bus, ptr, len, type_id, finished: false }
    }

    /// The payload.
    pub fn data(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the library validated that the slot of `len` bytes lies
        // inside the ring; it stays ours until commit, which needs `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The type id the producer committed with.
    pub fn type_id(&self) -> u32 {
        self.type_id
    }

    /// The message type (bits 15..0 of the type id).
    pub fn msg_type(&self) -> u16 {
        crate::msg_type(self.type_id)
    }

    /// The route id (bits 31..16 of the type id).
    pub fn route_id(&self) -> u16 {
        crate::route_id(self.type_id)
    }

    /// Release the slot now and see any error.
    pub fn commit(mut self) -> Result<()> {
        self.release()
    }

    fn release(&mut self) -> Result<()> {
        self.finished = true;
        // SAFETY: the bus is live and holds the slot this guard owns.
        Error::check(unsafe { sys::tachyon_commit_rx(self.bus.as_raw()) })
    }
}

impl std::ops::Deref for RxGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data()
    }
}

impl Drop for RxGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.release();
        }
    }
}

/// Messages taken together with [`Bus::drain_batch`] or
/// [`Bus::try_recv_batch`], all released when the batch is dropped.
#[derive(Debug)]
pub struct Batch<'a> {
    bus: &'a mut Bus,
    len: usize,
    finished: bool,
}

/// One message of a [`Batch`].
#[derive(Debug, Clone, Copy)]
pub struct Message<'b> {
    data: &'b [u8],
    type_id: u32,
}

impl<'b> Message<'b> {
    pub fn data(&self) -> &'b [u8] {
        self.data
    }
    pub fn type_id(&self) -> u32 {
        self.type_id
    }
}

impl<'a> Batch<'a> {
    pub(crate) fn new(bus: &'a mut Bus, len: usize) -> Batch<'a> {
        Batch { bus, len, finished: false }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`th message, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<Message<'_>> {
        (i < self.len).then(|| message_of(&self.bus.views()[i]))
    }

    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter { views: self.bus.views()[..self.len].iter(), _batch: PhantomData }
    }

    /// Release every message of the batch now and see any error.
    pub fn commit(mut self) -> Result<()> {
        self.release()
    }

    fn release(&mut self) -> Result<()> {
        self.finished = true;
        if self.len == 0 {
            return Ok(());
        }
        let views = self.bus.views().as_ptr();
        // SAFETY: the first `len` views are the ones the last batch call
        // filled; the bus is live and holds them.
        Error::check(unsafe { sys::tachyon_commit_rx_batch(self.bus.as_raw(), views, self.len) })
    }
}

fn message_of(view: &sys::tachyon_msg_view_t) -> Message<'_> {
    let data = if view.actual_size == 0 || view.ptr.is_null() {
        &[][..]
    } else {
        // SAFETY: the library filled this view with a validated slot inside
        // the ring that stays ours until the batch is committed, which needs
        // the batch borrowed mutably, so no Message outlives it.
        unsafe { std::slice::from_raw_parts(view.ptr.cast::<u8>(), view.actual_size) }
    };
    Message { data, type_id: view.type_id }
}

/// Iterator over a [`Batch`].
pub struct BatchIter<'b> {
    views: std::slice::Iter<'b, sys::tachyon_msg_view_t>,
    _batch: PhantomData<&'b ()>,
}

impl<'b> Iterator for BatchIter<'b> {
    type Item = Message<'b>;
    fn next(&mut self) -> Option<Message<'b>> {
        self.views.next().map(message_of)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.views.size_hint()
    }
}

impl ExactSizeIterator for BatchIter<'_> {}

impl<'b> IntoIterator for &'b Batch<'_> {
    type Item = Message<'b>;
    type IntoIter = BatchIter<'b>;
    fn into_iter(self) -> BatchIter<'b> {
        self.iter()
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.release();
        }
    }
}
