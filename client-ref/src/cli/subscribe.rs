//! `mqttkit sub`: subscribe and print messages.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use mqttkit_client::{Client, CloseReason, Message, QoS, ReasonCode, RetainHandling, Subscription};
use mqttkit_codec::{PacketType, TopicFilter, filter_matches};

use super::connection::{ConnectArgs, parse_qos};
use super::format::{self, Format};
use super::properties::V5Properties;
use super::{Exit, Interrupt};

/// Subscribe and print messages.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    after_help = super::EXIT_CODES,
    after_long_help = concat!(
        "Examples:\n",
        "  mqttkit sub -h 127.0.0.1 -t 'sensors/#' -v\n",
        "  mqttkit sub -t 'sensors/#' -C 10 -W 30 --json\n",
        "  mqttkit sub -V 5 -t a -t b -q 2 -F '%I %t %q %p' -D subscribe subscription-identifier 7\n\n",
        "-F codes: %t topic, %p payload, %q QoS, %r retain, %m packet id, %l payload length,\n",
        "%x/%X payload in hex, %j JSON, %I ISO 8601 time, %U Unix time, %C content type,\n",
        "%D correlation data, %E message expiry, %F payload format, %P user properties,\n",
        "%R response topic, %S subscription identifiers, %A topic alias, %%; escapes \\n \\t \\\\ \\0 \\e.\n\n",
    )
)]
pub struct SubArgs {
    #[command(flatten)]
    pub conn: ConnectArgs,
    /// Topic filter to subscribe to (repeatable).
    #[arg(short = 't', long = "topic")]
    topics: Vec<String>,
    /// Requested QoS.
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    qos: QoS,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count")]
    count: Option<u64>,
    /// Exit (status 27) if this many seconds pass before -C messages arrived.
    #[arg(short = 'W', long = "timeout")]
    timeout: Option<f64>,
    /// Print the topic before the payload.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Output format (see below).
    #[arg(short = 'F', long = "format", conflicts_with_all = ["json", "verbose"])]
    format: Option<String>,
    /// One JSON object per message.
    #[arg(long, conflicts_with = "verbose")]
    json: bool,
    /// No end of line after each message.
    #[arg(short = 'N')]
    no_newline: bool,
    /// Do not print retained (stale) messages.
    #[arg(short = 'R')]
    no_retained: bool,
    /// Print only retained messages; exit at the first live one.
    #[arg(long)]
    retained_only: bool,
    /// Do not print messages whose topic matches this filter (repeatable).
    #[arg(short = 'T', long = "filter-out")]
    filter_out: Vec<String>,
    /// Unsubscribe from this filter after subscribing (repeatable; with -c, removes a
    /// persistent subscription).
    #[arg(short = 'U', long = "unsubscribe")]
    unsubscribe: Vec<String>,
    /// Exit once the subscriptions are acknowledged.
    #[arg(short = 'E')]
    exit_after_subscribe: bool,
    /// 5.0 No Local: do not receive our own publications.
    #[arg(long = "nl", visible_alias = "no-local")]
    no_local: bool,
    /// 5.0 Retain As Published.
    #[arg(long = "rap", visible_alias = "retain-as-published")]
    retain_as_published: bool,
    /// 5.0 Retain Handling: 0 send retained, 1 only for new subscriptions, 2 never.
    #[arg(long = "rh", visible_alias = "retain-handling", default_value_t = 0)]
    retain_handling: u8,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

impl SubArgs {
    fn output_format(&self) -> Format {
        match (&self.format, self.json, self.verbose) {
            (Some(template), _, _) => Format::Template(template.clone()),
            (None, true, _) => Format::Json,
            (None, false, true) => Format::Verbose,
            (None, false, false) => Format::Payload,
        }
    }

    fn subscriptions(&self, filters: &[String]) -> Result<Vec<Subscription>, Exit> {
        let handling =
            RetainHandling::from_u8(self.retain_handling).ok_or_else(|| Exit::usage("--rh must be 0, 1 or 2"))?;
        let v5_options = self.no_local || self.retain_as_published || self.retain_handling != 0;
        if v5_options && !self.conn.version.is_v5() {
            return Err(Exit::usage("--nl, --rap and --rh need -V 5"));
        }
        filters
            .iter()
            .map(|filter| {
                TopicFilter::new(filter).map_err(|e| Exit::usage(format!("invalid topic filter `{filter}`: {e}")))?;
                Ok(Subscription::new(filter.clone(), self.qos)
                    .no_local(self.no_local)
                    .retain_as_published(self.retain_as_published)
                    .retain_handling(handling))
            })
            .collect()
    }

