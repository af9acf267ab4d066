//! Shared helpers: the reference broker in-process, mosquitto as a real process (skipped
//! with a printed reason when it is missing, unless `MQTTKIT_REQUIRE_PEERS=1`), ports.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mqttkit_broker::{Broker, BrokerHandle, Config};

/// Whether missing peers must fail the test instead of skipping it.
pub fn peers_required() -> bool {
    std::env::var("MQTTKIT_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Whether `tool` can be run; if not, skip (printing why) or fail under
/// `MQTTKIT_REQUIRE_PEERS=1`.
pub fn have(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| Command::new(t).arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !peers_required(),
        "MQTTKIT_REQUIRE_PEERS=1 but {missing:?} not found (apt-get install -y mosquitto mosquitto-clients)"
    );
    eprintln!("SKIPPED: {missing:?} not found (apt-get install -y mosquitto mosquitto-clients)");
    false
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Wait (polling, bounded) until something listens on `port`.
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The reference broker on an ephemeral loopback port.
pub async fn reference_broker() -> BrokerHandle {
    let config = Config { listen: "127.0.0.1:0".into(), sys_interval_secs: 0, ..Config::default() };
    Broker::start(config).await.unwrap()
}

pub fn url(addr: SocketAddr) -> String {
    format!("mqtt://{addr}")
}

/// A mosquitto process, killed on drop.
pub struct Mosquitto {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    config: PathBuf,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mosquitto {
    /// Start mosquitto on a free port with `extra` configuration lines (`{dir}` stands
    /// for its own temporary directory); `None` if it is not installed (and not required).
    pub fn start(extra: &str) -> Option<Self> {
        if !have(&["mosquitto"]) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // mosquitto started as root drops to the `mosquitto` user: let it read and write.
        let _ = set_mode(dir.path(), 0o777);
        let port = free_port();
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest stderr\nlog_type error\n{}\n",
                extra.replace("{dir}", &dir.path().display().to_string())
            ),
        )
        .unwrap();
        let child = spawn(&config, &dir.path().join("mosquitto.log"));
        wait_listening(port);
        Some(Self { child, port, dir, config })
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// What mosquitto logged (its stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// `kill -9`, then start again on the same port and configuration.
    pub fn kill9_and_restart(&mut self) {
        signal(&self.child, rustix::process::Signal::KILL);
        let _ = self.child.wait();
        self.child = spawn(&self.config, &self.dir.path().join("mosquitto.log"));
        wait_listening(self.port);
    }
}

/// Send `signal` to a child process.
pub fn signal(child: &Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

fn spawn(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new("mosquitto").arg("-c").arg(config).stdout(Stdio::null()).stderr(log).spawn().expect("start mosquitto")
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Both brokers as `(name, url, guard)`: the reference broker always, mosquitto when
/// available.
pub async fn brokers() -> Vec<(&'static str, String, Box<dyn std::any::Any + Send>)> {
    let reference = reference_broker().await;
    let mut out: Vec<(&'static str, String, Box<dyn std::any::Any + Send>)> =
        vec![("mqttkit-broker", url(reference.local_addr()), Box::new(reference))];
    if let Some(m) = Mosquitto::start("") {
        out.push(("mosquitto", m.url(), Box::new(m)));
    }
    out
}

/// Run `f` with a bound: a test never hangs.
pub async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f).await.unwrap_or_else(|_| panic!("{what} did not finish"))
}
