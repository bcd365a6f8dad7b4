//! ipc-channel, the Rust peer of our pipes, measured by `cargo xtask bench` over the same
//! transfers as `bench-ours`.
//!
//! Benchmarks (the partner is this program again, started with `child <mode> <server>`):
//!
//! - `pipe-roundtrip object`: a `(u32, String)` to the partner and back; per round trip.
//! - `pipe-roundtrip bytes`: 64 bytes to the partner and back (`IpcBytesSender`); per round
//!   trip.
//! - `pipe-bandwidth`: 1 MB messages one way (`IpcBytesSender`); per message.

use std::error::Error;
use std::process::{Child, Command, ExitCode};
use std::time::Instant;

use ipc_channel::ipc::{
    self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcReceiver, IpcSender,
};
use procs_bench::{Args, measure};

type Object = (u32, String);
/// What the partner sends back when it starts: its ends of the four channels.
type Hello = (
    IpcSender<Object>,
    IpcReceiver<Object>,
    IpcBytesSender,
    IpcBytesReceiver,
);

/// The bytes of one round trip and of one bandwidth message.
const SMALL: usize = 64;
const LARGE: usize = 1 << 20;
/// The object that tells the partner to stop.
const STOP: u32 = u32::MAX;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("child") {
        return procs_bench::exit(partner(&argv[2], &argv[3]));
    }
    procs_bench::exit(run())
}

fn run() -> Result<(), Box<dyn Error>> {
    let args = Args::from_env()?;
    match (args.benchmark.as_str(), args.parameter.as_str()) {
        ("pipe-roundtrip", "object") => {
            let (mut child, (to_child, from_child, _, _)) = start("object")?;
            let object: Object = (1, "hello".to_string());
            measure("pipe_rt_object/ipc-channel", &args, || {
                to_child.send(object.clone())?;
                from_child.recv().map(drop)
            })?;
            to_child.send((STOP, String::new()))?;
            finish(&mut child)
        }
        ("pipe-roundtrip", "bytes") => {
            let (mut child, (_, _, to_child, from_child)) = start("bytes")?;
            let message = vec![7u8; SMALL];
            measure("pipe_rt_bytes/ipc-channel", &args, || {
                to_child.send(&message)?;
                from_child.recv().map(drop).map_err(Box::<dyn Error>::from)
            })?;
            to_child.send(&[])?;
            finish(&mut child)
        }
        ("pipe-bandwidth", _) => {
            let (mut child, (_, _, to_child, from_child)) = start("bandwidth")?;
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
            let elapsed = start.elapsed();
            println!(
                "RESULT pipe_1mb/ipc-channel {:.12} {}",
                elapsed.as_secs_f64() / f64::from(args.iterations),
                args.iterations
            );
            finish(&mut child)
        }
        (benchmark, parameter) => Err(format!(
            "unknown benchmark {benchmark:?} {parameter:?}; known: pipe-roundtrip object, \
             pipe-roundtrip bytes, pipe-bandwidth"
        )
        .into()),
    }
}

/// Starts the partner and returns the parent's ends of its channels.
fn start(mode: &str) -> Result<(Child, Hello), Box<dyn Error>> {
    let (server, name) = IpcOneShotServer::<Hello>::new()?;
    let child = Command::new(std::env::current_exe()?)
        .args(["child", mode, &name])
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

/// The partner: echoes objects or bytes, or takes the bandwidth messages, until told to stop.
fn partner(mode: &str, server: &str) -> Result<(), Box<dyn Error>> {
    let (object_tx, object_rx_parent) = ipc::channel::<Object>()?;
    let (object_tx_parent, object_rx) = ipc::channel::<Object>()?;
    let (bytes_tx, bytes_rx_parent) = ipc::bytes_channel()?;
    let (bytes_tx_parent, bytes_rx) = ipc::bytes_channel()?;
    let hello = IpcSender::<Hello>::connect(server.to_string())?;
    hello.send((
        object_tx_parent,
        object_rx_parent,
        bytes_tx_parent,
        bytes_rx_parent,
    ))?;
    match mode {
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
        _ => {
            while !bytes_rx.recv()?.is_empty() {}
            bytes_tx.send(b"done")?;
            Ok(())
        }
    }
}
