//! `nambari-admin`: what operators do by hand, against the stage's table
//! (or moto, or a local mode started with `--dynamodb-endpoint`).
//!
//! - `keys create --name N [--scopes otp,users:read] [--test]`: prints the
//!   new API key once (only its keyed hash is stored);
//! - `keys list`, `keys revoke <key_id>`;
//! - `users get <usr_…|+E164>`, `users block`, `users unblock`,
//!   `users revoke-sessions`.
//!
//! The API-key pepper (needed to create keys) comes from
//! `--api-key-pepper-secret` / `API_KEY_PEPPER_SECRET_ARN` (Secrets
//! Manager) or `API_KEY_PEPPER` (hex, local runs).

use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use nambari_core::App;
use nambari_core::base::otp::Pepper;
use nambari_core::model::records::ApiKeyRecord;
use nambari_core::model::records::User;
use nambari_core::ports::clock::SystemClock;
use nambari_core::ports::secrets::{self, Live, SecretSource};
use nambari_core::services::apikeys;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(name = "nambari-admin", version, about = "Manage Nambari API keys and users.")]
pub struct Cli {
    /// The DynamoDB table; local mode uses nambari-local.
    #[arg(long, global = true, env = "TABLE_NAME", default_value = "nambari-dev")]
    pub table: String,
    /// Another DynamoDB endpoint, e.g. moto or DynamoDB Local.
    #[arg(long, global = true, env = "DYNAMODB_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Secrets Manager secret (ARN or name) of the API-key pepper.
    #[arg(long, global = true, env = "API_KEY_PEPPER_SECRET_ARN")]
    pub api_key_pepper_secret: Option<String>,
    /// Another Secrets Manager endpoint.
    #[arg(long, global = true, env = "SECRETS_ENDPOINT")]
    pub secrets_endpoint: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Integrator API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Users.
    #[command(subcommand)]
    Users(UsersCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once and never again.
    Create(CreateKey),
    /// List every key (never the key itself).
    List,
    /// Revoke a key by its id (key_…): it stops working at once.
    Revoke {
        /// The key's id, as `keys list` shows it.
        key_id: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateKey {
    /// Who the key is for.
    #[arg(long)]
    pub name: String,
    /// Comma-separated scopes (otp, users:read, invites, step_up); default all.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// A test key (nmb_test_…): every OTP session it opens is sandboxed.
    #[arg(long)]
    pub test: bool,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Show a user (by id usr_… or E.164 phone number).
    Get { user: String },
    /// Block a user: no sign-in, every session ends.
    Block { user: String },
    /// Unblock a user.
    Unblock { user: String },
    /// End every session of a user.
    RevokeSessions { user: String },
}

/// The App the commands run on: the table, the settings of the
/// environment, the events topic, and the API-key pepper when
/// `with_pepper` (what `flows::admin::NEEDS` names). It issues no tokens
/// and sends nothing.
pub async fn app(cli: &Cli, with_pepper: bool, env: &impl Fn(&str) -> Option<String>) -> Result<App, String> {
    let get = |k: &str| env(k);
    let mut settings = nambari_core::base::config::Settings::from_lookup(get).map_err(|e| format!("{e:?}"))?;
    settings.table_name = cli.table.clone();
    let client = nambari_aws::client(cli.endpoint.as_deref()).await;
    let table = nambari_aws::DynamoTable::new(client, cli.table.clone());
    let db = nambari_core::ports::table::Db::new(Arc::new(table));
    let mut app = App::bare(settings, db, Arc::new(SystemClock), nambari_core::flows::admin::NEEDS);
    if with_pepper {
        app = app.with_api_key_pepper(Arc::new(Live::new(api_key_pepper(cli, env).await?)));
    }
    nambari_http::config::attach_adapters(app, &get)
        .await
        .map_err(|e| e.to_string())
}

async fn api_key_pepper(cli: &Cli, env: &impl Fn(&str) -> Option<String>) -> Result<Pepper, String> {
    if let Some(id) = &cli.api_key_pepper_secret {
        let source = nambari_aws::SecretsManagerSource::connect(cli.secrets_endpoint.as_deref()).await;
        let value = source
            .fetch(id)
            .await
            .map_err(|e| format!("reading the API-key pepper secret {id}: {e}"))?;
        return secrets::parse_pepper(secrecy::ExposeSecret::expose_secret(&value), id).map_err(|e| e.0);
    }
    match env(secrets::API_KEY_PEPPER.inline) {
        Some(hex) => secrets::parse_pepper(&hex, secrets::API_KEY_PEPPER.inline).map_err(|e| e.0),
        None => Err(
            "creating a key needs the API-key pepper: --api-key-pepper-secret (or API_KEY_PEPPER_SECRET_ARN), \
             or API_KEY_PEPPER (hex) for a local run"
                .into(),
        ),
    }
}

fn key_json(k: &ApiKeyRecord) -> Value {
    json!({
        "key_id": k.key_id,
        "name": k.name,
        "scopes": k.scopes,
        "test": k.test,
        "created_at": nambari_core::base::time::fmt_time(k.created_at),
        "last_used_at": k.last_used_at.map(nambari_core::base::time::fmt_time),
        "revoked_at": k.revoked_at.map(nambari_core::base::time::fmt_time),
    })
}

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "phone_number": u.phone,
        "country_code": u.country,
        "primary_complete": u.primary_complete,
        "blocked": u.blocked,
        "created_at": nambari_core::base::time::fmt_time(u.created_at),
    })
}

