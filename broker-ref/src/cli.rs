//! The operator's commands of `mqttkit-broker`: `passwd` (like mosquitto_passwd) and
//! `status`, `clients`, `disconnect` (like `emqx_ctl`, through the management API).

use std::io::{BufRead, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use mqttkit_broker::Config;
use mqttkit_broker::admin::client::{Credentials, call};
use mqttkit_broker::admin::model;
use mqttkit_broker::auth::password::{self, DEFAULT_ITERATIONS, PasswordHash};

/// `passwd`.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Create the file (replacing it if it exists).
    #[arg(short = 'c')]
    create: bool,
    /// Delete the user instead.
    #[arg(short = 'D')]
    delete: bool,
    /// The password on the command line (batch mode; it is visible to other local users).
    #[arg(short = 'b', value_name = "PASSWORD")]
    batch: Option<String>,
    /// PBKDF2 iterations (mosquitto_passwd uses 101).
    #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
    iterations: u32,
    /// Print `USER:HASH` instead of writing a file (for `[users]` or `[admin] password`).
    #[arg(long)]
    print: bool,
    /// FILE USER (with --print: USER).
    #[arg(num_args = 1..=2, value_names = ["FILE", "USER"], required = true)]
    args: Vec<String>,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("mqttkit-broker: {message}");
    ExitCode::FAILURE
}

/// Read the new password: `-b`, else twice from the terminal without echo, else a line
/// from standard input.
fn read_password(batch: Option<&str>) -> Result<String, String> {
    if let Some(password) = batch {
        return Ok(password.to_owned());
    }
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let second = rpassword::prompt_password("Reenter password: ").map_err(|e| e.to_string())?;
        if first != second {
            return Err("the passwords do not match".into());
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// `mqttkit-broker passwd`.
pub fn passwd(args: &PasswdArgs) -> ExitCode {
    let (file, user) = match (args.print, args.args.as_slice()) {
        (true, [user]) => (None, user.as_str()),
        (false, [file, user]) => (Some(Path::new(file)), user.as_str()),
        (true, _) => return fail("passwd --print takes USER only"),
        (false, _) => return fail("passwd takes FILE USER"),
    };
    if user.is_empty() || user.contains(':') {
        return fail(format!("invalid user name {user:?} (non-empty, no ':')"));
    }
    let existing = match file {
        Some(path) if !args.create => match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => return fail(format!("{}: {e} (use -c to create it)", path.display())),
        },
        _ => String::new(),
    };
    let text = if args.delete {
        let (text, removed) = password::remove_password_line(&existing, user);
        if !removed {
            return fail(format!("user {user:?} not found"));
        }
        text
    } else {
        let password = match read_password(args.batch.as_deref()) {
            Ok(p) if !p.is_empty() => p,
            Ok(_) => return fail("empty password"),
            Err(e) => return fail(e),
        };
        let hash = match PasswordHash::new(password.as_bytes(), args.iterations) {
            Ok(hash) => hash,
            Err(e) => return fail(e),
        };
        if args.print {
            println!("{user}:{hash}");
            return ExitCode::SUCCESS;
        }
        password::set_password_line(&existing, user, &hash)
    };
    let Some(path) = file else { return fail("nothing to write") };
    match write_private(path, &text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("{}: {e}", path.display())),
    }
}

/// Write `text` to `path` through a temporary file (readable by its owner only).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp: PathBuf = path.with_extension("tmp~");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&tmp)?;
    out.write_all(text.as_bytes())?;
    out.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// How to reach the management API.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The API's address [default: [admin] listen of --config, else 127.0.0.1:18083].
    #[arg(long, value_name = "HOST:PORT")]
    api: Option<String>,
    /// Bearer token [default: [admin] token of --config, or $MQTTKIT_ADMIN_TOKEN].
    #[arg(long, env = "MQTTKIT_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Basic authentication user.
    #[arg(long)]
    user: Option<String>,
    /// Basic authentication password (or $MQTTKIT_ADMIN_PASSWORD).
    #[arg(long, env = "MQTTKIT_ADMIN_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
}

/// `disconnect`.
#[derive(Debug, Args)]
pub struct DisconnectArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The client's identifier.
    client_id: String,
}

