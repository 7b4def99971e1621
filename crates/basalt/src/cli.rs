//! Command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;

use basalt_platform::Module;
use basalt_platform::commands::{CommandContext, ModuleCommand};
use basalt_platform::config::{ConfigError, ConfigSources};
use basalt_platform::jobs::{JobFilter, JobQueue, JobState};
use basalt_platform::telemetry::LogTarget;
use basalt_platform::{App, Config, Db, server, telemetry};
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

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
    Serve {
        /// What this node does: `all` (API and background workers), `api`
        /// (HTTP API only) or `worker` (job workers, plus /healthz, /readyz
        /// and /metrics). Overrides `BASALT_ROLE`; default `all`.
        #[arg(long, value_name = "all|api|worker")]
        role: Option<basalt_platform::Role>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Probe this node's own `/healthz` (the address, and TLS, from the
    /// configuration) and exit 0 when it answers 200, 1 otherwise: the
    /// container image's HEALTHCHECK.
    Healthcheck,
    /// Inspect the configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Inspect background jobs.
    Jobs {
        /// What to do.
        #[command(subcommand)]
        action: JobsAction,
    },
}

/// `basalt jobs` sub-commands.
#[derive(Debug, Subcommand)]
pub enum JobsAction {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state (queued, running, succeeded, dead).
        #[arg(long)]
        state: Option<String>,
        /// Only jobs of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// `basalt config` sub-commands.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration as TOML, secrets redacted.
    Print,
}

/// Runs the binary's command line with its modules: `basalt::cli::main()`.
pub fn main() -> ExitCode {
    run_with(crate::modules(), std::env::args_os())
}