/// Runs one command with the process environment.
pub async fn run(cli: Cli) -> Result<String, String> {
    run_with(cli, |k| std::env::var(k).ok()).await
}

/// Runs one command, settings and `API_KEY_PEPPER` read through `env`;
/// what it prints (text, or JSON with `--json`).
pub async fn run_with(cli: Cli, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let fail = |e: nambari_core::Error| match e {
        nambari_core::Error::Validation(m) => m
            .into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    let creating = matches!(cli.command, Command::Keys(KeysCommand::Create(_)));
    let app = app(&cli, creating, &env).await?;
    let out = match &cli.command {
        Command::Keys(KeysCommand::Create(c)) => {
            let k = apikeys::create(&app, &c.name, &c.scopes, c.test).await.map_err(fail)?;
            let mut v = key_json(&k.record);
            v["key"] = json!(apikeys::reveal(&k));
            if cli.json {
                v.to_string()
            } else {
                format!(
                    "{}\n\nkey id {} ({}), scopes {}. Store the key now: it is not shown again.",
                    apikeys::reveal(&k),
                    k.record.key_id,
                    k.record.name,
                    k.record.scopes.join(",")
                )
            }
        }
        Command::Keys(KeysCommand::List) => {
            let keys = apikeys::list(&app).await.map_err(fail)?;
            if cli.json {
                Value::Array(keys.iter().map(key_json).collect()).to_string()
            } else if keys.is_empty() {
                "no API keys".into()
            } else {
                keys.iter()
                    .map(|k| {
                        format!(
                            "{}  {:<24} {:<8} {:<30} {}",
                            k.key_id,
                            k.name,
                            if k.test { "test" } else { "live" },
                            k.scopes.join(","),
                            match k.revoked_at {
                                Some(t) => format!("revoked {}", nambari_core::base::time::fmt_time(t)),
                                None => "active".into(),
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
        Command::Keys(KeysCommand::Revoke { key_id }) => {
            let k = apikeys::revoke(&app, key_id).await.map_err(fail)?;
            if cli.json {
                key_json(&k).to_string()
            } else {
                format!("revoked {} ({})", k.key_id, k.name)
            }
        }
        Command::Users(cmd) => {
            let (who, what) = match cmd {
                UsersCommand::Get { user } => (user, "found"),
                UsersCommand::Block { user } => (user, "blocked"),
                UsersCommand::Unblock { user } => (user, "unblocked"),
                UsersCommand::RevokeSessions { user } => (user, "sessions revoked"),
            };
            let user = nambari_core::flows::admin::find_user(&app, who).await.map_err(fail)?;
            let after = match cmd {
                UsersCommand::Get { .. } => user,
                UsersCommand::Block { .. } => nambari_core::flows::admin::block(&app, &user).await.map_err(fail)?,
                UsersCommand::Unblock { .. } => nambari_core::flows::admin::unblock(&app, &user).await.map_err(fail)?,
                UsersCommand::RevokeSessions { .. } => nambari_core::flows::admin::revoke_sessions(&app, &user)
                    .await
                    .map_err(fail)?,
            };
            if cli.json {
                user_json(&after).to_string()
            } else {
                format!(
                    "{what}: {} {} {}{}",
                    after.id,
                    after.phone,
                    after.country,
                    if after.blocked { " (blocked)" } else { "" }
                )
            }
        }
    };
    Ok(out)
}
