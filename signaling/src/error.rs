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
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system refused the listening socket.
    Listen(std::io::Error),
    /// The operating system refused the threads the relay runs on.
    Runtime(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadConfig(why) => write!(f, "configuration: {why}"),
            Self::BadTlsFile { path, reason } => write!(f, "TLS file {}: {reason}", path.display()),
            Self::Listen(e) => write!(f, "cannot listen: {e}"),
            Self::Runtime(e) => write!(f, "cannot start worker threads: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Listen(e) | Self::Runtime(e) => Some(e),
            _ => None,
        }
    }
}
