//! Heap storage that a `Handshake<'static>` may borrow from.
//!
//! The core's `Handshake<'a>` borrows the authenticator and the request it
//! was started with. A C handle must own both, so the handle keeps them in
//! allocations that never move or change while the handshake lives, and
//! drops the handshake first. `Owned<T>` is that allocation: unlike `Box`,
//! moving it asserts nothing about uniqueness, so references derived from
//! it stay valid when the handle that holds it moves.

use std::ptr::NonNull;

/// An immutable heap value whose address is stable for its whole life.
pub(crate) struct Owned<T: ?Sized>(NonNull<T>);

impl<T: ?Sized> Owned<T> {
    pub(crate) fn new(value: Box<T>) -> Self {
        Owned(NonNull::from(Box::leak(value)))
    }

    /// A reference that lives as long as the caller keeps `self` alive and
    /// does not drop it.
    ///
    /// # Safety
    /// The caller must not let the returned reference outlive `self`.
    pub(crate) unsafe fn extend<'a>(&self) -> &'a T {
        // SAFETY: the pointer came from a leaked Box, is never written
        // through, and the caller keeps `self` (the owner) alive for `'a`.
        unsafe { self.0.as_ref() }
    }

    pub(crate) fn get(&self) -> &T {
        // SAFETY: as in `extend`, bounded by the borrow of `self`.
        unsafe { self.0.as_ref() }
    }
}

impl<T: ?Sized> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `new` and is freed once, here.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

// SAFETY: `Owned<T>` is an immutable owning pointer, like `Box<T>`.
unsafe impl<T: ?Sized + Send> Send for Owned<T> {}
// SAFETY: only shared access is ever handed out.
unsafe impl<T: ?Sized + Sync> Sync for Owned<T> {}
