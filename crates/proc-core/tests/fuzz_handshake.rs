//! Hostile bytes in the start handshake, with real processes on both sides.
//!
//! - A hostile parent: this test binary is started as a child (the variable and the channel
//!   descriptor that `procs` itself would give it), and the test plays the parent, sending
//!   nothing, garbage, a header that claims 4 GiB, a request cut short, the real request of
//!   this build with another fingerprint, or with its other fields mutated. The child must
//!   end by itself with exit code 2 (nothing to run), 1 (refused or failed, with a
//!   `BuildMismatch` or a failure sent back) or 0 — never by a signal, never hang.
//! - A hostile child: a shell script stands in for the child and answers the real parent
//!   with garbage, a 4 GiB header, a result that names a handle it never sent, a frame cut
//!   short. `join` must give a typed error, never panic, and never wait past its timeout.
//!
//! The generator is a xorshift with fixed seeds (`procs_testkit::fuzz_seeds`: from 1, or from
//! `PROCS_FUZZ_SEED`, which the soak's fuzz leg sets afresh). Unix only: the hostile parent passes the
//! channel as descriptor 3 (`pre_exec` and `dup2`), and the hostile child is a `/bin/sh`
//! script that writes to that descriptor.
#![cfg(unix)]

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proc_core::{Error, Handle, Process, StartMethod, codec};
use procs_testkit::{PATIENCE, Rng, temp_path};
use serde::Deserialize;

/// The variable that tells a process it is a child, and names its channel (`role:fd`).
const CHILD_ENV: &str = "PROCS_CHILD";

