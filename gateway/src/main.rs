//! `ferrymq`: the FerryMQ server and command-line client.

use std::process::ExitCode;

use clap::Parser;
use ferrymq_gateway::cli::{run_client, Cli, Command, ServeArgs};
use ferrymq_gateway::config::Config;
use ferrymq_gateway::server::{listen_addr, serve_with, ServeOptions};

// The server allocates and frees many small buffers per message on every thread (frames, JSON,
// receipts); mimalloc's per-thread free lists cost less CPU there than the system allocator's
// arenas (A/B in BENCHMARKS.md, "Against the peers").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status of a server stopped by its configuration.
const BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ferrymq: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => runtime.block_on(run_server(args)),
        command => match runtime.block_on(run_client(command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("ferrymq: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn run_server(args: ServeArgs) -> ExitCode {
    let env = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let (mut config, warnings) = match Config::load(args.config.as_deref(), env, &args.set) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("ferrymq: {err}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    config.settings.broker.store.dir = args.data_dir;
    config.listen = match listen_addr(&args.listen) {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("ferrymq: {err}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    if let Some(path) = &config.settings.server.auth_file {
        if let Err(err) = ferrymq_gateway::auth::AuthConfig::load(path) {
            eprintln!("ferrymq: {err}");
            return ExitCode::from(BAD_CONFIG);
        }
    }
    if let Err(err) = ferrymq_gateway::tls::server_config(&config.settings.server) {
        eprintln!("ferrymq: {err}");
        return ExitCode::from(BAD_CONFIG);
    }
    match serve_with(config, ServeOptions { repair: args.repair }).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ferrymq: {err:#}");
            ExitCode::FAILURE
        }
    }
}
