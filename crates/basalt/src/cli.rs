//! Command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;

use basalt_platform::config::{ConfigError, ConfigSources};
use basalt_platform::jobs::{JobFilter, JobQueue, JobState};
use basalt_platform::telemetry::LogTarget;
use basalt_platform::{App, Config, Db, server, telemetry};
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
    Serve {
        /// What this node does: `all` (API and background workers), `api`
        /// (HTTP API only) or `worker` (job workers, plus /healthz, /readyz
        /// and /metrics). Overrides `BASALT_ROLE`; default `all`.
        #[arg(long, value_name = "all|api|worker")]
        role: Option<basalt_platform::Role>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Manage accounts.
    User {
        /// What to do.
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage the keys that sign access tokens.
    Keys {
        /// What to do.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Inspect background jobs.
    Jobs {
        /// What to do.
        #[command(subcommand)]
        action: JobsAction,
    },
    /// The GraphQL API.
    Graphql {
        /// What to do.
        #[command(subcommand)]
        action: GraphqlAction,
    },
}

/// `basalt graphql` sub-commands.
#[derive(Debug, Subcommand)]
pub enum GraphqlAction {
    /// Print the schema served at /graphql, in GraphQL SDL.
    Schema,
}

/// `basalt user` sub-commands.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account; the password is read from standard input (one
    /// line), so it never appears in the process list or shell history.
    Create {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Username.
        #[arg(long)]
        username: String,
        /// Make the account an admin (how the first admin is bootstrapped).
        #[arg(long)]
        admin: bool,
    },
}

/// `basalt keys` sub-commands.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Retire the signing key, promote the already-published next key, and
    /// publish a new next key. Running servers pick the change up by themselves.
    Rotate,
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

/// Runs the parsed command line; the binary's `main` is a thin wrapper.
pub fn run(cli: Cli) -> ExitCode {
    let modules = crate::modules();
    let mut sources = ConfigSources::from_process(cli.config.clone());
    sources.sections = modules.iter().map(|m| m.name().to_owned()).collect();
    // `serve --role` is the `role` setting, above every other layer.
    if let Command::Serve { role: Some(role) } = &cli.command {
        sources
            .env
            .push(("BASALT_ROLE".to_owned(), role.to_string()));
    }
    let config = match Config::load(&sources) {
        Ok(config) => config,
        Err(error) => return config_failure(&error),
    };
    // Modules check their own sections now, so that a bad value is a
    // configuration error (exit 2) for every command, not a failure later.
    let mut sections = toml::Table::new();
    for module in &modules {
        match module.config(&config) {
            Ok(Some(section)) => {
                sections.insert(module.name().to_owned(), section);
            }
            Ok(None) => {}
            Err(error) => return config_failure(&error),
        }
    }
    match cli.command {
        Command::Config {
            action: ConfigAction::Print,
        } => {
            print!("{}", config.to_redacted_toml());
            if !sections.is_empty() {
                print!(
                    "\n{}",
                    toml::to_string_pretty(&sections).unwrap_or_default()
                );
            }
            ExitCode::SUCCESS
        }
        Command::Serve { .. } => block_on(serve(config)),
        Command::Migrate => block_on(migrate(config)),
        Command::Jobs {
            action: JobsAction::List { state, kind, limit },
        } => block_on(list_jobs(config, state, kind, limit)),
        Command::User {
            action:
                UserAction::Create {
                    email,
                    username,
                    admin,
                },
        } => block_on(create_user(config, email, username, admin)),
        Command::Keys {
            action: KeysAction::Rotate,
        } => block_on(rotate_keys(config)),
        Command::Graphql {
            action: GraphqlAction::Schema,
        } => {
            print!("{}", crate::graphql::sdl());
            ExitCode::SUCCESS
        }
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
    telemetry::init(config.log_format, &config.log_level, LogTarget::Stdout);
    let listener = server::bind(config.listen)?;
    let app = App::build(config, crate::modules()).await?;
    server::serve(app, listener, server::shutdown_signal()).await
}

async fn list_jobs(
    config: Config,
    state: Option<String>,
    kind: Option<String>,
    limit: u32,
) -> anyhow::Result<()> {
    telemetry::init(config.log_format, &config.log_level, LogTarget::Stderr);
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

/// Opens the database with all migrations applied (admin commands may be
/// the first thing run against a new database).
async fn open_db(config: &Config) -> anyhow::Result<Db> {
    basalt_platform::app::migrate(config, &crate::modules()).await?;
    Ok(Db::connect(&config.database_url, &config.database).await?)
}

async fn create_user(
    config: Config,
    email: String,
    username: String,
    admin: bool,
) -> anyhow::Result<()> {
    telemetry::init(config.log_format, &config.log_level, LogTarget::Stderr);
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    let app = App::build(config, crate::modules()).await?;
    let identity = app
        .platform
        .services
        .get::<basalt_identity::service::IdentityService>()
        .ok_or_else(|| anyhow::anyhow!("the identity module is not installed"))?;
    let role = if admin {
        basalt_identity::model::Role::Admin
    } else {
        basalt_identity::model::Role::User
    };
    let registration = basalt_identity::service::Registration {
        email,
        username,
        password,
        role,
    };
    let ctx = basalt_platform::http::context::RequestContext {
        ip: None,
        user_agent: Some("basalt-cli".into()),
    };
    let result = identity.create_account(registration, &ctx).await;
    app.platform.db.close().await;
    match result {
        Ok(user) => {
            println!(
                "created {} {} ({})",
                user.role.as_str(),
                user.username,
                user.id
            );
            Ok(())
        }
        Err(basalt_identity::error::IdentityError::Invalid(errors)) => {
            let list: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            anyhow::bail!("{}", list.join("; "))
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

async fn rotate_keys(config: Config) -> anyhow::Result<()> {
    telemetry::init(config.log_format, &config.log_level, LogTarget::Stderr);
    let db = open_db(&config).await?;
    let result = basalt_identity::tokens::keys::SigningKeys::rotate(&db).await;
    db.close().await;
    let rotation = result?;
    println!(
        "retired {}; signing with {}; published next {}",
        rotation.retired.as_deref().unwrap_or("(none)"),
        rotation.active,
        rotation.next
    );
    Ok(())
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    telemetry::init(config.log_format, &config.log_level, LogTarget::Stderr);
    let report = basalt_platform::app::migrate(&config, &crate::modules()).await?;
    println!(
        "{} migration(s) applied; {} known; database: {}",
        report.applied.len(),
        report.known,
        config.database_url.redacted()
    );
    Ok(())
}
