use std::fmt;
use std::path::PathBuf;

/// Why the relay could not start or keep serving. Runtime trouble caused by clients is never an
/// `Error`: it is answered on the wire with an error code and counted in the metrics.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The operator's flags or environment do not make a working relay.
    BadConfig(String),
    /// The operator's TLS certificate or key file cannot be used.
    BadTlsFile {
        /// The flag that named it: `--tls-cert` or `--tls-key`.
        flag: &'static str,
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system refused the listening socket on `--listen`'s address.
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// What the system said.
        error: std::io::Error,
    },
    /// The operating system refused the SFU's UDP socket (`--sfu-udp`, or --listen's address
    /// over UDP).
    SfuBind {
        /// The address.
        addr: std::net::SocketAddr,
        /// What the system said.
        error: std::io::Error,
    },
    /// The operating system refused the threads the relay runs on.
    Runtime(std::io::Error),
    /// `--redis` does not answer at start (a relay of a cluster does not start alone: it would
    /// split the world); or its URL cannot be used.
    Redis(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadConfig(why) => write!(f, "configuration: {why}"),
            Self::SfuBind { addr, error } => write!(
                f,
                "cannot bind the SFU to udp://{addr} ({error}); choose another with --sfu-udp, or --no-sfu"
            ),
            Self::Redis(why) => write!(f, "{why}"),
            Self::BadTlsFile { flag, path, reason } => {
                write!(f, "{flag} {}: {reason}", path.display())
            }
            Self::Listen { addr, error } => {
                let hint = match error.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        " (another program, or another relay, listens there)"
                    }
                    std::io::ErrorKind::PermissionDenied => {
                        " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                    }
                    std::io::ErrorKind::AddrNotAvailable => " (no interface has this address)",
                    _ => "",
                };
                write!(f, "--listen {addr}: cannot listen: {error}{hint}")
            }
            Self::Runtime(e) => write!(f, "cannot start worker threads: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Listen { error: e, .. } | Self::SfuBind { error: e, .. } | Self::Runtime(e) => {
                Some(e)
            }
            _ => None,
        }
    }
}
