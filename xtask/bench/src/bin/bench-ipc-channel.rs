//! ipc-channel, the Rust peer of our pipes, measured by `cargo xtask bench` over the same
//! transfers as `bench-ours`.
//!
//! Benchmarks (the partner is this program again, started with
//! `child <mode> <server> [<warm-up items> <items>]`):
//!
//! - `pipe-roundtrip object`: a `(u32, String)` to the partner and back; per round trip.
//! - `pipe-roundtrip bytes`: 64 bytes to the partner and back (`IpcBytesSender`); per round
//!   trip.
//! - `pipe-bandwidth`: 1 MB messages one way (`IpcBytesSender`); per message.
//! - `queue-small`: the peer of our queue's small items: the partner sends `u64` counters on
//!   a typed `IpcSender<u64>`, this process receives them; per item, from the partner's go to
//!   the last item received.
//! - `queue-100kb`: the same with 100 KB items on an `IpcBytesSender`, ipc-channel's path for
//!   raw bytes (no serialization; a typed sender of `ByteBuf` would add a bincode pass).

use std::error::Error;
use std::process::{Child, Command, ExitCode};
use std::time::Instant;

use ipc_channel::ipc::{
    self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcReceiver, IpcSender,
};
use procs_bench::{Args, measure};

type Object = (u32, String);
/// What the partner sends back when it starts: its ends of the five channels (the last one
/// carries the queue benchmarks' small items).
type Hello = (
    IpcSender<Object>,
    IpcReceiver<Object>,
    IpcBytesSender,
    IpcBytesReceiver,
    IpcReceiver<u64>,
);

/// The bytes of one round trip and of one bandwidth message.
const SMALL: usize = 64;
const LARGE: usize = 1 << 20;
/// The bytes of a `queue-100kb` item.
const QUEUE_ITEM: usize = 100_000;
/// The object that tells the partner to stop.
const STOP: u32 = u32::MAX;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("child") {
        return procs_bench::exit(partner(&argv[2..]));
    }
    procs_bench::exit(run())
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::from_env()?;
    match (args.benchmark.as_str(), args.parameter.as_str()) {
        ("pipe-roundtrip", "object") => {
            let (mut child, (to_child, from_child, _, _, _)) = start("object", &[])?;
            let object: Object = (1, "hello".to_string());
            measure("pipe_rt_object/ipc-channel", &args, || {
                to_child.send(object.clone())?;
                from_child.recv().map(drop)
            })?;
            to_child.send((STOP, String::new()))?;
            finish(&mut child)
        }
        ("pipe-roundtrip", "bytes") => {
            let (mut child, (_, _, to_child, from_child, _)) = start("bytes", &[])?;
            let message = vec![7u8; SMALL];
            measure("pipe_rt_bytes/ipc-channel", &args, || {
                to_child.send(&message)?;
                from_child.recv().map(drop).map_err(Box::<dyn Error>::from)
            })?;
            to_child.send(&[])?;
            finish(&mut child)
        }
        ("pipe-bandwidth", _) => {
            let (mut child, (_, _, to_child, from_child, _)) = start("bandwidth", &[])?;
            let message = vec![7u8; LARGE];
            for _ in 0..args.warmup {
                to_child.send(&message)?;
            }
            let start = Instant::now();
            for _ in 0..args.iterations {
                to_child.send(&message)?;
            }
            to_child.send(&[])?;
            // Timed until the partner has taken every message, not only until they are sent.
            from_child.recv()?;
            report("pipe_1mb/ipc-channel", start.elapsed(), args.iterations);
            finish(&mut child)
        }
        ("queue-small", _) => queue_small(&args),
        ("queue-100kb", _) => queue_100kb(&args),
        (benchmark, parameter) => Err(format!(
            "unknown benchmark {benchmark:?} {parameter:?}; known: pipe-roundtrip object, \
             pipe-roundtrip bytes, pipe-bandwidth, queue-small, queue-100kb"
        )
        .into()),
    }
}

/// Starts the partner with `extra` arguments and returns the parent's ends of its channels.
fn start(mode: &str, extra: &[String]) -> Result<(Child, Hello), Box<dyn Error>> {
    let (server, name) = IpcOneShotServer::<Hello>::new()?;
    let child = Command::new(std::env::current_exe()?)
        .args(["child", mode, &name])
        .args(extra)
        .spawn()?;
    let (_, hello) = server.accept()?;
    Ok((child, hello))
}

fn finish(child: &mut Child) -> Result<(), Box<dyn Error>> {
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the partner failed: {status}").into())
    }
}

