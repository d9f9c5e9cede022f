//! `relay-load`: loads a signaling relay (Sotto, matchbox_server or the PeerJS server) as its
//! users do and prints one `key=value` line per result (bench/run.sh makes the table).
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use sotto_bench::load;
use sotto_bench::peers::Server;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "relay-load", about = "Load a signaling relay and measure it.")]
struct Args {
    /// Which protocol the server speaks.
    #[arg(long, value_enum, default_value_t = Server::Sotto)]
    server: Server,
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Another relay of the same cluster (`--redis`): ping-pong pairs are split across the two.
    #[arg(long)]
    addr2: Option<String>,
    /// The server's process id: its CPU and memory are read from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Pairs of clients bounce a message back and forth: messages/s, one-way latency.
    Pingpong {
        /// Clients (two per room).
        #[arg(long, default_value_t = 200)]
        clients: usize,
        /// Payload bytes per message (before base64url).
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// How long to bounce.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Pairs of clients send both ways at a fixed total rate, whatever the answers: one-way
    /// latency under a given load.
    Openloop {
        /// Clients (two per room).
        #[arg(long, default_value_t = 2000)]
        clients: usize,
        /// Payload bytes per message (before base64url).
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Messages per second, all senders together.
        #[arg(long)]
        rate: f64,
        /// How long to send.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Connections that join and stay silent: the server's memory per connection.
    Idle {
        /// Connections to hold.
        #[arg(long, default_value_t = 1000)]
        clients: usize,
    },
    /// Connections that join and are held (reading, so pings are answered) until standard
    /// input closes: a share of a cluster's load, with other generators.
    Hold {
        /// Connections to hold.
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// The first room's number; each connection gets the next.
        #[arg(long, default_value_t = 0)]
        first_room: usize,
        /// 0 or 1: which seat of its room each connection takes.
        #[arg(long, default_value_t = 0)]
        seat: u8,
    },
    /// One client floods a peer that never reads: the server's peak memory (run it fresh).
    Flood {
        /// Payload bytes per message.
        #[arg(long, default_value_t = 4096)]
        size: usize,
        /// How long to flood.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
}

fn share(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"))
}

/// What a ping-pong or open-loop run measured, as `key=value`s.
fn measured(r: &load::PingPong) -> String {
    format!(
        "clients={} size={} msgs_per_s={:.0} p50_ms={:.2} p99_ms={:.2} p999_ms={:.2} \
         server_cpu={} generator_cpu={} server_us_per_msg={} server_user_us_per_msg={} \
         generator_us_per_msg={} \
         generator_bound={} dist_ms={}",
        r.clients,
        r.size,
        r.messages_per_s,
        r.p50_ms,
        r.p99_ms,
        r.p999_ms,
        share(r.server_cpu),
        share(r.generator_cpu),
        share(r.server_us_per_msg()),
        share(r.server_user_us_per_msg()),
        share(r.generator_us_per_msg()),
        r.generator_bound(),
        r.dist_ms
            .iter()
            .map(|ms| format!("{ms:.2}"))
            .collect::<Vec<_>>()
            .join(",")
    )
}

// The generator runs on one thread: it is pinned to one core, and a second worker there
// would only add wake-ups between threads to what it measures.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let server = args.server;
    let line = match args.scenario {
        Scenario::Pingpong {
            clients,
            size,
            seconds,
        } => load::pingpong(
            server,
            (&args.addr, args.addr2.as_deref()),
            clients,
            size,
            seconds,
            args.server_pid,
        )
        .await
        .map(|r| {
            format!(
                "scenario=pingpong server={server} split={} {}",
                args.addr2.is_some(),
                measured(&r)
            )
        }),
        Scenario::Openloop {
            clients,
            size,
            rate,
            seconds,
        } => load::openloop(
            server,
            &args.addr,
            clients,
            size,
            rate,
            seconds,
            args.server_pid,
        )
        .await
        .map(|r| {
            format!(
                "scenario=openloop server={server} rate={rate:.0} lost={} send_lag_p50_ms={} \
                 send_lag_p99_ms={} {}",
                r.lost,
                share(r.send_lag_ms.map(|l| l.0)),
                share(r.send_lag_ms.map(|l| l.1)),
                measured(&r)
            )
        }),
        Scenario::Hold {
            clients,
            first_room,
            seat,
        } => match load::hold(server, &args.addr, clients, first_room, seat).await {
            Ok((r, readers)) => {
                println!(
                    "scenario=hold server={server} clients={} seconds={:.2} joins_per_s={:.0}",
                    r.clients,
                    r.seconds,
                    r.clients as f64 / r.seconds
                );
                // Held until whoever started this closes standard input.
                let mut sink = Vec::new();
                let _ =
                    tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
                let dropped = readers.iter().filter(|r| r.is_finished()).count();
                Ok(format!(
                    "scenario=held server={server} clients={clients} closed_by_server={dropped}"
                ))
            }
            Err(e) => Err(e),
        },
        Scenario::Idle { clients } => {
            let Some(pid) = args.server_pid else {
                eprintln!("relay-load: idle needs --server-pid");
                return ExitCode::from(2);
            };
            load::idle(server, &args.addr, clients, pid).await.map(|r| {
                format!(
                    "scenario=idle server={server} clients={} rss_before_kib={} rss_after_kib={} \
                     kib_per_conn={:.2}",
                    r.clients,
                    r.rss_before_kib,
                    r.rss_after_kib,
                    r.kib_per_connection()
                )
            })
        }
        Scenario::Flood { size, seconds } => {
            let Some(pid) = args.server_pid else {
                eprintln!("relay-load: flood needs --server-pid");
                return ExitCode::from(2);
            };
            load::flood(server, &args.addr, size, seconds, pid)
                .await
                .map(|r| {
                    format!(
                        "scenario=flood server={server} size={size} sent={} peak_rss_kib={} \
                         reader_dropped={} flooder_closed={}",
                        r.sent, r.peak_rss_kib, r.reader_dropped, r.flooder_closed
                    )
                })
        }
    };
    match line {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("relay-load: {server}: {e}");
            ExitCode::FAILURE
        }
    }
}
