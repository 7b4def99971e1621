//! CLI subcommands modules bring ([`crate::Module::commands`]): `basalt
//! user create` and `basalt keys rotate` are the identity module's,
//! `basalt graphql schema` the GraphQL module's. The platform's own commands
//! (`serve`, `migrate`, `config`, `jobs`) are the binary's.

use std::future::Future;

use futures_util::future::LocalBoxFuture;

use crate::config::Config;
use crate::db::Db;
use crate::{App, Module};

/// Commands run on the CLI's own runtime, never moved across threads: their
/// futures need not be `Send`.
type Runner = Box<dyn FnOnce(CommandContext) -> LocalBoxFuture<'static, anyhow::Result<()>>>;

/// A subcommand: its clap definition (name, arguments, help) and what it does.
pub struct ModuleCommand {
    command: clap::Command,
    run: Runner,
}

impl std::fmt::Debug for ModuleCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleCommand")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

impl ModuleCommand {
    /// The subcommand `command` (its own subcommands included), run by `run`
    /// with the parsed arguments and the configuration.
    pub fn new<F, Fut>(command: clap::Command, run: F) -> Self
    where
        F: FnOnce(CommandContext) -> Fut + 'static,
        Fut: Future<Output = anyhow::Result<()>> + 'static,
    {
        Self {
            command,
            run: Box::new(move |ctx| Box::pin(run(ctx))),
        }
    }

    /// Its name on the command line.
    pub fn name(&self) -> &str {
        self.command.get_name()
    }

    /// Its clap definition.
    pub fn command(&self) -> &clap::Command {
        &self.command
    }

    /// Runs it.
    pub fn run(self, ctx: CommandContext) -> LocalBoxFuture<'static, anyhow::Result<()>> {
        (self.run)(ctx)
    }
}

/// What a module's command gets: its arguments, the validated
/// configuration, and the build's modules, to build the app when it needs
/// services.
pub struct CommandContext {
    /// The command's own arguments (below its name).
    pub matches: clap::ArgMatches,
    /// The configuration, loaded and checked as for `serve`.
    pub config: Config,
    /// Every module of the build.
    pub modules: Vec<Box<dyn Module>>,
}

impl std::fmt::Debug for CommandContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandContext")
            .field("matches", &self.matches)
            .finish_non_exhaustive()
    }
}

impl CommandContext {
    /// The whole app, as `serve` builds it (without serving): for commands
    /// that call a module's services.
    pub async fn app(self) -> anyhow::Result<App> {
        App::build(self.config, self.modules).await
    }

    /// The database with every module's migrations applied (an admin command
    /// may be the first thing run against a new database).
    pub async fn migrated_db(&self) -> anyhow::Result<Db> {
        crate::app::migrate(&self.config, &self.modules).await?;
        Ok(Db::connect(&self.config.database_url, &self.config.database).await?)
    }
}
