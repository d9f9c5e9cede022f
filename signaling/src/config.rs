//! The relay's settings: each a flag with an environment variable and a default that needs no
//! configuration. `sotto-relay --help` prints the texts below.

use crate::Error;
use clap::{Args, Parser, ValueEnum};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

fn duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

/// The shared secret of a coturn server configured with `use-auth-secret`.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnSecret(String);

impl TurnSecret {
    /// The secret's bytes, the HMAC key of the credentials.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<String> for TurnSecret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// Never shows the secret.
impl fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TurnSecret(<redacted>)")
    }
}

/// Everything `run` needs. `Config::default()` is the relay with no flags.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// The largest group call a link may ask for, in people (a group link says its size:
    /// `#S.N`). Rooms from one-to-one links hold 2 whatever this is; 2 allows no groups. Groups
    /// of 7 and more are conferences: their media goes through the relay's SFU (with --no-sfu
    /// or --redis: at most 6).
    #[arg(long, env = "SOTTO_MAX_PEERS", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(2..=50))]
    pub max_peers: u8,

    /// Most WebSocket connections at once; past it a client gets `server-full` and is closed.
    #[arg(long, env = "SOTTO_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Largest WebSocket message in bytes; a larger one gets `too-large` and the connection is
    /// closed without the relay reading or buffering it.
    #[arg(long, env = "SOTTO_MAX_MESSAGE_BYTES", default_value_t = sotto_proto::DEFAULT_MAX_MESSAGE_BYTES,
          value_parser = clap::value_parser!(usize))]
    pub max_message_bytes: usize,

    /// Sustained messages per second per connection (token bucket). Excess messages get
    /// `rate-limited` and are dropped.
    #[arg(long, env = "SOTTO_RATE", default_value_t = 20.0)]
    pub rate: f64,

    /// Messages a connection may send in a burst. Refused messages add to an abuse score that
    /// decays at --rate per second; when it reaches --burst the connection is closed.
    #[arg(long, env = "SOTTO_BURST", default_value_t = 60)]
    pub burst: u32,

    /// Close a connection that has not joined a room within this time (`join-timeout`).
    #[arg(long, env = "SOTTO_JOIN_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub join_timeout: Duration,

    /// Ping a connection after this much silence.
    #[arg(long, env = "SOTTO_PING_INTERVAL", default_value = "20s", value_parser = duration)]
    pub ping_interval: Duration,

    /// Drop a connection that has not answered a ping within this time; its room is told.
    #[arg(long, env = "SOTTO_PONG_TIMEOUT", default_value = "20s", value_parser = duration)]
    pub pong_timeout: Duration,

    /// Messages queued for one connection before it counts as a slow consumer and is dropped.
    #[arg(long, env = "SOTTO_SEND_QUEUE", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub send_queue: u32,

    /// On SIGINT/SIGTERM, how long to wait for connections to close before exiting.
    #[arg(long, env = "SOTTO_SHUTDOWN_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub shutdown_timeout: Duration,

    /// A STUN server to hand to clients, e.g. `stun:stun.example.org:3478` (repeatable).
    #[arg(long = "stun", env = "SOTTO_STUN", value_delimiter = ',')]
    pub stun: Vec<String>,

    /// A TURN server URL to hand to clients, e.g. `turn:turn.example.org:3478?transport=udp`
    /// (repeatable). Needs --turn-secret.
    #[arg(long = "turn-url", env = "SOTTO_TURN_URL", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// coturn's `static-auth-secret` (`use-auth-secret` mode). Prefer the environment
    /// variable: flags are visible in the process list.
    #[arg(long, env = "SOTTO_TURN_SECRET", hide_env_values = true, value_parser = |s: &str| Ok::<_, String>(TurnSecret(s.to_owned())))]
    pub turn_secret: Option<TurnSecret>,

    /// How long the TURN credentials handed to a connection stay valid.
    #[arg(long, env = "SOTTO_TURN_TTL", default_value = "12h", value_parser = duration)]
    pub turn_ttl: Duration,

    /// PEM certificate chain: serve HTTPS and WSS directly (needs --tls-key).
    #[arg(long, env = "SOTTO_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "SOTTO_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Share rooms with other relays through this Redis (`redis://HOST:PORT`, or
    /// `rediss://HOST:PORT` for TLS; a password may be in the URL): any relay then serves any
    /// peer of any room. Without it the relay runs alone.
    #[arg(long, env = "SOTTO_REDIS", value_parser = redis_url)]
    pub redis: Option<String>,

    /// The Redis password, if it is not in --redis's URL. Prefer the environment variable:
    /// flags are visible in the process list.
    #[arg(
        long,
        env = "SOTTO_REDIS_PASSWORD",
        hide_env_values = true,
        requires = "redis"
    )]
    pub redis_password: Option<RedisPassword>,

    /// The UDP address of the SFU that carries conferences' media (links for 7 or more). By
    /// default the same address and port as --listen, over UDP.
    #[arg(long, env = "SOTTO_SFU_UDP")]
    pub sfu_udp: Option<SocketAddr>,

    /// The IP address the SFU tells clients to send to, when it differs from the one it is
    /// bound to (behind NAT, or bound to 0.0.0.0). Its port is the SFU's.
    #[arg(long, env = "SOTTO_SFU_ANNOUNCE")]
    pub sfu_announce: Option<IpAddr>,

    /// Run no SFU: links for more than 6 people are refused (`group-too-large`).
    #[arg(long, env = "SOTTO_NO_SFU", conflicts_with_all = ["sfu_udp", "sfu_announce"])]
    pub no_sfu: bool,
}

/// The Redis password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisPassword(String);

