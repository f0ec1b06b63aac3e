//! The only `unsafe` in Autonomos: two calls whose safety rests on fd
//! ownership the compiler cannot see, and the password database lookup
//! (libc's `getpwuid_r`, so NSS sources such as LDAP answer too).
//! Everything else goes through rustix's safe wrappers.
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

/// The user name of `uid` from the password database, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the
    // read of `pw.pw_name`, which points into it.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_name is a NUL-terminated string in `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    let name = name.to_string_lossy().into_owned();
    (!name.is_empty()).then_some(name)
}
