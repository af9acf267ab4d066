//! A small MQTT load generator for measuring a broker on 127.0.0.1 while working on it
//! (the project's tool will be `mqttkit bench`). It speaks the protocol with
//! `mqttkit-codec` on tokio and reads the broker's CPU time and RSS from `/proc/PID`.
//!
//! ```sh
//! cargo run --release -p mqttkit-broker --example load -- --addr 127.0.0.1:1883 --pid PID p2p --clients 1
//! ... fanout --subs 100       # 1 publisher → 100 subscribers of one topic
//! ... fanin --pubs 100        # 100 publishers → 1 subscriber of bench/#
//! ... conn --count 10000      # idle connections: KB each, memory after they close
//! ```
//!
//! Options before the scenario: `--qos`, `--size` (payload bytes, ≥ 8: a send timestamp),
//! `--secs` (publishing time), `--rate` (total msg/s; 0 = as fast as possible), `--v5`,
//! `--inflight` (publisher window for QoS 1/2). One line of `key=value` results.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use clap::{Parser, Subcommand};
use mqttkit_codec::{
    Connect, MqttStr, Packet, PacketId, ProtocolVersion, Publish, PublishQoS, PublishResponse, QoS, StreamDecoder,
    Subscribe, SubscribeFiltersBuf, SubscriptionOptions, TopicFilter, TopicName,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
struct Args {
    /// Broker address (127.0.0.1 only).
    #[arg(long, default_value = "127.0.0.1:1883")]
    addr: SocketAddr,
    /// Broker process id, for CPU and RSS from /proc.
    #[arg(long)]
    pid: Option<u32>,
    #[arg(long, default_value_t = 0)]
    qos: u8,
    #[arg(long, default_value_t = 32)]
    size: usize,
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Total messages per second over all publishers; 0: as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    #[arg(long)]
    v5: bool,
    #[arg(long, default_value_t = 100)]
    inflight: usize,
    /// Generator threads (the broker gets the other core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Keep Alive of every client, seconds (some brokers refuse 0).
    #[arg(long, default_value_t = 60)]
    keep_alive: u16,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Scenario {
    /// N publishers, each to its own topic, each with its own subscriber.
    P2p {
        #[arg(long, default_value_t = 1)]
        clients: usize,
    },
    /// One publisher, N subscribers of its topic.
    Fanout {
        #[arg(long, default_value_t = 100)]
        subs: usize,
    },
    /// N publishers, one subscriber of `bench/#`.
    Fanin {
        #[arg(long, default_value_t = 100)]
        pubs: usize,
    },
    /// N idle connections: broker memory per connection, and after they close.
    Conn {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
    },
}

fn main() {
    let args = Args::parse();
    assert!(args.addr.ip().is_loopback(), "loopback addresses only");
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    }
    .expect("runtime");
    rt.block_on(async move {
        match args.scenario {
            Scenario::Conn { count } => conn_scenario(&args, count).await,
            Scenario::P2p { clients } => traffic(&args, clients, clients, Layout::P2p).await,
            Scenario::Fanout { subs } => traffic(&args, 1, subs, Layout::Fanout).await,
            Scenario::Fanin { pubs } => traffic(&args, pubs, 1, Layout::Fanin).await,
        }
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    P2p,
    Fanout,
    Fanin,
}

// ---------------------------------------------------------------------- /proc

/// CPU seconds (all threads, from the scheduler's nanosecond counters) and RSS in KiB of
/// a process.
fn proc_sample(pid: u32) -> Option<(f64, u64)> {
    let mut nanos: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        nanos += stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches(" kB").parse().ok()?;
    Some((nanos as f64 / 1e9, rss))
}

// ---------------------------------------------------------------------- client basics

struct Client {
    stream: TcpStream,
    decoder: StreamDecoder,
    version: ProtocolVersion,
}

impl Client {
    async fn connect(
        addr: SocketAddr,
        version: ProtocolVersion,
        keep_alive: u16,
        id: &str,
    ) -> std::io::Result<(Self, u16)> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Self { stream, decoder: StreamDecoder::with_version(version), version };
        let connect = Connect::new(version, MqttStr::new(id).expect("client id"), true, keep_alive);
        c.send(&Packet::Connect(connect)).await?;
        match c.next().await? {
            Reply::ConnAck { ok: true, receive_maximum } => Ok((c, receive_maximum)),
            other => Err(std::io::Error::other(format!("CONNECT refused: {other:?}"))),
        }
    }

    async fn send(&mut self, packet: &Packet<'_>) -> std::io::Result<()> {
        let mut buf = Vec::new();
        packet.encode(self.version, &mut buf).map_err(std::io::Error::other)?;
        self.stream.write_all(&buf).await
    }

    async fn subscribe(&mut self, filter: &str, qos: QoS) -> std::io::Result<()> {
        let mut f = SubscribeFiltersBuf::new();
        f.push(TopicFilter::new(filter).expect("filter"), SubscriptionOptions::qos(qos));
        let filters = f.filters(self.version).map_err(std::io::Error::other)?;
        let sub = Subscribe { packet_id: PacketId::MIN, properties: Default::default(), filters };
        self.send(&Packet::Subscribe(sub)).await?;
        match self.next().await? {
            Reply::SubAck => Ok(()),
            other => Err(std::io::Error::other(format!("expected SUBACK: {other:?}"))),
        }
    }

    /// What the next packet says, for the handshakes.
    async fn next(&mut self) -> std::io::Result<Reply> {
        loop {
            let reply = match self.decoder.next_packet().map_err(std::io::Error::other)? {
                Some(Packet::ConnAck(ack)) => Some(Reply::ConnAck {
                    ok: !ack.code.is_error(),
                    receive_maximum: ack.properties.receive_maximum().unwrap_or(u16::MAX),
                }),
                Some(Packet::SubAck(_)) => Some(Reply::SubAck),
                Some(_) => Some(Reply::Other),
                None => None,
            };
            if let Some(reply) = reply {
                return Ok(reply);
            }
            if self.stream.read_buf(self.decoder.read_buffer()).await? == 0 {
                return Ok(Reply::Closed);
            }
        }
    }
}

#[derive(Debug)]
enum Reply {
    ConnAck { ok: bool, receive_maximum: u16 },
    SubAck,
    Other,
    Closed,
}

fn version(args: &Args) -> ProtocolVersion {
    if args.v5 { ProtocolVersion::V5 } else { ProtocolVersion::V3_1_1 }
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------- traffic

#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    received: AtomicU64,
    disconnects: AtomicU64,
    last_receive_ns: AtomicU64,
}

/// Latency histogram: 64 power-of-two ranges of nanoseconds, 16 linear steps each.
struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    fn new() -> Self {
        Self { counts: vec![0; 64 * 16] }
    }

    fn index(v: u64) -> usize {
        let v = v.max(1);
        let log = 63 - v.leading_zeros() as usize;
        let sub = if log >= 4 { ((v >> (log - 4)) & 15) as usize } else { 0 };
        log * 16 + sub
    }

    fn value(i: usize) -> u64 {
        let (log, sub) = (i / 16, (i % 16) as u64);
        if log >= 4 { (16 + sub) << (log - 4) } else { 1 << log }
    }

    fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
    }

    fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    fn percentile(&self, p: f64) -> u64 {
        let total: u64 = self.counts.iter().sum();
        let target = ((total as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                return Self::value(i);
            }
        }
        0
    }
}