impl RedisPassword {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for RedisPassword {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::str::FromStr for RedisPassword {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(Self(s.to_owned()))
    }
}

/// Never shows the password.
impl fmt::Debug for RedisPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedisPassword(<redacted>)")
    }
}

/// `redis://` or `rediss://` and something after it.
fn redis_url(s: &str) -> Result<String, String> {
    if (s.starts_with("redis://") || s.starts_with("rediss://")) && !s.ends_with("//") {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a Redis URL: redis://HOST:PORT, or rediss://HOST:PORT for TLS"
        ))
    }
}

impl Default for Config {
    /// The defaults of the flags, without reading the environment.
    fn default() -> Self {
        Self {
            max_peers: 50,
            sfu_udp: None,
            sfu_announce: None,
            no_sfu: false,
            max_connections: 10_000,
            max_message_bytes: sotto_proto::DEFAULT_MAX_MESSAGE_BYTES,
            rate: 20.0,
            burst: 60,
            join_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(20),
            send_queue: 64,
            shutdown_timeout: Duration::from_secs(5),
            stun: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: None,
            turn_ttl: Duration::from_secs(12 * 3600),
            tls_cert: None,
            tls_key: None,
            redis: None,
            redis_password: None,
        }
    }
}

impl Config {
    /// The largest room a link may ask for: `--max-peers`, and no conference without the SFU,
    /// nor (yet) on relays that share their rooms through Redis.
    pub fn max_group(&self) -> u8 {
        if self.no_sfu || self.redis.is_some() {
            self.max_peers.min(sotto_proto::GroupSize::MESH_MAX)
        } else {
            self.max_peers
        }
    }

    /// Rejects combinations that cannot work, naming the flag to fix.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::BadConfig(m.to_owned()));
        if !self.turn_urls.is_empty() && self.turn_secret.is_none() {
            return bad("--turn-url needs --turn-secret (or SOTTO_TURN_SECRET)");
        }
        if self.turn_secret.is_some() && self.turn_urls.is_empty() {
            return bad("--turn-secret needs at least one --turn-url");
        }
        for url in &self.stun {
            if !url.starts_with("stun:") && !url.starts_with("stuns:") {
                return bad("--stun takes stun: or stuns: URLs");
            }
        }
        for url in &self.turn_urls {
            if !url.starts_with("turn:") && !url.starts_with("turns:") {
                return bad("--turn-url takes turn: or turns: URLs");
            }
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return bad("--rate must be a positive number of messages per second");
        }
        if self.burst == 0 {
            return bad("--burst must be at least 1");
        }
        if self.max_connections == 0 {
            return bad("--max-connections must be at least 1");
        }
        if self.max_message_bytes < 1024 {
            return bad("--max-message-bytes must be at least 1024");
        }
        if self.turn_ttl.is_zero() || self.join_timeout.is_zero() {
            return bad("--turn-ttl and --join-timeout must be positive");
        }
        if self.ping_interval.is_zero() || self.pong_timeout.is_zero() {
            return bad("--ping-interval and --pong-timeout must be positive");
        }
        if let Some(ip) = self.sfu_announce
            && (ip.is_unspecified() || ip.is_multicast())
        {
            return bad("--sfu-announce must be an address clients can send to");
        }
        Ok(())
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The command line of `sotto-relay`.
#[derive(Debug, Parser)]
#[command(
    name = "sotto-relay",
    version,
    about = "Sotto's signaling relay: serves the web client and relays sealed call set-up \
             messages it cannot read.",
    long_about = "Sotto's signaling relay: serves the web client and relays sealed call set-up \
                  messages it cannot read.\n\nEvery flag also reads the environment variable \
                  shown. With no flags it serves http://127.0.0.1:8080."
)]
pub struct Cli {
    /// Address to listen on (HTTP and WebSocket on one port).
    #[arg(long, env = "SOTTO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Log filter in tracing's syntax, e.g. `info` or `sotto_signaling=debug`.
    #[arg(long, env = "SOTTO_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "SOTTO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Worker threads; 0 means one per CPU core the process may run on. With one, the relay
    /// runs a single-threaded scheduler, which keeps latency fair under overload.
    #[arg(long, env = "SOTTO_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// The relay's settings.
    #[command(flatten)]
    pub config: Config,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_defaults_match_config_default() {
        // Parse with no flags and no environment: clap's defaults must equal Default.
        let cli = Cli::command_for_test(&["sotto-relay"]);
        assert_eq!(
            format!("{:?}", cli.config),
            format!("{:?}", Config::default())
        );
        assert_eq!(cli.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(cli.threads, 0);
    }

    #[test]
    fn check_names_the_flag_to_fix() {
        let mut c = Config {
            turn_urls: vec!["turn:t:3478".into()],
            ..Config::default()
        };
        assert!(matches!(c.check(), Err(Error::BadConfig(m)) if m.contains("--turn-secret")));
        c.turn_secret = Some(TurnSecret("s".into()));
        assert!(c.check().is_ok());
        c.stun = vec!["http://x".into()];
        assert!(matches!(c.check(), Err(Error::BadConfig(m)) if m.contains("--stun")));
    }

    #[test]
    fn debug_never_shows_the_turn_secret() {
        let c = Config {
            turn_secret: Some(TurnSecret("hunter2".into())),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    impl Cli {
        /// Parses `args` ignoring any SOTTO_* variables of the test's environment.
        fn command_for_test(args: &[&str]) -> Cli {
            use clap::{CommandFactory, FromArgMatches};
            let mut cmd = Cli::command();
            cmd = cmd.mut_args(|a| a.env(None::<&str>));
            let matches = cmd.try_get_matches_from(args).unwrap();
            Cli::from_arg_matches(&matches).unwrap()
        }
    }
}
