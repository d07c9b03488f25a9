//! `cargo run -p nambari-local`: every endpoint on http://127.0.0.1:3000/api/v1
//! with the in-memory store, codes printed to the terminal and returned as
//! `sandboxOtp`, and development signing keys generated at start.

use std::sync::Arc;

use nambari_core::App;
use nambari_core::base::config::SenderMode;
use nambari_core::base::crypto::random_bytes;
use nambari_core::base::otp::Pepper;
use nambari_core::base::tokens::{KeyRing, KeySet};
use nambari_core::ports::clock::SystemClock;
use nambari_core::ports::memory::MemoryTable;
use nambari_core::ports::table::Table;
use tokio::net::TcpListener;

const HELP: &str = "\
nambari-local: run every Nambari endpoint on one port, no AWS account needed.

USAGE: cargo run -p nambari-local -- [OPTIONS]

OPTIONS:
  --port N                  port on 127.0.0.1 (default 3000, env PORT)
  --dynamodb-endpoint URL   use DynamoDB at URL (e.g. moto) instead of memory
  --table NAME              DynamoDB table, created if missing (default nambari-local)
  --keys-file PATH          read the signing keys from PATH, or write new ones there
  --no-limits               turn rate limits and send budgets off (load tests; env RATE_LIMITS=off)
  --senders console|real|none
                            console prints codes here (default, env SENDERS); real sends SMS
                            over SNS, email over SES and WhatsApp over the Cloud API
  --sns-endpoint URL        SNS for real SMS (e.g. moto; env SNS_ENDPOINT; default AWS)
  --ses-endpoint URL        SES for real email (e.g. moto; env SES_ENDPOINT; default AWS)
  --whatsapp-base-url URL   WhatsApp Cloud API base (e.g. a mock; env WHATSAPP_BASE_URL)
  --quiet                   no per-request log lines
  -h, --help                this text

Every setting of the README (TEST_PHONE_NUMBERS, OTP_TTL_SECONDS, …) is read
from the environment; SANDBOX defaults to true here, and INVITE_URL_TEMPLATE to
http://127.0.0.1:PORT/claim/{invite_id} (invites on, with a development link). Real senders need
WEBOTP_DOMAIN and SES_FROM_ADDRESS, and for WhatsApp WHATSAPP_PHONE_NUMBER_ID
and WHATSAPP_TOKEN (the token itself). A new integrator API key is printed at
start; API_KEY_PEPPER (hex) sets the pepper keys are hashed with (default: a
fixed development value, so nambari-admin can add keys with the same one).";

/// Local mode's API-key pepper when `API_KEY_PEPPER` is unset (hex of
/// "nambari-local-api-key-pepper"). A development value: deployed stages
/// read theirs from Secrets Manager.
const LOCAL_API_KEY_PEPPER: &str = "6e616d626172692d6c6f63616c2d6170692d6b65792d706570706572";

struct Args {
    port: u16,
    dynamodb_endpoint: Option<String>,
    table: String,
    keys_file: Option<String>,
    quiet: bool,
    no_limits: bool,
    senders: Option<String>,
    sns_endpoint: Option<String>,
    ses_endpoint: Option<String>,
    whatsapp_base_url: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000),
        dynamodb_endpoint: None,
        table: "nambari-local".into(),
        keys_file: None,
        quiet: false,
        no_limits: false,
        senders: None,
        sns_endpoint: None,
        ses_endpoint: None,
        whatsapp_base_url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--port" => {
                args.port = value("--port")?
                    .parse()
                    .map_err(|_| "--port must be a number".to_owned())?
            }
            "--dynamodb-endpoint" => args.dynamodb_endpoint = Some(value("--dynamodb-endpoint")?),
            "--table" => args.table = value("--table")?,
            "--keys-file" => args.keys_file = Some(value("--keys-file")?),
            "--quiet" => args.quiet = true,
            "--no-limits" => args.no_limits = true,
            "--senders" => args.senders = Some(value("--senders")?),
            "--sns-endpoint" => args.sns_endpoint = Some(value("--sns-endpoint")?),
            "--ses-endpoint" => args.ses_endpoint = Some(value("--ses-endpoint")?),
            "--whatsapp-base-url" => args.whatsapp_base_url = Some(value("--whatsapp-base-url")?),
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (see --help)")),
        }
    }
    Ok(args)
}

async fn key_set(path: Option<&str>) -> Result<KeySet, String> {
    let Some(path) = path else {
        return KeyRing::generate_set().map_err(|e| format!("{e:?}"));
    };
    match tokio::fs::read_to_string(path).await {
        Ok(s) => serde_json::from_str(&s).map_err(|_| format!("{path} is not a JSON key set")),
        Err(_) => {
            let set = KeyRing::generate_set().map_err(|e| format!("{e:?}"))?;
            let json = serde_json::to_string_pretty(&set).map_err(|e| e.to_string())?;
            tokio::fs::write(path, json)
                .await
                .map_err(|e| format!("writing {path}: {e}"))?;
            Ok(set)
        }
    }
}

