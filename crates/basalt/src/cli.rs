//! Command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;

use basalt_platform::config::{ConfigError, ConfigSources};
use basalt_platform::{App, Config, server, telemetry};
use clap::{Parser, Subcommand};

/// Exit code for a configuration problem (like a usage error).
pub const EXIT_CONFIG: u8 = 2;

/// Basalt: one Rust binary for identity, content, real time and commerce backends.
#[derive(Debug, Parser)]
#[command(name = "basalt", version, about, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (environment variables override it).
    #[arg(long, global = true, env = "BASALT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
}

/// `basalt config` sub-commands.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration as TOML, secrets redacted.
    Print,
}

/// Runs the parsed command line; the binary's `main` is a thin wrapper.
pub fn run(cli: Cli) -> ExitCode {
    let config = match Config::load(&ConfigSources::from_process(cli.config.clone())) {
        Ok(config) => config,
        Err(error) => return config_failure(&error),
    };
    match cli.command {
        Command::Config {
            action: ConfigAction::Print,
        } => {
            print!("{}", config.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Command::Serve => block_on(serve(config)),
        Command::Migrate => block_on(migrate(config)),
    }
}

fn config_failure(error: &ConfigError) -> ExitCode {
    eprintln!("basalt: {error}");
    ExitCode::from(EXIT_CONFIG)
}

fn block_on(task: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("basalt: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "fatal");
            eprintln!("basalt: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init(config.log_format, &config.log_level);
    let listener = server::bind(config.listen)?;
    let app = App::build(config, crate::modules()).await?;
    server::serve(app, listener, server::shutdown_signal()).await
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    telemetry::init(config.log_format, &config.log_level);
    let report = basalt_platform::app::migrate(&config, &crate::modules()).await?;
    println!(
        "{} migration(s) applied; {} known; database: {}",
        report.applied.len(),
        report.known,
        config.database_url.redacted()
    );
    Ok(())
}
