//! The only `unsafe` in Autonomos: two calls whose safety rests on fd
//! ownership the compiler cannot see. Everything else goes through rustix's
//! safe wrappers.
#![allow(unsafe_code)]

use std::os::fd::{BorrowedFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Registers a pidfd with the reactor, to learn when the process exits.
pub fn watch_fd(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd stays open and names the same file description
    // until it is dropped, and the AsyncFd owns it for its whole life.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

/// Sets FD_CLOEXEC on a descriptor known only by number.
pub fn set_cloexec(fd: i32) -> std::io::Result<()> {
    // SAFETY: the borrow lives only for the two fcntl calls; if the number
    // was closed meanwhile, fcntl fails with EBADF and nothing else happens.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = rustix::io::fcntl_getfd(borrowed)?;
    rustix::io::fcntl_setfd(borrowed, flags | rustix::io::FdFlags::CLOEXEC)?;
    Ok(())
}
