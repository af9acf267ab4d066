//! `mqttkit pub`: publish one message, a file, stdin, or one message per stdin line.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{ArgGroup, Args};
use mqttkit_client::{Client, Publication, PublishError, PublishToken, QoS, ReasonCode};
use mqttkit_codec::TopicName;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::connection::{ConnectArgs, parse_qos};
use super::{Exit, Interrupt};

/// Publications handed over but not yet acknowledged before `pub` waits for the oldest.
const PIPELINE: usize = 10_000;

/// Publish messages.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    group(ArgGroup::new("source").required(true).args(["message", "file", "lines", "stdin", "null"])),
    after_help = super::EXIT_CODES,
    after_long_help = concat!(
        "Examples:\n",
        "  mqttkit pub -h 127.0.0.1 -t sensors/t -m 21.5 -q 1 -r\n",
        "  mqttkit pub -L mqtt://127.0.0.1:1883/sensors/t -m 21.5 -V 5 -D publish content-type text/plain\n",
        "  tail -f log | mqttkit pub -t logs -l -q 1\n",
        "  mqttkit pub -t bench -m x --repeat 100000 --interval 0\n\n",
    )
)]
pub struct PubArgs {
    #[command(flatten)]
    pub conn: ConnectArgs,
    /// Topic to publish to.
    #[arg(short = 't', long)]
    topic: Option<String>,
    /// Message payload.
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Send the contents of a file as the message.
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
    /// Send one message per line of stdin (every QoS 1/2 message is acknowledged before exiting).
    #[arg(short = 'l', long = "stdin-line")]
    lines: bool,
    /// Send the whole of stdin as one message.
    #[arg(short = 's', long = "stdin-file")]
    stdin: bool,
    /// Send an empty message.
    #[arg(short = 'n', long = "null-message")]
    null: bool,
    /// QoS.
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    /// Retain the message.
    #[arg(short = 'r', long)]
    retain: bool,
    /// Most QoS 1/2 messages in flight at once (the broker's Receive Maximum also applies).
    #[arg(short = 'M', long = "max-inflight", default_value_t = 20)]
    max_inflight: u16,
    /// Publish the message (-m, -f, -s, -n) this many times.
    #[arg(long, default_value_t = 1)]
    repeat: u64,
    /// Seconds between repeats.
    #[arg(long, visible_alias = "repeat-delay", default_value_t = 0.0)]
    interval: f64,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// Publications in flight and the first failure among them.
struct Pipeline {
    tokens: VecDeque<PublishToken>,
    failure: Option<PublishError>,
    acknowledged: u64,
}

impl Pipeline {
    async fn push(&mut self, client: &Client, publication: Publication) -> Result<(), PublishError> {
        if self.tokens.len() >= PIPELINE {
            self.wait_oldest().await;
        }
        self.tokens.push_back(client.start_publish(publication).await?);
        Ok(())
    }

    async fn wait_oldest(&mut self) {
        if let Some(token) = self.tokens.pop_front() {
            match token.await {
                Ok(_) => self.acknowledged += 1,
                Err(e) => {
                    self.failure.get_or_insert(e);
                }
            }
        }
    }

    async fn wait_all(&mut self) {
        while !self.tokens.is_empty() {
            self.wait_oldest().await;
        }
    }
}

async fn payload(args: &PubArgs) -> Result<Bytes, Exit> {
    if let Some(message) = &args.message {
        return Ok(Bytes::from(message.clone()));
    }
    if let Some(path) = &args.file {
        return std::fs::read(path).map(Bytes::from).map_err(|e| Exit::usage(format!("{}: {e}", path.display())));
    }
    if args.stdin {
        let mut buf = Vec::new();
        tokio::io::stdin().read_to_end(&mut buf).await.map_err(|e| Exit::usage(format!("stdin: {e}")))?;
        return Ok(Bytes::from(buf));
    }
    Ok(Bytes::new())
}

pub async fn run(args: PubArgs) -> Result<(), Exit> {
    let mut interrupt = Interrupt::new();
    let (options, url_topic, props) = args.conn.options("pub")?;
    let options = options.max_inflight(args.max_inflight);
    let topic = args.topic.clone().or(url_topic).ok_or_else(|| Exit::usage("a topic is needed: -t TOPIC"))?;
    TopicName::new(&topic).map_err(|e| Exit::usage(format!("invalid topic `{topic}`: {e}")))?;
    if topic.is_empty() {
        return Err(Exit::usage("the topic is empty"));
    }
    let interval = Duration::try_from_secs_f64(args.interval).map_err(|_| Exit::usage("--interval must be ≥ 0"))?;
    let body = if args.lines { Bytes::new() } else { payload(&args).await? };
    let client = Client::connect(options).await.map_err(Exit::connect)?;
    let template = Publication::new(topic, args.qos, args.retain, body).with_properties(props.publish.clone());
    let mut pipeline = Pipeline { tokens: VecDeque::new(), failure: None, acknowledged: 0 };
    let work = async {
        if args.lines {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            loop {
                let line = lines.next_line().await.map_err(|e| Exit::failed(format!("stdin: {e}")))?;
                let Some(line) = line else { break };
                let publication = Publication { payload: Bytes::from(line), ..template.clone() };
                pipeline.push(&client, publication).await.map_err(|e| Exit::failed(e.to_string()))?;
            }
        } else {
            for n in 0..args.repeat {
                if n > 0 && !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                pipeline.push(&client, template.clone()).await.map_err(|e| Exit::failed(e.to_string()))?;
            }
        }
        // Never exit with QoS 1/2 messages still queued: wait for every handshake.
        pipeline.wait_all().await;
        Ok::<(), Exit>(())
    };
    let outcome = tokio::select! {
        outcome = work => outcome,
        () = interrupt.recv() => Err(Exit::code(130, "interrupted")),
    };
    let quiesce = if outcome.is_ok() { Duration::ZERO } else { Duration::from_millis(250) };
    client.disconnect_with(quiesce, ReasonCode::SUCCESS, props.disconnect_session_expiry).await;
    outcome?;
    match pipeline.failure {
        None => Ok(()),
        Some(PublishError::Closed) => {
            let reason = client.closed().await;
            Err(Exit::failed(format!("not every message was acknowledged: {reason}")))
        }
        Some(e) => Err(Exit::failed(format!("publish failed: {e}"))),
    }
}
