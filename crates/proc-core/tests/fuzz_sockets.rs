//! Hostile bytes and hostile descriptors on a real Unix socket pair: a seeded fuzz of what a
//! `Link` reads from a peer that writes garbage, headers that claim 4 GiB, frames cut short,
//! and `SCM_RIGHTS` messages that do not match their frame — more descriptors than a frame
//! may carry, frames that name more handles than arrived, handle indexes out of range or used
//! twice, descriptors attached to the middle of a frame.
//!
//! Each must give a value or a typed error, and every descriptor that arrived and that no
//! value took must be closed: the count of open descriptors returns to where it started.
//!
//! Unix only: the peer is a raw `UnixStream` that sends with `sendmsg`, which is how a
//! hostile process would pass descriptors; Windows passes handles by duplication instead.
#![cfg(unix)]

use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Duration;

use proc_core::{Error, Handle, Link, codec};
use procs_testkit::{Rng, open_fds, within};

/// How long one fuzz run may take before it counts as hung: a guard, not a timing assertion.
const HANG: Duration = Duration::from_secs(120);

/// The most handles a frame may carry (`MAX_HANDLES` of the Unix platform layer).
const MAX_HANDLES: usize = 64;

/// The tests count this process's descriptors, so they take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A link over one end of a fresh socket pair, and the raw other end for the hostile peer.
fn hostile_pair() -> (Link, UnixStream) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    (Link::from_stream(Handle::from(OwnedFd::from(ours))), theirs)
}

/// Sends `data` (at least one byte when `fds` is not empty) with copies of `fds` attached to
/// its first bytes, as a peer process would with `sendmsg`.
fn send_raw(sock: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if fds.is_empty() {
        return (&*sock).write_all(data);
    }
    assert!(!data.is_empty());
    let payload = size_of_val(fds);
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty message; every pointer set in it points
    // into `iov`, `control` or `fds`, which outlive the call, and the control buffer has room
    // for exactly one SCM_RIGHTS message of `fds.len()` descriptors.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr(),
            libc::CMSG_DATA(cmsg).cast::<RawFd>(),
            fds.len(),
        );
        libc::sendmsg(sock.as_raw_fd(), &msg, 0)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    (&*sock).write_all(&data[sent as usize..])
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

/// Frames whose value names handles (a `Vec<Handle>` is a list of indexes on the wire) with a
/// random number of descriptors attached: the value decodes exactly when every index is
/// distinct and names a descriptor that came; descriptors the value does not take close.
#[test]
fn handle_indexes_that_do_not_match_the_descriptors_are_errors_and_leak_nothing() {
    let _turn = serial();
    within("handle message fuzz", HANG, || {
        let (_reader, writer) = std::io::pipe().unwrap();
        let source = writer.as_raw_fd();
        let baseline = open_fds();
        for seed in procs_testkit::fuzz_seeds(1500) {
            let mut rng = Rng::new(seed);
            let (link, peer) = hostile_pair();
            let attached = match rng.below(8) {
                0 => MAX_HANDLES + 1 + rng.below(36) as usize,
                1 => 0,
                _ => 1 + rng.below(8) as usize,
            };
            let fds = vec![source; attached];
            let indexes: Vec<u32> = (0..rng.below(6))
                .map(|_| match rng.below(4) {
                    0 => rng.next_u64() as u32,
                    _ => rng.below(attached as u64 + 2) as u32,
                })
                .collect();
            let payload = codec::encode(&indexes).unwrap();
            let bytes = frame(&payload);
            let split = rng.one_in(3);
            if split && attached > 0 {
                // The header alone, then the value with the descriptors attached to it.
                send_raw(&peer, &bytes[..4], &[]).unwrap();
                send_raw(&peer, &bytes[4..], &fds).unwrap();
            } else if attached > 0 {
                send_raw(&peer, &bytes, &fds).unwrap();
            } else {
                send_raw(&peer, &bytes, &[]).unwrap();
            }
            let mut distinct = indexes.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let decodes = attached <= MAX_HANDLES
                && distinct.len() == indexes.len()
                && indexes.iter().all(|&i| (i as usize) < attached);
            match link.recv::<Vec<Handle>>() {
                Ok(handles) => {
                    assert!(decodes, "seed {seed}: {indexes:?} of {attached} decoded");
                    assert_eq!(handles.len(), indexes.len(), "seed {seed}");
                    // Each is a working descriptor of the pipe's write end.
                    for handle in handles {
                        let mut pipe = std::io::PipeWriter::from(handle);
                        pipe.write_all(b"x").unwrap();
                    }
                }
                Err(Error::Decode(msg)) => {
                    assert!(!decodes, "seed {seed}: {indexes:?} of {attached}: {msg}");
                    assert!(msg.contains("handle"), "seed {seed}: {msg}");
                }
                Err(Error::Io(e)) => {
                    assert!(attached > MAX_HANDLES, "seed {seed}: {e}");
                    assert!(e.to_string().contains("handles"), "seed {seed}: {e}");
                }
                Err(other) => panic!("seed {seed}: {other:?}"),
            }
            drop((link, peer));
            assert_eq!(open_fds(), baseline, "seed {seed}: descriptors leaked");
        }
    });
}