async fn start() -> Result<(), String> {
    let args = parse_args()?;
    // Flags win over the environment; SANDBOX and SENDERS have local defaults.
    let flag = |k: &str| match k {
        "SENDERS" => args.senders.clone(),
        "SNS_ENDPOINT" => args.sns_endpoint.clone(),
        "SES_ENDPOINT" => args.ses_endpoint.clone(),
        "WHATSAPP_BASE_URL" => args.whatsapp_base_url.clone(),
        _ => None,
    };
    let lookup = |k: &str| {
        flag(k)
            .or_else(|| std::env::var(k).ok())
            .or_else(|| nambari_local::local_default(k, args.port))
    };
    let mut settings = nambari_core::base::config::Settings::from_lookup(lookup).map_err(|e| format!("{e:?}"))?;
    settings.table_name = args.table.clone();
    if args.no_limits {
        settings.limits.enabled = false;
    }
    let set = key_set(args.keys_file.as_deref()).await?;
    let keys = KeyRing::from_set(&set, &settings.issuer, &settings.audience).map_err(|e| format!("{e:?}"))?;
    let pepper =
        Pepper::new(random_bytes::<32>().map_err(|e| format!("{e:?}"))?.to_vec()).map_err(|e| format!("{e:?}"))?;
    let table: Arc<dyn Table> = match &args.dynamodb_endpoint {
        None => Arc::new(MemoryTable::new()),
        Some(endpoint) => {
            let client = nambari_aws::client(Some(endpoint)).await;
            nambari_aws::create_table(&client, &args.table)
                .await
                .map_err(|e| format!("creating table {} at {endpoint}: {e}", args.table))?;
            Arc::new(nambari_aws::DynamoTable::new(client, args.table.clone()))
        }
    };
    let store = match &args.dynamodb_endpoint {
        None => "in-memory store".to_owned(),
        Some(e) => format!("DynamoDB table {} at {e}", args.table),
    };
    let sandbox = settings.sandbox;
    let limits = settings.limits.enabled;
    let endpoints = nambari_http::config::Endpoints::from_lookup(&lookup);
    let sender = nambari_http::config::local_sender(&settings, &endpoints, lookup)
        .await
        .map_err(|e| e.to_string())?;
    let senders = match settings.delivery.senders {
        SenderMode::Console => "codes printed here".to_owned(),
        SenderMode::None => "no senders".to_owned(),
        SenderMode::Real => format!(
            "real senders: SNS {}, SES {}, WhatsApp {}",
            endpoints.sns.as_deref().unwrap_or("AWS"),
            endpoints.ses.as_deref().unwrap_or("AWS"),
            if settings.channels.contains(&nambari_core::base::channel::Pipe::Whatsapp) {
                settings.delivery.whatsapp_base_url.as_str()
            } else {
                "not offered"
            }
        ),
    };
    let app = App::new(settings, table, Arc::new(SystemClock), Arc::new(keys), pepper, sender);
    // The API-key pepper: API_KEY_PEPPER, else local mode's fixed default
    // (so `nambari-admin` can make keys for a local mode on DynamoDB).
    let api_pepper_hex = lookup("API_KEY_PEPPER").unwrap_or_else(|| LOCAL_API_KEY_PEPPER.to_owned());
    let api_pepper = nambari_core::ports::secrets::parse_pepper(&api_pepper_hex, "API_KEY_PEPPER").map_err(|e| e.0)?;
    let app = app.with_api_key_pepper(Arc::new(nambari_core::ports::secrets::Live::new(api_pepper)));
    let app = nambari_http::config::attach_adapters(app, &lookup)
        .await
        .map_err(|e| e.to_string())?;
    let api_key = nambari_core::services::apikeys::create(&app, "local mode", &[], false)
        .await
        .map_err(|e| format!("creating the local API key: {e:?}"))?;
    let app = Arc::new(app);
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    eprintln!(
        "nambari-local listening on http://127.0.0.1:{}/api/v1 ({store}, sandbox {}, limits {}, {senders}, signing key {})",
        args.port,
        if sandbox { "on" } else { "off" },
        if limits { "on" } else { "off" },
        set.current.kid
    );
    eprintln!(
        "integrator API key (all scopes): {}",
        nambari_core::services::apikeys::reveal(&api_key)
    );
    tokio::select! {
        _ = nambari_local::serve(app, listener, !args.quiet) => {}
        _ = tokio::signal::ctrl_c() => eprintln!("stopping"),
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    nambari_http::init_tracing();
    if let Err(e) = start().await {
        eprintln!("nambari-local: {e}");
        std::process::exit(1);
    }
}