/// The queue benchmarks' warm-up items and items, as the partner's extra arguments: at least
/// one item goes before timing, as in `bench-ours`, which shows that the partner runs.
fn counts(args: &Args) -> (u32, u32, Vec<String>) {
    let (warm, n) = (args.warmup.max(1), args.iterations);
    (warm, n, vec![warm.to_string(), n.to_string()])
}

/// Prints the `RESULT` line for `n` messages or items that took `elapsed` in all.
fn report(name: &str, elapsed: std::time::Duration, n: u32) {
    println!(
        "RESULT {name} {:.12} {n}",
        elapsed.as_secs_f64() / f64::from(n)
    );
}

fn queue_small(args: &Args) -> Result<(), Box<dyn Error>> {
    let (warm, n, extra) = counts(args);
    let (mut child, (_, _, go, _, items)) = start("queue-small", &extra)?;
    let take = |i: u64| -> Result<(), Box<dyn Error>> {
        if items.recv()? == i {
            Ok(())
        } else {
            Err(format!("item {i} came out of order").into())
        }
    };
    for i in 0..u64::from(warm) {
        take(i)?;
    }
    let start = Instant::now();
    go.send(b"go")?;
    for i in u64::from(warm)..u64::from(warm) + u64::from(n) {
        take(i)?;
    }
    let elapsed = start.elapsed();
    report("queue_small/ipc-channel", elapsed, n);
    finish(&mut child)
}

fn queue_100kb(args: &Args) -> Result<(), Box<dyn Error>> {
    let (warm, n, extra) = counts(args);
    let (mut child, (_, _, go, items, _)) = start("queue-100kb", &extra)?;
    let take = || -> Result<(), Box<dyn Error>> {
        match items.recv()?.len() {
            QUEUE_ITEM => Ok(()),
            len => Err(format!("an item of {len} bytes came, not {QUEUE_ITEM}").into()),
        }
    };
    for _ in 0..warm {
        take()?;
    }
    let start = Instant::now();
    go.send(b"go")?;
    for _ in 0..n {
        take()?;
    }
    let elapsed = start.elapsed();
    report("queue_100kb/ipc-channel", elapsed, n);
    finish(&mut child)
}

/// The partner: echoes objects or bytes, takes the bandwidth messages until told to stop, or
/// sends a queue benchmark's items (`extra` holds their counts).
fn partner(argv: &[String]) -> Result<(), Box<dyn Error>> {
    let [mode, server, extra @ ..] = argv else {
        return Err("the partner needs a mode and a server name".into());
    };
    let (object_tx, object_rx_parent) = ipc::channel::<Object>()?;
    let (object_tx_parent, object_rx) = ipc::channel::<Object>()?;
    let (bytes_tx, bytes_rx_parent) = ipc::bytes_channel()?;
    let (bytes_tx_parent, bytes_rx) = ipc::bytes_channel()?;
    let (items_tx, items_rx_parent) = ipc::channel::<u64>()?;
    let hello = IpcSender::<Hello>::connect(server.to_string())?;
    hello.send((
        object_tx_parent,
        object_rx_parent,
        bytes_tx_parent,
        bytes_rx_parent,
        items_rx_parent,
    ))?;
    let count = |i: usize| -> Result<u64, Box<dyn Error>> {
        let text = extra.get(i).ok_or("the partner needs its item counts")?;
        Ok(text.parse()?)
    };
    match mode.as_str() {
        "object" => loop {
            let object = object_rx.recv()?;
            if object.0 == STOP {
                return Ok(());
            }
            object_tx.send(object)?;
        },
        "bytes" => loop {
            let message = bytes_rx.recv()?;
            if message.is_empty() {
                return Ok(());
            }
            bytes_tx.send(&message)?;
        },
        "queue-small" => {
            let (warm, n) = (count(0)?, count(1)?);
            for i in 0..warm {
                items_tx.send(i)?;
            }
            bytes_rx.recv()?;
            for i in warm..warm + n {
                items_tx.send(i)?;
            }
            Ok(())
        }
        "queue-100kb" => {
            let (warm, n) = (count(0)?, count(1)?);
            let item = vec![7u8; QUEUE_ITEM];
            for _ in 0..warm {
                bytes_tx.send(&item)?;
            }
            bytes_rx.recv()?;
            for _ in 0..n {
                bytes_tx.send(&item)?;
            }
            Ok(())
        }
        _ => {
            while !bytes_rx.recv()?.is_empty() {}
            bytes_tx.send(b"done")?;
            Ok(())
        }
    }
}
