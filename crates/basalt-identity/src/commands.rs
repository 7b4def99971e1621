//! The identity module's CLI subcommands: `basalt user create` and
//! `basalt keys rotate`.

use basalt_platform::commands::{CommandContext, ModuleCommand};
use basalt_platform::http::context::RequestContext;
use clap::{FromArgMatches as _, Subcommand};

use crate::error::IdentityError;
use crate::model::Role;
use crate::service::{IdentityService, Registration};
use crate::tokens::keys::SigningKeys;

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

/// The module's commands.
pub fn commands() -> Vec<ModuleCommand> {
    // `about` after the derive's, which would otherwise take the enum's doc.
    let user = UserAction::augment_subcommands(clap::Command::new("user"))
        .about("Manage accounts")
        .subcommand_required(true);
    let keys = KeysAction::augment_subcommands(clap::Command::new("keys"))
        .about("Manage the keys that sign access tokens")
        .subcommand_required(true);
    vec![
        ModuleCommand::new(user, |ctx| async move {
            let UserAction::Create {
                email,
                username,
                admin,
            } = UserAction::from_arg_matches(&ctx.matches)?;
            create_user(ctx, email, username, admin).await
        }),
        ModuleCommand::new(keys, |ctx| async move {
            let KeysAction::Rotate = KeysAction::from_arg_matches(&ctx.matches)?;
            rotate_keys(ctx).await
        }),
    ]
}

async fn create_user(
    ctx: CommandContext,
    email: String,
    username: String,
    admin: bool,
) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    let app = ctx.app().await?;
    let identity = app
        .platform
        .services
        .get::<IdentityService>()
        .ok_or_else(|| anyhow::anyhow!("the identity module is not installed"))?;
    let registration = Registration {
        email,
        username,
        password,
        role: if admin { Role::Admin } else { Role::User },
    };
    let request = RequestContext {
        ip: None,
        user_agent: Some("basalt-cli".into()),
    };
    let result = identity.create_account(registration, &request).await;
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
        Err(IdentityError::Invalid(errors)) => {
            let list: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            anyhow::bail!("{}", list.join("; "))
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

async fn rotate_keys(ctx: CommandContext) -> anyhow::Result<()> {
    let db = ctx.migrated_db().await?;
    let result = SigningKeys::rotate(&db).await;
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