fn endpoint(config: Option<&Path>, args: &ApiArgs) -> Result<(SocketAddr, Credentials), String> {
    let admin = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Config::from_toml(&text).map_err(|e| format!("{}: {}", path.display(), e.0))?.admin
        }
        None => None,
    };
    let address = args
        .api
        .clone()
        .or_else(|| admin.as_ref().map(|a| a.listen.clone()))
        .unwrap_or_else(|| "127.0.0.1:18083".into());
    let addr = address
        .to_socket_addrs()
        .map_err(|e| format!("API address {address}: {e}"))?
        .next()
        .ok_or_else(|| format!("API address {address}: no address"))?;
    let credentials = match (&args.token, &args.user, &args.password) {
        (Some(token), _, _) => Credentials::Token(token.clone()),
        (None, Some(user), Some(password)) => Credentials::Basic(user.clone(), password.clone()),
        (None, Some(_), None) => return Err("--user needs --password (or $MQTTKIT_ADMIN_PASSWORD)".into()),
        (None, None, _) => match admin.and_then(|a| a.token) {
            Some(token) => Credentials::Token(token),
            None => {
                return Err(
                    "no credentials: --token, --user/--password, or a --config whose [admin] has a token".into()
                );
            }
        },
    };
    Ok((addr, credentials))
}

fn get(config: Option<&Path>, args: &ApiArgs, method: axum::http::Method, path: &str) -> Result<String, String> {
    let (addr, credentials) = endpoint(config, args)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let (status, body) = runtime.block_on(call(addr, method, path, &credentials))?;
    if !status.is_success() {
        return Err(format!("management API at {addr}: {status}: {}", body.trim()));
    }
    Ok(body)
}

/// `mqttkit-broker status`.
pub fn status(config: Option<&Path>, args: &ApiArgs) -> ExitCode {
    let body = match get(config, args, axum::http::Method::GET, "/api/v1/status") {
        Ok(body) => body,
        Err(e) => return fail(e),
    };
    if args.json {
        println!("{body}");
        return ExitCode::SUCCESS;
    }
    let s: model::Status = match serde_json::from_str(&body) {
        Ok(s) => s,
        Err(e) => return fail(format!("unexpected answer: {e}")),
    };
    let listeners: Vec<String> = s.listeners.iter().map(|l| format!("{} {}", l.transport, l.address)).collect();
    println!("{} is running, up {}", s.version, duration(s.uptime_secs));
    println!("listeners:     {}", listeners.join(", "));
    println!(
        "clients:       {} connections, {} sessions, {} subscriptions, {} retained messages",
        s.connections, s.sessions, s.subscriptions, s.retained
    );
    println!(
        "messages:      {} received, {} sent, {} dropped",
        s.messages_received, s.messages_sent, s.messages_dropped
    );
    println!("bytes:         {} received, {} sent", s.bytes_received, s.bytes_sent);
    println!("persistence:   {}", s.persistence.as_deref().unwrap_or("off"));
    ExitCode::SUCCESS
}

/// `mqttkit-broker clients`.
pub fn clients(config: Option<&Path>, args: &ApiArgs) -> ExitCode {
    let body = match get(config, args, axum::http::Method::GET, "/api/v1/clients") {
        Ok(body) => body,
        Err(e) => return fail(e),
    };
    if args.json {
        println!("{body}");
        return ExitCode::SUCCESS;
    }
    let clients: Vec<model::Client> = match serde_json::from_str(&body) {
        Ok(c) => c,
        Err(e) => return fail(format!("unexpected answer: {e}")),
    };
    let rows: Vec<[String; 9]> = clients
        .iter()
        .map(|c| {
            let subs: Vec<String> = c.subscriptions.iter().map(|s| format!("{} (QoS {})", s.filter, s.qos)).collect();
            [
                c.client_id.clone(),
                c.user.clone().unwrap_or_else(|| "-".into()),
                if c.connected { c.peer.clone().unwrap_or_default() } else { "(offline)".into() },
                c.protocol.clone(),
                c.keep_alive.map_or_else(|| "-".into(), |k| k.to_string()),
                c.inflight.to_string(),
                c.queued.to_string(),
                format!("{}/{}", c.messages_in, c.messages_out),
                if subs.is_empty() { "-".into() } else { subs.join(", ") },
            ]
        })
        .collect();
    let header =
        ["CLIENT ID", "USER", "PEER", "PROTOCOL", "KEEPALIVE", "INFLIGHT", "QUEUED", "MSGS IN/OUT", "SUBSCRIPTIONS"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    println!("{} sessions, {} connected", clients.len(), clients.iter().filter(|c| c.connected).count());
    ExitCode::SUCCESS
}

/// `mqttkit-broker disconnect CLIENT_ID`.
pub fn disconnect(config: Option<&Path>, args: &DisconnectArgs) -> ExitCode {
    let path = format!("/api/v1/clients/{}", percent_encode(&args.client_id));
    match get(config, &args.api, axum::http::Method::DELETE, &path) {
        Ok(_) => {
            println!("disconnected {}", args.client_id);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m"),
    }
}
