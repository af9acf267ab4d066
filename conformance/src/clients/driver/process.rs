//! A driver as a child process: commands as JSON lines on its stdin, messages as JSON lines
//! on its stdout; its stderr is kept (the last lines) to explain a crash.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::{BROKER_URL_ENV, Output};

/// Lines of stderr kept.
const STDERR_LINES: usize = 12;

/// A running driver process.
pub(crate) struct Child {
    process: Arc<tokio::sync::Mutex<tokio::process::Child>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Child {
    /// Its last lines on stderr, joined.
    pub(crate) fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        lines.iter().cloned().collect::<Vec<_>>().join(" | ")
    }

    /// Give it `grace` to exit after its input closed, then kill it.
    pub(crate) async fn stop(self, grace: Duration) {
        let mut process = self.process.lock().await;
        if tokio::time::timeout(grace, process.wait()).await.is_err() {
            let _ = process.start_kill();
            let _ = process.wait().await;
        }
    }
}

/// Start `command` with the listener's URL in its environment; its messages go to `output`.
pub(crate) fn spawn(
    command: &[String],
    env: &[(String, String)],
    url: &str,
    mut commands: mpsc::UnboundedReceiver<Json>,
    output: mpsc::UnboundedSender<Output>,
) -> Result<Child, String> {
    let (program, args) = command.split_first().ok_or("empty driver command")?;
    let mut process = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(BROKER_URL_ENV, url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("`{}`: {e} (is the driver installed? conformance/drivers/driver.sh install NAME)", program)
        })?;
    let mut stdin = process.stdin.take().ok_or("no stdin")?;
    let stdout = process.stdout.take().ok_or("no stdout")?;
    let stderr_pipe = process.stderr.take().ok_or("no stderr")?;
    let process = Arc::new(tokio::sync::Mutex::new(process));
    let stderr = Arc::new(Mutex::new(VecDeque::new()));
    tokio::spawn(async move {
        while let Some(command) = commands.recv().await {
            let mut line = command.to_string();
            line.push('\n');
            if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                return;
            }
        }
        // Dropping stdin tells the driver to end.
    });
    {
        let stderr = Arc::clone(&stderr);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr_pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut kept = stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if kept.len() == STDERR_LINES {
                    kept.pop_front();
                }
                kept.push_back(line.chars().take(300).collect());
            }
        });
    }
    {
        let process = Arc::clone(&process);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) if line.trim().is_empty() => {}
                    Ok(Some(line)) => {
                        let message = match serde_json::from_str::<Json>(&line) {
                            Ok(message @ Json::Object(_)) => Output::Message(message),
                            _ => Output::Garbled(line.chars().take(300).collect()),
                        };
                        if output.send(message).is_err() {
                            return;
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            // Its output closed: say how it ended (if it ended soon).
            let status = {
                let mut process = process.lock().await;
                tokio::time::timeout(Duration::from_secs(1), process.wait()).await
            };
            let how = match status {
                Ok(Ok(status)) => format!("the process exited ({status})"),
                _ => "the process closed its output".to_owned(),
            };
            let _ = output.send(Output::Ended(how));
        });
    }
    Ok(Child { process, stderr })
}