/// Parses `args` into one of the platform's commands (the [`Command`]s) or
/// one a module brings (`Module::commands`), and runs it with `modules`.
pub fn run_with<I, T>(modules: Vec<Box<dyn Module>>, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut module_commands = match module_commands(&modules) {
        Ok(commands) => commands,
        Err(clash) => {
            eprintln!("basalt: {clash}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let cli = module_commands.iter().fold(Cli::command(), |cli, command| {
        cli.subcommand(command.command().clone())
    });
    let matches = match cli.try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(error) => {
            // Help and version are "errors" too; clap prints each where it belongs.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(EXIT_CONFIG));
        }
    };
    let config_file = matches.get_one::<PathBuf>("config").cloned();
    if let Some((name, sub)) = matches.subcommand()
        && let Some(at) = module_commands.iter().position(|c| c.name() == name)
    {
        let command = module_commands.swap_remove(at);
        let sub = sub.clone();
        let (config, _) = match load_config(config_file, None, &modules) {
            Ok(loaded) => loaded,
            Err(code) => return code,
        };
        telemetry::init(config.log_format, &config.log_level, LogTarget::Stderr);
        config.warn_ignored_env();
        let ctx = CommandContext {
            matches: sub,
            config,
            modules,
        };
        return block_on(command.run(ctx));
    }
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => run(cli, modules),
        Err(error) => {
            let _ = error.print();
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Every command `modules` bring ([`Module::commands`]), or the first name
/// claimed twice: by a module and the platform (its [`Command`]s and clap's
/// `help`), or by two modules.
pub fn module_commands(modules: &[Box<dyn Module>]) -> Result<Vec<ModuleCommand>, CommandClash> {
    let platform = Cli::command();
    let mut claimed: Vec<(&'static str, ModuleCommand)> = Vec::new();
    for module in modules {
        for command in module.commands() {
            let name = command.name();
            let first = if name == "help" || platform.find_subcommand(name).is_some() {
                Some(None)
            } else {
                claimed
                    .iter()
                    .find(|(_, earlier)| earlier.name() == name)
                    .map(|(owner, _)| Some(*owner))
            };
            if let Some(first) = first {
                return Err(CommandClash {
                    name: name.to_owned(),
                    first,
                    second: module.name(),
                });
            }
            claimed.push((module.name(), command));
        }
    }
    Ok(claimed.into_iter().map(|(_, command)| command).collect())
}

/// A command name claimed twice, which stops every command (exit 2).
#[derive(Debug)]
pub struct CommandClash {
    name: String,
    /// The module that claimed it first; `None`: the platform.
    first: Option<&'static str>,
    second: &'static str,
}

impl std::fmt::Display for CommandClash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the command `{}` is claimed twice: by ", self.name)?;
        match self.first {
            None => write!(f, "the platform")?,
            Some(module) => write!(f, "the module `{module}`")?,
        }
        write!(f, " and by the module `{}`", self.second)
    }
}

impl std::error::Error for CommandClash {}

/// The configuration from `file` and the process's environment, with every
/// module's section checked (so that a bad value is a configuration error,
/// exit 2, for every command, not a failure later); the resolved sections
/// for `config print`.
fn load_config(
    file: Option<PathBuf>,
    role: Option<basalt_platform::Role>,
    modules: &[Box<dyn Module>],
) -> Result<(Config, toml::Table), ExitCode> {
    let mut sources = ConfigSources::from_process(file);
    sources.sections = modules.iter().map(|m| m.name().to_owned()).collect();
    // `serve --role` is the `role` setting, above every other layer.
    if let Some(role) = role {
        sources
            .env
            .push(("BASALT_ROLE".to_owned(), role.to_string()));
    }
    let config = Config::load(&sources).map_err(|error| config_failure(&error))?;
    let mut sections = toml::Table::new();
    for module in modules {
        match module.config(&config) {
            Ok(Some(section)) => {
                sections.insert(module.name().to_owned(), section);
            }
            Ok(None) => {}
            Err(error) => return Err(config_failure(&error)),
        }
    }
    Ok((config, sections))
}

/// Runs one of the platform's commands.
pub fn run(cli: Cli, modules: Vec<Box<dyn Module>>) -> ExitCode {
    let role = match &cli.command {
        Command::Serve { role } => *role,
        _ => None,
    };
    let (config, sections) = match load_config(cli.config.clone(), role, &modules) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    match cli.command {
        Command::Config {
            action: ConfigAction::Print,
        } => {
            for name in &config.ignored_env {
                eprintln!("basalt: ignored {name}: not a configuration key");
            }
            print!("{}", config.to_redacted_toml());
            if !sections.is_empty() {
                print!(
                    "\n{}",
                    toml::to_string_pretty(&sections).unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Command::Serve { .. } => block_on(serve(config, modules)),
        Command::Migrate => block_on(migrate(config, modules)),
        Command::Healthcheck => block_on(basalt_platform::server::probe_health(&config)),
        Command::Jobs {
            action: JobsAction::List { state, kind, limit },
        } => block_on(list_jobs(config, state, kind, limit)),
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

async fn serve(config: Config, modules: Vec<Box<dyn Module>>) -> anyhow::Result<()> {
    // Traces too, when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    let telemetry = telemetry::init_server(config.log_format, &config.log_level)?;
    config.warn_ignored_env();
    let served = async {
        let listener = server::bind(config.listen)?;
        let app = App::build(config, modules).await?;
        server::serve(app, listener, server::shutdown_signal()).await
    }
    .await;
    // After the graceful shutdown: the spans of its last requests and jobs
    // are sent before the process exits.
    telemetry.shutdown().await;
    served
}

async fn list_jobs(
    config: Config,
    state: Option<String>,
    kind: Option<String>,
    limit: u32,
) -> anyhow::Result<()> {
    telemetry::init(config.log_format, &config.log_level, LogTarget::Stderr);
    config.warn_ignored_env();
    let state = state
        .map(|s| serde_json::from_value::<JobState>(serde_json::Value::String(s.clone())))
        .transpose()
        .map_err(|_| anyhow::anyhow!("--state must be one of queued, running, succeeded, dead"))?;
    let db = Db::connect(&config.database_url, &config.database).await?;
    let jobs = JobQueue::new(db.clone(), config.jobs.clone());
    let filter = JobFilter {
        state,
        kind,
        limit: Some(limit),
        offset: None,
    };
    let listed = jobs.list(&filter).await;
    db.close().await;
    println!(
        "{:<36}  {:<24}  {:<9}  {:>8}  {:<20}  LAST ERROR",
        "ID", "KIND", "STATE", "ATTEMPTS", "RUN AT"
    );
    for job in listed? {
        println!(
            "{:<36}  {:<24}  {:<9}  {:>3}/{:<4}  {:<20}  {}",
            job.id,
            job.kind,
            serde_json::to_value(job.state)?
                .as_str()
                .unwrap_or_default(),
            job.attempts,
            job.max_attempts,
            job.run_at.format("%Y-%m-%d %H:%M:%S"),
            job.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

async fn migrate(config: Config, modules: Vec<Box<dyn Module>>) -> anyhow::Result<()> {
    telemetry::init(config.log_format, &config.log_level, LogTarget::Stderr);
    config.warn_ignored_env();
    let report = basalt_platform::app::migrate(&config, &modules).await?;
    println!(
        "{} migration(s) applied; {} known; database: {}",
        report.applied.len(),
        report.known,
        config.database_url.redacted()
    );
    Ok(())
}