/// The tests write and run scripts: one at a time, so that no other test's fork holds a
/// script open for writing while it is run (`ETXTBSY`).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a child sends back, as `proc-core` encodes it (its private `entry::Outcome`, variant
/// for variant).
#[derive(Debug, Deserialize)]
enum Outcome {
    Returned(Vec<u8>),
    Panicked {
        #[allow(dead_code)]
        message: String,
        #[allow(dead_code)]
        location: Option<String>,
    },
    BuildMismatch,
    Failed(#[allow(dead_code)] String),
}

/// The function whose request the hostile parent replays.
fn count(items: Vec<u8>) -> usize {
    items.len()
}

/// Starts this test binary as a child whose parent is the returned socket.
fn child_of_hostile_parent() -> (std::process::Child, UnixStream) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let fd = theirs.as_raw_fd();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(CHILD_ENV, "child:3")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs between fork and exec, and calls only dup2 and fcntl, which
    // are async-signal-safe; it touches no memory but the descriptor number it copied.
    unsafe {
        command.pre_exec(move || {
            // dup2 onto another number clears close-on-exec on the copy; onto itself, fcntl.
            let done = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if done == -1 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
    }
    let child = command.spawn().unwrap();
    drop(theirs);
    (child, ours)
}

/// Waits for `child` to end by itself, at most [`PATIENCE`].
///
/// # Panics
///
/// When it still runs then (it is killed first): a hang.
fn exit_of(child: &mut std::process::Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the child still waits after {PATIENCE:?} (a hang)");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

/// The length of the postcard varint at the start of `bytes`.
fn varint_len(bytes: &[u8]) -> usize {
    bytes.iter().position(|b| b & 0x80 == 0).unwrap() + 1
}

/// Writes an executable `/bin/sh` script.
fn script(name: &str, body: &str) -> PathBuf {
    let path = temp_path(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

/// The request frame that a parent of this build sends to run `count(vec![1, 2, 3])`: a
/// stand-in child (a script) writes what it reads on its channel to a file.
fn real_request() -> Vec<u8> {
    let out = temp_path("captured-request");
    let stand_in = script(
        "capture.sh",
        &format!(
            "exec dd of={} bs=1048576 count=1 <&3 2>/dev/null",
            quoted(&out)
        ),
    );
    let mut p = Process::builder()
        .start_method(StartMethod::Spawn)
        .executable(&stand_in)
        .spawn(count, vec![1u8, 2, 3])
        .unwrap();
    // The stand-in sends no outcome: the join fails, after it has ended.
    assert!(p.join_timeout(PATIENCE).is_err());
    let bytes = std::fs::read(&out).unwrap();
    let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    assert_eq!(
        bytes.len(),
        4 + len,
        "the whole request arrived in one read"
    );
    // The request starts with the fingerprint: the layout this test relies on.
    let request = &bytes[4..];
    let fingerprint = codec::decode::<u64>(&request[..varint_len(request)]).unwrap();
    assert_eq!(fingerprint, proc_core::internal::fingerprint());
    bytes
}

/// The child's verdict on `bytes` sent as its first frame(s), and what it sent back.
fn child_answer(bytes: &[u8], close: bool, what: &str) -> (ExitStatus, Option<Outcome>) {
    let (mut child, parent) = child_of_hostile_parent();
    // A child that already gave up makes the write fail: that is its answer too.
    let _ = (&parent).write_all(bytes);
    if close {
        parent.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let status = exit_of(&mut child, what);
    let outcome = codec::read_frame(&mut &parent, codec::DEFAULT_MAX_FRAME)
        .ok()
        .map(|reply| codec::decode::<Outcome>(&reply).unwrap());
    (status, outcome)
}

/// A hostile parent: nothing, garbage, 4 GiB, a request cut short or mutated. The child ends
/// by itself with 2 (nothing to run) or 1 with a reason sent back, and the real request still
/// runs.
#[test]
fn a_child_ends_cleanly_whatever_its_parent_sends() {
    let _turn = serial();
    let request = real_request();
    // The real request runs: the harness can tell a working handshake from a broken one.
    let (status, outcome) = child_answer(&request, true, "real request");
    assert_eq!(status.code(), Some(0));
    match outcome {
        Some(Outcome::Returned(bytes)) => assert_eq!(codec::decode::<usize>(&bytes).unwrap(), 3),
        other => panic!("the real request gave {other:?}"),
    }

    // Nothing at all, then the end.
    let (status, outcome) = child_answer(&[], true, "nothing");
    assert_eq!((status.code(), outcome.is_none()), (Some(2), true));

    // A header that claims 4 GiB: refused at once, while the parent keeps its end open.
    let (status, _) = child_answer(&u32::MAX.to_le_bytes(), false, "4 GiB header");
    assert_eq!(status.code(), Some(2));

    // The request cut short, and the parent gone.
    let (status, _) = child_answer(&request[..request.len() / 2], true, "half a request");
    assert_eq!(status.code(), Some(2));

    // Another build's fingerprint: refused, and said so.
    let body = &request[4..];
    let fp_len = varint_len(body);
    let entry_end = fp_len + varint_len(&body[fp_len..]);
    for bit in [0, 7, 31, 63] {
        let other = proc_core::internal::fingerprint() ^ (1 << bit);
        let mut forged = codec::encode(&other).unwrap();
        forged.extend_from_slice(&body[fp_len..]);
        let (status, outcome) = child_answer(&frame(&forged), true, "another fingerprint");
        assert_eq!(status.code(), Some(1), "bit {bit}");
        assert!(
            matches!(outcome, Some(Outcome::BuildMismatch)),
            "bit {bit}: {outcome:?}"
        );
    }

    for seed in procs_testkit::fuzz_seeds(40) {
        let mut rng = Rng::new(seed);
        let what = format!("seed {seed}");
        let sent = match rng.below(3) {
            // Garbage, framed or not.
            0 => rng.bytes(64),
            1 => frame(&rng.bytes(64)),
            // The real request with the fields after the function's offset mutated: what the
            // child decodes and checks before it trusts anything. (With the fingerprint
            // intact the offset itself is trusted, as it comes from the same build.)
            _ => {
                let mut forged = body.to_vec();
                rng.mutate(&mut forged[entry_end..]);
                if rng.one_in(4) {
                    forged.truncate(
                        entry_end + rng.below((forged.len() - entry_end) as u64) as usize,
                    );
                }
                frame(&forged)
            }
        };
        let (status, outcome) = child_answer(&sent, true, &what);
        assert!(status.signal().is_none(), "{what}: killed by {status}");
        match (status.code(), outcome) {
            (Some(2), None) => {}
            (Some(1), Some(Outcome::BuildMismatch | Outcome::Failed(_))) => {}
            (Some(1), Some(Outcome::Panicked { .. })) => {}
            (Some(0), Some(Outcome::Returned(_))) => {}
            (code, outcome) => panic!("{what}: exit {code:?} with {outcome:?}"),
        }
    }
}

/// What `join` on a stand-in child gives, when the stand-in writes `bytes` to its channel
/// and then runs `then` (a shell command) before it exits.
fn join_stand_in<R>(name: &str, bytes: &[u8], then: &str) -> (Process<R>, proc_core::Result<R>)
where
    R: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let data = temp_path(&format!("{name}.bin"));
    std::fs::write(&data, bytes).unwrap();
    let stand_in = script(
        &format!("{name}.sh"),
        &format!("cat {} >&3\n{then}", quoted(&data)),
    );
    let mut p = Process::builder()
        .start_method(StartMethod::Spawn)
        .executable(&stand_in)
        .process(unreachable_in_a_stand_in::<R>, ());
    p.start().unwrap();
    let result = p.join_timeout(PATIENCE);
    (p, result)
}

/// Never runs: the stand-in child answers in its place.
fn unreachable_in_a_stand_in<R>(_: ()) -> R {
    unreachable!("a stand-in child runs no Rust code")
}

/// A hostile child: the parent's `join` gives a typed error for garbage, 4 GiB, a handle
/// that never came, a frame cut short — and returns at its timeout while the child sits on
/// half a frame.
#[test]
fn a_parent_gives_typed_errors_whatever_its_child_sends() {
    let _turn = serial();
    let (_, result) = join_stand_in::<(u32, String)>("huge", &u32::MAX.to_le_bytes(), "exit 0");
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("exceeds the limit")),
        "{err:?}"
    );

    // Returned(handle 5), with no descriptor sent.
    let (_, result) = join_stand_in::<Handle>("no-handle", &frame(&[0, 1, 5]), "exit 0");
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::Decode(m) if m.contains("handle 5 did not arrive")),
        "{err:?}"
    );

    // A build mismatch claimed; a panic whose message is not UTF-8.
    let (_, result) = join_stand_in::<u8>("mismatch", &frame(&[2]), "exit 1");
    assert!(matches!(result, Err(Error::BuildMismatch)), "{result:?}");
    let (_, result) = join_stand_in::<u8>("panic", &frame(&[1, 2, 0xff, 0xfe, 0]), "exit 1");
    assert!(matches!(result, Err(Error::Decode(_))), "{result:?}");

    // Half a frame, and the child dies: it died.
    let mut half = frame(&[0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    half.truncate(8);
    let (p, result) = join_stand_in::<Vec<u8>>("half", &half, "exit 3");
    assert!(matches!(result, Err(Error::Died { .. })), "{result:?}");
    assert_eq!(p.exitcode(), Some(3));

    for seed in procs_testkit::fuzz_seeds(30) {
        let mut rng = Rng::new(seed);
        let bytes = if rng.one_in(2) {
            frame(&rng.bytes(48))
        } else {
            rng.bytes(48)
        };
        let code = rng.below(3);
        let (p, result) = join_stand_in::<(u32, String)>(
            &format!("garbage-{seed}"),
            &bytes,
            &format!("exit {code}"),
        );
        match result {
            Ok(_) => {}
            Err(Error::Decode(_) | Error::Protocol(_) | Error::Died { .. }) => {}
            Err(Error::Panicked { .. } | Error::BuildMismatch) => {}
            Err(other) => panic!("seed {seed}: {other:?}"),
        }
        assert_eq!(p.exitcode(), Some(code as i32), "seed {seed}");
    }
}

/// A child that wrote half of its answer and stalls, alive: `join_timeout` should return at
/// its timeout (the child still alive then), and once the child is killed `join` say it died.
///
/// Found by this file: the parent read a child's outcome with one blocking `recv_frame` once
/// the channel was readable, so a child that sends a header and part of its frame and then
/// stops (a hostile child, or one stopped by SIGSTOP in the middle of a large result) held
/// `join_timeout` past its timeout for as long as it lived. The read now stops at the wait's
/// deadline and keeps what arrived (the next test: nothing of a slow result is lost).
#[test]
fn join_timeout_returns_while_a_child_sits_on_half_a_frame() {
    let _turn = serial();
    let data = temp_path("stall.bin");
    let mut half = frame(&[0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    half.truncate(8);
    std::fs::write(&data, &half).unwrap();
    let stand_in = script(
        "stall.sh",
        &format!("cat {} >&3\nexec sleep 60", quoted(&data)),
    );
    let mut p = Process::builder()
        .start_method(StartMethod::Spawn)
        .executable(&stand_in)
        .process(unreachable_in_a_stand_in::<Vec<u8>>, ());
    p.start().unwrap();
    let pid = p.pid().unwrap();
    let timed_out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        procs_testkit::within("join_timeout on a stalled child", PATIENCE, move || {
            let err = p.join_timeout(Duration::from_millis(200)).unwrap_err();
            (p, err)
        })
    }));
    let (mut p, err) = timed_out.unwrap_or_else(|panic| {
        // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped child's.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        std::panic::resume_unwind(panic)
    });
    assert!(err.is_timeout(), "{err:?}");
    assert!(p.is_alive());
    p.kill().unwrap();
    let result = p.join_timeout(PATIENCE);
    assert!(matches!(result, Err(Error::Died { .. })), "{result:?}");
}

/// A result that is slow, not stalled: half of the frame, a pause longer than the first
/// `join_timeout`, then the rest. The first join times out; the next gets the whole value.
#[test]
fn a_result_that_arrives_in_parts_around_a_timed_out_join_is_whole() {
    let _turn = serial();
    // `Outcome::Returned` (variant 0) of the encoded result: `vec![1..=10]` is its length
    // then its bytes.
    let whole = frame(&[0, 11, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let first = temp_path("first.bin");
    let rest = temp_path("rest.bin");
    std::fs::write(&first, &whole[..8]).unwrap();
    std::fs::write(&rest, &whole[8..]).unwrap();
    let stand_in = script(
        "slow.sh",
        &format!(
            "cat {} >&3\nsleep 1\ncat {} >&3\nexit 0",
            quoted(&first),
            quoted(&rest)
        ),
    );
    let mut p = Process::builder()
        .start_method(StartMethod::Spawn)
        .executable(&stand_in)
        .process(unreachable_in_a_stand_in::<Vec<u8>>, ());
    p.start().unwrap();
    let err = p.join_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(
        p.join_timeout(PATIENCE).unwrap(),
        (1..=10).collect::<Vec<u8>>()
    );
}