/// A peer that writes random bytes, with descriptors now and then, and closes: every read is
/// a frame or a typed error until `Closed`, and nothing that arrived stays open.
#[test]
fn garbage_with_descriptors_on_a_socket_reads_as_errors_and_leaks_nothing() {
    let _turn = serial();
    within("socket garbage fuzz", HANG, || {
        let (_reader, writer) = std::io::pipe().unwrap();
        let source = writer.as_raw_fd();
        let baseline = open_fds();
        for seed in procs_testkit::fuzz_seeds(300) {
            let mut rng = Rng::new(seed);
            let (link, peer) = hostile_pair();
            let mut written = 0;
            for _ in 0..1 + rng.below(5) {
                let mut chunk = if rng.one_in(2) {
                    frame(&rng.bytes(40))
                } else {
                    rng.bytes(40)
                };
                if rng.one_in(4) {
                    rng.mutate(&mut chunk);
                }
                if chunk.is_empty() {
                    continue;
                }
                let fds = vec![
                    source;
                    if rng.one_in(3) {
                        rng.below(4) as usize
                    } else {
                        0
                    }
                ];
                written += chunk.len();
                send_raw(&peer, &chunk, &fds).unwrap();
            }
            drop(peer);
            let mut reads = 0;
            loop {
                let got = if rng.one_in(2) {
                    link.recv_bytes().map(drop)
                } else {
                    link.recv_incoming()
                        .and_then(|frame| frame.decode::<(u8, Vec<Handle>)>(0).map(drop))
                };
                match got {
                    Ok(()) | Err(Error::Decode(_) | Error::Protocol(_)) => {}
                    Err(Error::Closed) => break,
                    Err(other) => panic!("seed {seed}: {other:?}"),
                }
                reads += 1;
                assert!(reads <= written / 4 + 1, "seed {seed}: reads without end");
            }
            drop(link);
            assert_eq!(open_fds(), baseline, "seed {seed}: descriptors leaked");
        }
    });
}

/// Headers that claim 4 GiB or more than the limit fail at once, while the peer keeps its end
/// open and sends nothing more; a gibibyte claimed and not sent is an error when the peer
/// closes, and costs memory for what arrived only.
#[test]
fn oversized_headers_on_a_socket_fail_without_waiting_or_allocating() {
    let _turn = serial();
    within("oversized headers on a socket", HANG, || {
        let before = proc_core::internal::resident_memory();
        for claim in [u32::MAX, (codec::DEFAULT_MAX_FRAME + 1) as u32] {
            let (link, peer) = hostile_pair();
            send_raw(&peer, &claim.to_le_bytes(), &[]).unwrap();
            let err = link.recv_bytes().unwrap_err();
            assert!(
                matches!(&err, Error::Protocol(m) if m.contains("exceeds the limit")),
                "{err:?}"
            );
            drop(peer);
        }
        for _ in 0..20 {
            let (link, peer) = hostile_pair();
            let mut bytes = ((codec::DEFAULT_MAX_FRAME - 1) as u32)
                .to_le_bytes()
                .to_vec();
            bytes.extend_from_slice(&[7; 100]);
            send_raw(&peer, &bytes, &[]).unwrap();
            drop(peer);
            let err = link.recv_bytes().unwrap_err();
            assert!(
                matches!(&err, Error::Protocol(m) if m.contains("100 of")),
                "{err:?}"
            );
        }
        if let (Some(before), Some(after)) = (before, proc_core::internal::resident_memory()) {
            assert!(
                after.saturating_sub(before) < 256 << 20,
                "resident memory grew from {before} to {after} bytes"
            );
        }
    });
}

/// Regression (found by the fuzz above): a header over the limit, or one cut short by the end
/// of the stream, fails once; the read after it moves on (here: to the end of the stream)
/// instead of failing the same way forever without reading.
#[test]
fn a_refused_or_truncated_header_fails_once_and_the_stream_moves_on() {
    let _turn = serial();
    within("refused headers", HANG, || {
        let (link, peer) = hostile_pair();
        send_raw(&peer, &u32::MAX.to_le_bytes(), &[]).unwrap();
        send_raw(&peer, &frame(b"after"), &[]).unwrap();
        assert!(matches!(link.recv_bytes(), Err(Error::Protocol(_))));
        assert_eq!(link.recv_bytes().unwrap(), b"after");
        send_raw(&peer, &[1, 0], &[]).unwrap();
        drop(peer);
        assert!(matches!(link.recv_bytes(), Err(Error::Protocol(m)) if m.contains("header")));
        assert!(matches!(link.recv_bytes(), Err(Error::Closed)));
    });
}
