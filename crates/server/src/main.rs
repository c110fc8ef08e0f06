//! `switchboard`: serve, migrate, openapi, tenant create, smooch-key create.

use clap::{CommandFactory, Parser};
use switchboard::config::{Cli, Command, LogFormat, ServeArgs, SmoochKeyCommand, TenantCommand};
use switchboard::{open_store, run, shutdown_signal, tenant_json, Settings};

/// mimalloc instead of the system allocator: the request path allocates many small, short-lived
/// objects from several threads, where glibc's malloc spent about 15 % of the server's CPU in
/// the `live` benchmark.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => exit_with_clap_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(&format!("cannot start the runtime: {e}")),
    };
    if let Err(e) = runtime.block_on(main_async(cli)) {
        fail(&e);
    }
}

async fn main_async(cli: Cli) -> Result<(), String> {
    match cli
        .command
        .unwrap_or_else(|| Command::Serve(ServeArgs::default()))
    {
        Command::Serve(args) => {
            switchboard::telemetry::init_logs(args.log_format);
            let settings = Settings::from_args(args.clone()).map_err(|e| e.to_string())?;
            let listener = std::net::TcpListener::bind(args.bind)
                .map_err(|e| format!("SWITCHBOARD_BIND: cannot listen on {}: {e}", args.bind))?;
            run(settings, listener, shutdown_signal())
                .await
                .map_err(|e| e.to_string())
        }
        Command::Migrate(db) => {
            switchboard::telemetry::init_logs(LogFormat::Text);
            let key = db.encryption_key()?;
            open_store(&db.url(), key)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Openapi => {
            println!("{}", switchboard_api::openapi_json());
            Ok(())
        }
        Command::Tenant {
            command: TenantCommand::Create { name, db },
        } => {
            switchboard::telemetry::init_logs(LogFormat::Text);
            let key = db.encryption_key()?;
            let store = open_store(&db.url(), key)
                .await
                .map_err(|e| e.to_string())?;
            match store.create_tenant(&name).await {
                Ok(t) => {
                    println!("{}", tenant_json(&t));
                    Ok(())
                }
                Err(switchboard_storage::Error::Conflict) => {
                    Err(format!("a tenant named '{name}' already exists"))
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Command::SmoochKey {
            command: SmoochKeyCommand::Create { tenant, name, db },
        } => {
            switchboard::telemetry::init_logs(LogFormat::Text);
            let tenant_id: switchboard_domain::ids::TenantId = tenant
                .parse()
                .map_err(|_| format!("no tenant has the id '{tenant}'"))?;
            let key = db.encryption_key()?;
            let store = open_store(&db.url(), key)
                .await
                .map_err(|e| e.to_string())?;
            if !store
                .tenant_exists(tenant_id)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no tenant has the id '{tenant}'"));
            }
            let key = store
                .create_smooch_key(tenant_id, None, &name)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::json!({
                    "tenantId": tenant_id.to_string(),
                    "keyId": key.key_id,
                    "name": key.name,
                    "secret": key.secret,
                })
            );
            Ok(())
        }
    }
}

/// Prints clap's error, naming the environment variable behind a bad value.
fn exit_with_clap_error(e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) {
            let long = arg
                .trim_start_matches('-')
                .split([' ', '='])
                .next()
                .unwrap_or("");
            let cmd = Cli::command();
            let env = cmd
                .get_subcommands()
                .flat_map(|s| {
                    s.get_arguments()
                        .chain(s.get_subcommands().flat_map(|t| t.get_arguments()))
                })
                .find(|a| a.get_long() == Some(long))
                .and_then(|a| a.get_env().map(|v| v.to_string_lossy().into_owned()));
            if let Some(env) = env {
                eprintln!("error: invalid value for {env} (flag --{long})");
            }
        }
    }
    e.exit()
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
