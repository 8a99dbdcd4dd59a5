//! The error type: one variant per C error code, plus the few errors that
//! only the Rust side can make.

use std::ffi::CStr;
use std::fmt;

use tachyon_sys as sys;

/// What went wrong in a Tachyon call.
///
/// Each variant but the last two maps one `TACHYON_ERR_*` code of the C
/// library; [`Error::code`] gives it back. Messages come from the C library's
/// `tachyon_strerror`, so Rust and C users read the same words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A required pointer was NULL (a bug in this crate if you see it).
    NullPointer,
    /// Out of memory.
    OutOfMemory,
    /// The shared memory file or the socket could not be created.
    Open,
    /// The shared memory could not be sized, or the peer's is smaller than it claims.
    Truncate,
    /// The socket file's permissions could not be set.
    Chmod,
    /// The shared memory could not be sealed, or the peer's is not sealed.
    Seal,
    /// The shared memory could not be mapped.
    Map,
    /// A size or capacity out of range.
    InvalidSize,
    /// The ring is full: the consumer has not caught up.
    Full,
    /// No message available.
    Empty,
    /// A Unix socket call failed (is a listener running at that path?).
    Network,
    /// Another system call failed.
    System,
    /// A signal interrupted a blocking call.
    Interrupted,
    /// The peer speaks a different protocol.
    AbiMismatch,
    /// The peer process ended (or was killed) without closing the bus. Every
    /// message it committed before that was delivered first.
    PeerDead,
    /// The peer closed the bus: a clean end of the stream, after every
    /// message it sent was delivered.
    PeerClosed,
    /// The bus was made by the parent of this fork()ed process and cannot be
    /// used here.
    Forked,
    /// Request/reply: the next reply answers another call (replies come in
    /// the order the calls were made).
    WrongReply,
    /// The connecting process's user is not allowed on this bus.
    Permission,
    /// The shared ring is corrupt; the bus can no longer be used.
    Fatal,
    /// A call out of order (commit without acquire, ...).
    State,
    /// A timed wait expired.
    Timeout,
    /// Another live listener owns the socket path.
    AddrInUse,
    /// The socket path exists and is not a socket.
    NotSocket,
    /// The socket path does not fit in a Unix socket address.
    PathTooLong,
    /// The socket path contains a NUL byte or is not valid for the C library.
    InvalidPath,
    /// A code this crate does not know (a newer C library).
    Unknown(u32),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The error for a C code; `None` for `TACHYON_SUCCESS`.
    pub fn from_code(code: sys::tachyon_error_t) -> Option<Error> {
        use Error::*;
        Some(match code {
            sys::TACHYON_SUCCESS => return None,
            sys::TACHYON_ERR_NULL_PTR => NullPointer,
            sys::TACHYON_ERR_MEM => OutOfMemory,
            sys::TACHYON_ERR_OPEN => Open,
            sys::TACHYON_ERR_TRUNCATE => Truncate,
            sys::TACHYON_ERR_CHMOD => Chmod,
            sys::TACHYON_ERR_SEAL => Seal,
            sys::TACHYON_ERR_MAP => Map,
            sys::TACHYON_ERR_INVALID_SZ => InvalidSize,
            sys::TACHYON_ERR_FULL => Full,
            sys::TACHYON_ERR_EMPTY => Empty,
            sys::TACHYON_ERR_NETWORK => Network,
            sys::TACHYON_ERR_SYSTEM => System,
            sys::TACHYON_ERR_INTERRUPTED => Interrupted,
            sys::TACHYON_ERR_ABI_MISMATCH => AbiMismatch,
            sys::TACHYON_ERR_PEER_DEAD => PeerDead,
            sys::TACHYON_ERR_PERMISSION => Permission,
            sys::TACHYON_ERR_FATAL => Fatal,
            sys::TACHYON_ERR_STATE => State,
            sys::TACHYON_ERR_TIMEOUT => Timeout,
            sys::TACHYON_ERR_ADDR_IN_USE => AddrInUse,
            sys::TACHYON_ERR_NOT_SOCKET => NotSocket,
            sys::TACHYON_ERR_PATH_TOO_LONG => PathTooLong,
            sys::TACHYON_ERR_PEER_CLOSED => PeerClosed,
            sys::TACHYON_ERR_FORKED => Forked,
            sys::TACHYON_ERR_WRONG_REPLY => WrongReply,
            other => Unknown(other),
        })
    }

    /// The C code of this error; `None` for [`Error::InvalidPath`], which
    /// the Rust side detects before calling C.
    pub fn code(&self) -> Option<sys::tachyon_error_t> {
        use Error::*;
        Some(match *self {
            NullPointer => sys::TACHYON_ERR_NULL_PTR,
            OutOfMemory => sys::TACHYON_ERR_MEM,
            Open => sys::TACHYON_ERR_OPEN,
            Truncate => sys::TACHYON_ERR_TRUNCATE,
            Chmod => sys::TACHYON_ERR_CHMOD,
            Seal => sys::TACHYON_ERR_SEAL,
            Map => sys::TACHYON_ERR_MAP,
            InvalidSize => sys::TACHYON_ERR_INVALID_SZ,
            Full => sys::TACHYON_ERR_FULL,
            Empty => sys::TACHYON_ERR_EMPTY,
            Network => sys::TACHYON_ERR_NETWORK,
            System => sys::TACHYON_ERR_SYSTEM,
            Interrupted => sys::TACHYON_ERR_INTERRUPTED,
            AbiMismatch => sys::TACHYON_ERR_ABI_MISMATCH,
            PeerDead => sys::TACHYON_ERR_PEER_DEAD,
            Permission => sys::TACHYON_ERR_PERMISSION,
            Fatal => sys::TACHYON_ERR_FATAL,
            State => sys::TACHYON_ERR_STATE,
            Timeout => sys::TACHYON_ERR_TIMEOUT,
            AddrInUse => sys::TACHYON_ERR_ADDR_IN_USE,
            NotSocket => sys::TACHYON_ERR_NOT_SOCKET,
            PathTooLong => sys::TACHYON_ERR_PATH_TOO_LONG,
            PeerClosed => sys::TACHYON_ERR_PEER_CLOSED,
            Forked => sys::TACHYON_ERR_FORKED,
            WrongReply => sys::TACHYON_ERR_WRONG_REPLY,
            InvalidPath => return None,
            Unknown(code) => code,
        })
    }

    /// `Ok(())` for success, otherwise the error.
    pub(crate) fn check(code: sys::tachyon_error_t) -> Result<()> {
        match Error::from_code(code) {
            None => Ok(()),
            Some(err) => Err(err),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code() {
            None => f.write_str("the socket path contains a NUL byte"),
            Some(code) => {
                // SAFETY: tachyon_strerror returns a static NUL-terminated
                // string for any code, known or not.
                let msg = unsafe { CStr::from_ptr(sys::tachyon_strerror(code)) };
                write!(f, "{} (tachyon error {code})", msg.to_string_lossy())
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        use std::io::ErrorKind;
        let kind = match err {
            Error::Timeout => ErrorKind::TimedOut,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::PeerDead | Error::PeerClosed => ErrorKind::BrokenPipe,
            Error::Permission => ErrorKind::PermissionDenied,
            Error::AddrInUse => ErrorKind::AddrInUse,
            Error::Full | Error::Empty => ErrorKind::WouldBlock,
            Error::InvalidSize | Error::InvalidPath | Error::PathTooLong => ErrorKind::InvalidInput,
            Error::OutOfMemory => ErrorKind::OutOfMemory,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in 1..=sys::TACHYON_ERR_WRONG_REPLY {
            let err = Error::from_code(code).expect("non-zero is an error");
            assert!(!matches!(err, Error::Unknown(_)), "code {code} is not mapped");
            assert_eq!(err.code(), Some(code));
        }
        assert_eq!(Error::from_code(sys::TACHYON_SUCCESS), None);
        assert_eq!(Error::from_code(999), Some(Error::Unknown(999)));
    }

    #[test]
    fn display_uses_the_c_message() {
        let text = Error::PeerDead.to_string();
        assert!(text.contains("peer") && text.contains("15"), "{text}");
        assert_eq!(Error::Unknown(999).to_string(), "unknown error (tachyon error 999)");
        assert!(Error::InvalidPath.to_string().contains("NUL"));
    }
}
