//! `sotto-relay`: parses flags and runs the relay library.
#![forbid(unsafe_code)]

use clap::Parser;
use sotto_signaling::{Cli, Error};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = sotto_signaling::init_logging(&cli.log, cli.log_format).and_then(|()| {
        let runtime = sotto_signaling::runtime(cli.threads).map_err(Error::Runtime)?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(cli.listen)
                .await
                .map_err(|error| Error::Listen {
                    addr: cli.listen,
                    error,
                })?;
            sotto_signaling::run(listener, cli.config, sotto_signaling::terminate_signal()).await
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sotto-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