    /// Whether `m` is printed.
    fn shows(&self, m: &Message) -> bool {
        let stale = self.no_retained && m.retain();
        let filtered_out = self.filter_out.iter().any(|f| filter_matches(f, m.topic()));
        !stale && !filtered_out
    }
}

/// Why the message loop ended.
enum End {
    Done,
    TimedOut,
    Lost(CloseReason),
}

pub async fn run(args: SubArgs) -> Result<(), Exit> {
    let mut interrupt = Interrupt::new();
    let (options, url_topic, props) = args.conn.options("sub")?;
    let filters: Vec<String> = args.topics.iter().cloned().chain(url_topic).collect();
    if filters.is_empty() {
        return Err(Exit::usage("at least one topic filter is needed: -t FILTER"));
    }
    let subscriptions = args.subscriptions(&filters)?;
    let timeout = args
        .timeout
        .map(|secs| Duration::try_from_secs_f64(secs).map_err(|_| Exit::usage("-W must be a number of seconds ≥ 0")))
        .transpose()?;
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);

    let client = Client::connect(options).await.map_err(Exit::connect)?;
    let mut messages = client.messages();
    let result = session(&args, &client, &mut messages, subscriptions, &props, deadline, &mut interrupt).await;
    client.disconnect_with(Duration::ZERO, ReasonCode::SUCCESS, props.disconnect_session_expiry).await;
    match result? {
        End::Done => Ok(()),
        End::TimedOut => Err(Exit::code(27, "timed out")),
        End::Lost(reason) => Err(Exit::failed(reason.to_string())),
    }
}

async fn session(
    args: &SubArgs,
    client: &Client,
    messages: &mut mqttkit_client::Messages,
    subscriptions: Vec<Subscription>,
    props: &V5Properties,
    deadline: Option<tokio::time::Instant>,
    interrupt: &mut Interrupt,
) -> Result<End, Exit> {
    let filters: Vec<String> = subscriptions.iter().map(|s| s.filter.clone()).collect();
    let codes = client
        .subscribe_with(subscriptions, props.subscribe.clone())
        .await
        .map_err(|e| Exit::failed(format!("subscribe: {e}")))?;
    let named = |c: &ReasonCode| c.display(PacketType::SubAck, args.conn.version).to_string();
    let refused: Vec<String> =
        filters.iter().zip(&codes).filter(|(_, c)| c.is_error()).map(|(f, c)| format!("{f}: {}", named(c))).collect();
    if args.conn.debug {
        let codes: Vec<String> = codes.iter().map(named).collect();
        eprintln!("mqttkit: subscribed: {}", codes.join(", "));
    }
    if refused.len() == codes.len() {
        return Err(Exit::failed(format!("subscription refused ({})", refused.join(", "))));
    }
    if !refused.is_empty() && !args.conn.quiet {
        eprintln!("mqttkit: some subscriptions were refused ({})", refused.join(", "));
    }
    if !args.unsubscribe.is_empty() {
        client
            .unsubscribe_with(args.unsubscribe.clone(), props.unsubscribe.clone())
            .await
            .map_err(|e| Exit::failed(format!("unsubscribe: {e}")))?;
    }
    if args.exit_after_subscribe {
        return Ok(End::Done);
    }
    let format = args.output_format();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let sleep = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    loop {
        if args.count.is_some_and(|c| printed >= c) {
            return Ok(End::Done);
        }
        let first = tokio::select! {
            () = interrupt.recv() => return Ok(End::Done),
            () = &mut sleep => return Ok(End::TimedOut),
            m = messages.recv() => m,
        };
        let Some(first) = first else { return Ok(End::Lost(client.closed().await)) };
        // Print what has arrived, then flush once.
        let mut next = Some(first);
        while let Some(m) = next.take() {
            if args.retained_only && !m.retain() {
                out.flush().ok();
                return Ok(End::Done);
            }
            if args.shows(&m) {
                if format::write(&format, &m, args.no_newline, &mut out).is_err() {
                    // stdout closed (e.g. piped into `head`): nothing more to do.
                    return Ok(End::Done);
                }
                printed += 1;
                if args.count.is_some_and(|c| printed >= c) {
                    break;
                }
            }
            next = messages.try_recv();
        }
        if out.flush().is_err() {
            return Ok(End::Done);
        }
    }
}