async fn traffic(args: &Args, pubs: usize, subs: usize, layout: Layout) {
    let version = version(args);
    let qos = QoS::from_u8(args.qos).expect("qos 0, 1 or 2");
    let totals = Arc::new(Totals::default());
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let mut sub_tasks = Vec::new();
    for i in 0..subs {
        let filter = match layout {
            Layout::P2p => format!("bench/{i}"),
            Layout::Fanout => "bench/0".to_owned(),
            Layout::Fanin => "bench/#".to_owned(),
        };
        let (mut c, _) = Client::connect(args.addr, version, args.keep_alive, &format!("sub{i}"))
            .await
            .expect("subscriber connects");
        c.subscribe(&filter, qos).await.expect("subscribed");
        sub_tasks.push(tokio::spawn(subscriber(c, totals.clone(), epoch, done_rx.clone())));
    }
    let mut pub_clients = Vec::new();
    for i in 0..pubs {
        let (c, rm) =
            Client::connect(args.addr, version, args.keep_alive, &format!("pub{i}")).await.expect("publisher connects");
        pub_clients.push((i, c, rm));
    }
    let before = args.pid.and_then(proc_sample);
    let self_before = proc_sample(std::process::id());
    let start = Instant::now();
    let mut pub_tasks = Vec::new();
    for (i, c, rm) in pub_clients {
        let topic = match layout {
            Layout::Fanout => "bench/0".to_owned(),
            _ => format!("bench/{i}"),
        };
        let window = args.inflight.min(usize::from(rm)).max(1);
        let rate = if args.rate == 0 { 0.0 } else { args.rate as f64 / pubs as f64 };
        let p = PubSpec { topic, qos, size: args.size.max(8), window, rate, epoch };
        pub_tasks.push(tokio::spawn(publisher(c, p, totals.clone(), stop.clone())));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in pub_tasks {
        let _ = t.await;
    }
    let sent = totals.sent.load(Ordering::Relaxed);
    let fanout = match layout {
        Layout::Fanout => subs as u64,
        _ => 1,
    };
    let expected = sent * fanout;
    // Drain: until everything arrived, nothing arrives for a second, or 20 s passed.
    let mut last = totals.received.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    let drain_start = Instant::now();
    while last < expected
        && quiet_since.elapsed() < Duration::from_secs(1)
        && drain_start.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = totals.received.load(Ordering::Relaxed);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    let after = args.pid.and_then(proc_sample);
    let self_after = proc_sample(std::process::id());
    let received = totals.received.load(Ordering::Relaxed);
    let end_ns = totals.last_receive_ns.load(Ordering::Relaxed);
    let start_ns = u64::try_from(start.duration_since(epoch).as_nanos()).unwrap_or(0);
    let elapsed = Duration::from_nanos(end_ns.saturating_sub(start_ns)).as_secs_f64().max(1e-9);
    let _ = done_tx.send(true);
    let mut hist = Histogram::new();
    for t in sub_tasks {
        if let Ok(h) = t.await {
            hist.merge(&h);
        }
    }
    let mut line = format!(
        "scenario={layout:?} pubs={pubs} subs={subs} qos={} size={} v5={} rate={} sent={sent} expected={expected} \
         received={received} delivered_pct={:.3} msgs_per_s={:.0} disconnects={} lat_p50_us={:.0} lat_p99_us={:.0}",
        args.qos,
        args.size,
        args.v5,
        args.rate,
        if expected == 0 { 0.0 } else { received as f64 * 100.0 / expected as f64 },
        received as f64 / elapsed,
        totals.disconnects.load(Ordering::Relaxed),
        hist.percentile(0.5) as f64 / 1e3,
        hist.percentile(0.99) as f64 / 1e3,
    );
    if let (Some((c0, _)), Some((c1, rss))) = (before, after) {
        let cpu = c1 - c0;
        line += &format!(
            " broker_cpu_s={cpu:.2} broker_cpu_us_per_msg={:.3} broker_rss_kb={rss}",
            cpu * 1e6 / received.max(1) as f64
        );
    }
    if let (Some((c0, _)), Some((c1, _))) = (self_before, self_after) {
        line += &format!(" gen_cpu_s={:.2}", c1 - c0);
    }
    println!("{line}");
}

struct PubSpec {
    topic: String,
    qos: QoS,
    size: usize,
    window: usize,
    /// Messages per second for this publisher; 0: flat out.
    rate: f64,
    epoch: Instant,
}

async fn publisher(c: Client, p: PubSpec, totals: Arc<Totals>, stop: Arc<AtomicBool>) {
    let topic = TopicName::new(&p.topic).expect("topic");
    let mut payload = vec![b'x'; p.size];
    let mut out = BytesMut::new();
    let mut inflight: usize = 0;
    let mut next_id: u16 = 0;
    let mut pending_rel: VecDeque<PacketId> = VecDeque::new();
    let start = Instant::now();
    let mut sent: u64 = 0;
    let (mut rd, mut wr) = c.stream.into_split();
    let mut rbuf = BytesMut::with_capacity(4096);
    let version = c.version;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let due =
            if p.rate > 0.0 { ((start.elapsed().as_secs_f64() * p.rate) as u64).saturating_sub(sent) } else { 64 };
        let room = if p.qos == QoS::AtMostOnce { usize::MAX } else { p.window.saturating_sub(inflight) };
        let n = if stopping { 0 } else { due.min(room as u64).min(256) };
        for _ in 0..n {
            let q = match p.qos {
                QoS::AtMostOnce => PublishQoS::AtMostOnce,
                qos => {
                    next_id = next_id.checked_add(1).unwrap_or(1);
                    PublishQoS::new(qos, PacketId::new(next_id).unwrap_or(PacketId::MIN))
                }
            };
            payload[..8].copy_from_slice(&nanos_since(p.epoch).to_be_bytes());
            let _ = Packet::Publish(Publish::new(topic, q, &payload)).encode(version, &mut out);
            sent += 1;
            if p.qos != QoS::AtMostOnce {
                inflight += 1;
            }
        }
        for id in pending_rel.drain(..) {
            let _ = Packet::PubRel(PublishResponse::new(id)).encode(version, &mut out);
        }
        if !out.is_empty() {
            if wr.write_all(&out).await.is_err() {
                totals.disconnects.fetch_add(1, Ordering::Relaxed);
                break;
            }
            out.clear();
        }
        if stopping && inflight == 0 {
            break;
        }
        // Wait for acks (QoS 1/2 with a full window, or while stopping), or for the next
        // message due at the rate; flat-out QoS 0 just continues.
        let wait = if p.rate > 0.0 {
            let next_at = Duration::from_secs_f64((sent + 1) as f64 / p.rate);
            next_at.saturating_sub(start.elapsed())
        } else if inflight >= p.window || (stopping && inflight > 0) {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        };
        if p.qos == QoS::AtMostOnce && wait.is_zero() {
            continue;
        }
        let read = tokio::time::timeout(wait.max(Duration::from_micros(1)), rd.read_buf(&mut rbuf)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => {
                totals.disconnects.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Ok(Ok(_)) => {
                // Acks are tiny: PUBACK / PUBREC / PUBCOMP, 4 bytes in 3.1.1, ≥ 4 in 5.0.
                while rbuf.len() >= 2 {
                    let len = usize::from(rbuf[1]);
                    if rbuf[1] & 0x80 != 0 || rbuf.len() < 2 + len {
                        break;
                    }
                    let kind = rbuf[0] >> 4;
                    let id = if len >= 2 { u16::from_be_bytes([rbuf[2], rbuf[3]]) } else { 0 };
                    match kind {
                        4 | 7 => inflight = inflight.saturating_sub(1),
                        5 => {
                            if let Some(id) = PacketId::new(id) {
                                pending_rel.push_back(id);
                            }
                        }
                        _ => {}
                    }
                    rbuf.advance(2 + len);
                }
            }
            Err(_) => {
                if stopping && inflight > 0 && p.rate == 0.0 {
                    break;
                }
            }
        }
    }
    totals.sent.fetch_add(sent, Ordering::Relaxed);
}

async fn subscriber(
    mut c: Client,
    totals: Arc<Totals>,
    epoch: Instant,
    mut done: tokio::sync::watch::Receiver<bool>,
) -> Histogram {
    let mut hist = Histogram::new();
    let mut acks = Vec::new();
    loop {
        let mut batch: u64 = 0;
        loop {
            match c.decoder.next_packet() {
                Ok(Some(Packet::Publish(p))) => {
                    batch += 1;
                    if let Some(ts) = p.payload.get(..8) {
                        let sent = u64::from_be_bytes(ts.try_into().unwrap_or([0; 8]));
                        hist.record(nanos_since(epoch).saturating_sub(sent));
                    }
                    match (p.qos.qos(), p.qos.packet_id()) {
                        (QoS::AtLeastOnce, Some(id)) => {
                            let _ = Packet::PubAck(PublishResponse::new(id)).encode(c.version, &mut acks);
                        }
                        (QoS::ExactlyOnce, Some(id)) => {
                            let _ = Packet::PubRec(PublishResponse::new(id)).encode(c.version, &mut acks);
                        }
                        _ => {}
                    }
                }
                Ok(Some(Packet::PubRel(r))) => {
                    let _ = Packet::PubComp(PublishResponse::new(r.packet_id)).encode(c.version, &mut acks);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    totals.disconnects.fetch_add(1, Ordering::Relaxed);
                    return hist;
                }
            }
        }
        if batch > 0 {
            totals.received.fetch_add(batch, Ordering::Relaxed);
            totals.last_receive_ns.fetch_max(nanos_since(epoch), Ordering::Relaxed);
        }
        if !acks.is_empty() {
            if c.stream.write_all(&acks).await.is_err() {
                totals.disconnects.fetch_add(1, Ordering::Relaxed);
                return hist;
            }
            acks.clear();
        }
        let buf = c.decoder.read_buffer();
        if buf.capacity() - buf.len() < 32 * 1024 {
            buf.reserve(64 * 1024);
        }
        let read = tokio::select! {
            read = c.stream.read_buf(c.decoder.read_buffer()) => read,
            _ = done.changed() => return hist,
        };
        match read {
            Ok(0) | Err(_) => {
                totals.disconnects.fetch_add(1, Ordering::Relaxed);
                return hist;
            }
            Ok(_) => {}
        }
    }
}

// ---------------------------------------------------------------------- idle connections

async fn conn_scenario(args: &Args, count: usize) {
    let version = version(args);
    let Some(pid) = args.pid else {
        eprintln!("conn needs --pid");
        return;
    };
    let (_, baseline) = proc_sample(pid).unwrap_or_default();
    let start = Instant::now();
    let mut clients = Vec::with_capacity(count);
    let mut failed = 0usize;
    for i in 0..count {
        match Client::connect(args.addr, version, args.keep_alive, &format!("idle{i}")).await {
            Ok((c, _)) => clients.push(c),
            Err(_) => failed += 1,
        }
    }
    let connect_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, idle) = proc_sample(pid).unwrap_or_default();
    drop(clients);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, closed) = proc_sample(pid).unwrap_or_default();
    let per_conn = (idle.saturating_sub(baseline)) as f64 / count.max(1) as f64;
    println!(
        "scenario=conn count={count} failed={failed} connect_per_s={:.0} rss_baseline_kb={baseline} \
         rss_idle_kb={idle} kb_per_conn={per_conn:.2} rss_after_close_kb={closed} after_close_vs_baseline={:.2}",
        count as f64 / connect_secs,
        closed as f64 / baseline.max(1) as f64,
    );
}
