//! Dropping root after the capture sockets are open.
//!
//! An AF_PACKET socket needs CAP_NET_RAW to open, not to read: open every capture first, then
//! drop to an unprivileged user; the open descriptors and ring mappings stay usable.

use std::ffi::CString;
use std::io;

/// Largest buffer tried for the passwd entry's strings.
const MAX_PW_BUF: usize = 1 << 20;

fn err(user: &str, step: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("drop privileges to {user:?}: {step}: {e}"))
}

/// The uid and gid of `user` (getpwnam_r).
fn lookup(user: &str) -> io::Result<(libc::uid_t, libc::gid_t)> {
    let name = CString::new(user).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("drop privileges to {user:?}: NUL in user name"))
    })?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: passwd is plain data; all-zero is a valid value.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call: `name` is NUL-terminated, `pw`, `buf`
        // (with its true length) and `result` are writable; the strings getpwnam_r stores
        // point into `buf`, which we do not read.
        let r = unsafe { libc::getpwnam_r(name.as_ptr(), &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
        if r == libc::ERANGE && buf.len() < MAX_PW_BUF {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if r != 0 {
            return Err(err(user, "getpwnam_r", io::Error::from_raw_os_error(r)));
        }
        if result.is_null() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("drop privileges to {user:?}: no such user")));
        }
        return Ok((pw.pw_uid, pw.pw_gid));
    }
}

fn check(r: libc::c_int, user: &str, step: &str) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(err(user, step, io::Error::last_os_error()))
    }
}

/// Switches the whole process to `user`: supplementary groups to the user's primary group
/// only, then gid, then uid. Verifies that the real and effective ids are the user's and that
/// root cannot be regained.
pub(crate) fn drop_privileges(user: &str) -> io::Result<()> {
    let (uid, gid) = lookup(user)?;
    let groups = [gid];
    // SAFETY: `groups` holds one valid gid and its length is passed with it.
    check(unsafe { libc::setgroups(1, groups.as_ptr()) }, user, "setgroups")?;
    // SAFETY: plain system calls on integers. glibc applies them to every thread.
    check(unsafe { libc::setgid(gid) }, user, "setgid")?;
    // SAFETY: as above.
    check(unsafe { libc::setuid(uid) }, user, "setuid")?;

    // SAFETY: getters without arguments.
    let (ruid, euid, rgid, egid) = unsafe { (libc::getuid(), libc::geteuid(), libc::getgid(), libc::getegid()) };
    if (ruid, euid, rgid, egid) != (uid, uid, gid, gid) {
        return Err(io::Error::other(format!(
            "drop privileges to {user:?}: still uid {ruid}/{euid} gid {rgid}/{egid}, wanted {uid}/{gid}"
        )));
    }
    // SAFETY: plain system call; it must fail now.
    if unsafe { libc::setuid(0) } == 0 {
        return Err(io::Error::other(format!(
            "drop privileges to {user:?}: setuid(0) still succeeds (is {user:?} root?)"
        )));
    }
    Ok(())
}

/// Whether the process runs as root (effective uid 0).
#[cfg(test)]
pub(crate) fn is_root() -> bool {
    // SAFETY: a getter without arguments.
    unsafe { libc::geteuid() == 0 }
}
