//! The error type: what kind of error (one [`ErrorKind`] per C error code,
//! plus the few only the Rust side makes) and the C library's sentence
//! saying what went wrong.

use std::ffi::CStr;
use std::fmt;

use tachyon_sys as sys;

/// What kind of error a Tachyon call met.
///
/// Each kind but the last three maps one `TACHYON_ERR_*` code of the C
/// library; [`ErrorKind::code`] gives it back. Match on it through
/// [`Error::kind`]:
///
/// ```
/// # fn recv(bus: &mut tachyon::Bus) -> tachyon::Result<()> {
/// use tachyon::ErrorKind;
/// match bus.recv() {
///     Ok(msg) => println!("{} bytes", msg.len()),
///     Err(e) if e.kind() == ErrorKind::PeerClosed => println!("done"),
///     Err(e) => return Err(e),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
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
    /// Fan-out: this reader fell a whole ring behind and was dropped; the
    /// reader's `missed()` says how many messages it lost.
    Overrun,
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
    /// The socket path contains a NUL byte (detected before calling C).
    InvalidPath,
    /// Request/reply: the server answered with an error reply
    /// ([`crate::MSG_TYPE_ERROR`]): it has no handler for the request's
    /// type, or its handler failed.
    ErrorReply,
    /// A code this crate does not know (a newer C library).
    Unknown(u32),
}

impl ErrorKind {
    /// The kind of a C code; `None` for `TACHYON_SUCCESS`.
    pub fn from_code(code: sys::tachyon_error_t) -> Option<ErrorKind> {
        use ErrorKind::*;
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
            sys::TACHYON_ERR_OVERRUN => Overrun,
            other => Unknown(other),
        })
    }

    /// The C code of this kind; `None` for the kinds the Rust side makes
    /// ([`ErrorKind::InvalidPath`], [`ErrorKind::ErrorReply`]).
    pub fn code(self) -> Option<sys::tachyon_error_t> {
        use ErrorKind::*;
        Some(match self {
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
            Overrun => sys::TACHYON_ERR_OVERRUN,
            InvalidPath | ErrorReply => return None,
            Unknown(code) => code,
        })
    }

    /// The general sentence for this kind (the C library's `tachyon_strerror`).
    pub fn description(self) -> &'static str {
        match self.code() {
            // SAFETY: tachyon_strerror returns a static NUL-terminated string
            // for any code, known or not.
            Some(code) => unsafe { CStr::from_ptr(sys::tachyon_strerror(code)) }
                .to_str()
                .unwrap_or("unknown error"),
            None if self == ErrorKind::InvalidPath => "the socket path contains a NUL byte",
            None => "the server answered with an error reply",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// An error from a Tachyon call: its [`kind`](Error::kind) and the sentence
/// the C library recorded for it (the socket path and the system's reason,
/// the peer's pid, what it left unread, ...), read in the thread that got
/// the error right after the failing call.
///
/// Display prints the sentence and the code, Debug the kind too, so `?` in
/// `main` says what went wrong:
///
/// ```
/// let err = tachyon::Bus::connect("/nonexistent/tachyon.sock").unwrap_err();
/// assert_eq!(err.kind(), tachyon::ErrorKind::Network);
/// assert!(err.to_string().contains("/nonexistent/tachyon.sock"), "{err}");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Error {
    kind: ErrorKind,
    message: Box<str>,
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` with a sentence of its own.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into().into_boxed_str() }
    }

    /// The error `code` just returned to this thread by the C library, with
    /// the detail it recorded; `None` for `TACHYON_SUCCESS`. Call it right
    /// after the failing call, before any other call into the library on this
    /// thread (the detail is kept per thread until its next call).
    pub fn from_code(code: sys::tachyon_error_t) -> Option<Error> {
        let kind = ErrorKind::from_code(code)?;
        // SAFETY: tachyon_error_message returns a NUL-terminated string that
        // stays valid until this thread's next call into the library; it is
        // copied at once.
        let message = unsafe { CStr::from_ptr(sys::tachyon_error_message(code)) }.to_string_lossy();
        Some(Error::new(kind, message))
    }

    /// What kind of error it is: match on this.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The C code; `None` for the kinds the Rust side makes.
    pub fn code(&self) -> Option<sys::tachyon_error_t> {
        self.kind.code()
    }

    /// The sentence saying what went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `Ok(())` for success, otherwise the error with its detail.
    pub(crate) fn check(code: sys::tachyon_error_t) -> Result<()> {
        match Error::from_code(code) {
            None => Ok(()),
            Some(err) => Err(err),
        }
    }
}

impl From<ErrorKind> for Error {
    /// An error of `kind` with the general sentence for it.
    fn from(kind: ErrorKind) -> Error {
        Error::new(kind, kind.description())
    }
}

impl PartialEq<ErrorKind> for Error {
    fn eq(&self, kind: &ErrorKind) -> bool {
        self.kind == *kind
    }
}

impl PartialEq<Error> for ErrorKind {
    fn eq(&self, err: &Error) -> bool {
        *self == err.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code() {
            Some(code) => write!(f, "{} (tachyon error {code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(code) = self.code() {
            d.field("code", &code);
        }
        d.field("message", &&*self.message).finish()
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind {
            ErrorKind::Timeout => Io::TimedOut,
            ErrorKind::Interrupted => Io::Interrupted,
            ErrorKind::PeerDead | ErrorKind::PeerClosed => Io::BrokenPipe,
            ErrorKind::Permission => Io::PermissionDenied,
            ErrorKind::AddrInUse => Io::AddrInUse,
            ErrorKind::Full | ErrorKind::Empty => Io::WouldBlock,
            ErrorKind::InvalidSize | ErrorKind::InvalidPath | ErrorKind::PathTooLong => Io::InvalidInput,
            ErrorKind::OutOfMemory => Io::OutOfMemory,
            _ => Io::Other,
        };
        std::io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in 1..=sys::TACHYON_ERR_OVERRUN {
            let kind = ErrorKind::from_code(code).expect("non-zero is an error");
            assert!(!matches!(kind, ErrorKind::Unknown(_)), "code {code} is not mapped");
            assert_eq!(kind.code(), Some(code));
            assert_eq!(Error::from(kind).code(), Some(code));
        }
        assert_eq!(ErrorKind::from_code(sys::TACHYON_SUCCESS), None);
        assert!(Error::from_code(sys::TACHYON_SUCCESS).is_none());
        assert_eq!(ErrorKind::from_code(999), Some(ErrorKind::Unknown(999)));
    }

    #[test]
    fn display_and_debug_say_what_went_wrong() {
        let err = Error::from(ErrorKind::PeerDead);
        let text = err.to_string();
        assert!(text.contains("peer") && text.contains("15"), "{text}");
        let debug = format!("{err:?}");
        assert!(debug.contains("PeerDead") && debug.contains("peer"), "{debug}");
        assert_eq!(Error::from(ErrorKind::Unknown(999)).to_string(), "unknown error (tachyon error 999)");
        assert!(Error::from(ErrorKind::InvalidPath).to_string().contains("NUL"));
        let own = Error::new(ErrorKind::InvalidSize, "12 bytes do not fit a slot of 8");
        assert_eq!(own.to_string(), "12 bytes do not fit a slot of 8 (tachyon error 8)");
    }

    #[test]
    fn kinds_compare_with_errors() {
        let err = Error::from(ErrorKind::Full);
        assert!(err == ErrorKind::Full);
        assert!(ErrorKind::Full == err);
        assert!(err != ErrorKind::Empty);
        assert_eq!(err.kind(), ErrorKind::Full);
    }
}
