//! Writing a message in place.

use std::ptr::NonNull;

use tachyon_sys as sys;

use crate::bus::Bus;
use crate::error::{Error, ErrorKind, Result};

/// A slot reserved in the ring, written in place.
///
/// Dropping the guard commits it with the length and type id set so far
/// (the length defaults to the size reserved, the type id to 0), unless the
/// thread is panicking: then the slot is rolled back and the consumer sees
/// nothing. Call [`TxGuard::commit`] or [`TxGuard::rollback`] to choose
/// explicitly and to see errors.
#[derive(Debug)]
pub struct TxGuard<'a> {
    bus: &'a mut Bus,
    slot: NonNull<u8>,
    reserved: usize,
    len: usize,
    type_id: u32,
    finished: bool,
}

impl<'a> TxGuard<'a> {
    pub(crate) fn new(bus: &'a mut Bus, slot: NonNull<u8>, reserved: usize) -> TxGuard<'a> {
        TxGuard { bus, slot, reserved, len: reserved, type_id: 0, finished: false }
    }

    /// The whole reserved slot, to write into. It holds stale bytes from
    /// earlier messages until overwritten.
    pub fn buf(&mut self) -> &mut [u8] {
        // SAFETY: the library reserved `reserved` bytes at `slot` for us alone
        // until commit or rollback; the consumer does not read it before then.
        unsafe { std::slice::from_raw_parts_mut(self.slot.as_ptr(), self.reserved) }
    }

    /// Copy `data` to the start of the slot and set the length to match.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if data.len() > self.reserved {
            return Err(Error::new(
                ErrorKind::InvalidSize,
                format!("{} bytes do not fit the {}-byte slot reserved", data.len(), self.reserved),
            ));
        }
        self.buf()[..data.len()].copy_from_slice(data);
        self.len = data.len();
        Ok(())
    }

    /// How many bytes the message will carry (at most the size reserved).
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.reserved);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The size reserved.
    pub fn capacity(&self) -> usize {
        self.reserved
    }

    pub fn set_type_id(&mut self, type_id: u32) {
        self.type_id = type_id;
    }

    /// Publish the message to the consumer.
    pub fn commit(mut self) -> Result<()> {
        self.finish_commit()
    }

    /// Give the slot back; the consumer never sees it.
    pub fn rollback(mut self) -> Result<()> {
        self.finished = true;
        // SAFETY: the bus is live and holds the slot this guard owns.
        Error::check(unsafe { sys::tachyon_rollback_tx(self.bus.as_raw()) })
    }

    fn finish_commit(&mut self) -> Result<()> {
        self.finished = true;
        // SAFETY: the bus is live and holds the slot this guard owns;
        // len <= the size reserved.
        Error::check(unsafe { sys::tachyon_commit_tx(self.bus.as_raw(), self.len, self.type_id) })
    }
}

impl Drop for TxGuard<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Errors cannot be returned from drop; commit()/rollback() report them.
        if std::thread::panicking() {
            self.finished = true;
            // SAFETY: as in rollback.
            let _ = unsafe { sys::tachyon_rollback_tx(self.bus.as_raw()) };
        } else {
            let _ = self.finish_commit();
        }
    }
}
