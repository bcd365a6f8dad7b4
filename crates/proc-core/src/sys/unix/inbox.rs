//! Frames read ahead of the one asked for, so that one `recvmsg` usually brings a whole frame
//! (header and payload, often the next frames too) instead of one call for the header and
//! one for the payload.
//!
//! The subtle part is the descriptors: they arrive with bytes, not with frames, so a read
//! that brings the tail of one frame and the head of the next must hand them to the right
//! one. A sender attaches a frame's descriptors to its first bytes (`send_frame` sends the
//! header and payload in the `sendmsg` that carries them), and Linux ends a read right after
//! the message that carries descriptors, never gluing a later message to it. So descriptors
//! belong to the *last* frame that starts within the bytes of the read that brought them.
//! Other systems do not promise that boundary, so there the inbox reads exactly what the
//! current frame still needs (as a plain two-read receiver does), and every read's
//! descriptors belong to the frame under way.

use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;

/// How many bytes one read may bring: enough for a batch of small frames.
const READ_AHEAD: usize = 16 * 1024;

/// The buffer's size until a read fills it: a channel that carries a few small frames (a
/// child's result, most of all) never writes more. A parent that forked writes each page of
/// its heap as a copy while the child lives, so the four pages of a whole read-ahead buffer
/// cost a join four page copies.
const FIRST_READ_AHEAD: usize = 512;

/// A zeroed buffer of `len` bytes from `malloc` and `memset`, not `calloc`: glibc's `calloc`
/// bypasses the thread's cache of freed chunks and takes one from the arena, writing the
/// arena's state in libc's data, a page that a parent that has just forked must copy (one page
/// fault per join). The length goes through `black_box` because LLVM turns an allocation of
/// a known length followed by zeroing into the zeroed allocation, which is `calloc`.
fn malloc_zeroed(len: usize) -> Box<[u8]> {
    let mut buf = Vec::with_capacity(std::hint::black_box(len));
    buf.resize(len, 0);
    buf.into_boxed_slice()
}

/// Whether reads may go past the frame under way (see the module docs).
const READS_AHEAD: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// The bytes and descriptors read from a channel but not yet taken as frames.
#[derive(Default)]
pub(super) struct Inbox {
    /// Allocated at the first read; `buf[start..end]` holds the bytes not taken yet.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The stream offset of `buf[start]`: between frames, where the next frame begins.
    offset: u64,
    /// Descriptors that arrived before their frame was taken, each with the stream offset of
    /// that frame, in arrival order.
    fds: Vec<(u64, OwnedFd)>,
    /// A frame whose reading stopped in its payload (a read that timed out), to go on with.
    partial: Option<Partial>,
}

/// A frame read in part: its stream offset, length, and what arrived of it.
struct Partial {
    at: u64,
    len: usize,
    payload: Vec<u8>,
    filled: usize,
    fds: Vec<OwnedFd>,
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("ahead", &self.ahead())
            .field("descriptors", &self.fds.len())
            .field("partial", &self.partial.as_ref().map(|p| (p.filled, p.len)))
            .finish()
    }
}

/// One read from the channel: up to `buf.len()` bytes, written at the start of `buf`, and
/// the descriptors that came with them; 0 bytes at the end of the stream. It may be given
/// memory never written (a frame's room, so that it is not zeroed first, which cost a bulk
/// call a `memset` of the frame), and writes only bytes into it, never uninitialized ones.
pub(super) type ReadFn<'a> =
    dyn FnMut(&mut [MaybeUninit<u8>]) -> io::Result<(usize, Vec<OwnedFd>)> + 'a;

/// `bytes` as memory that a [`ReadFn`] may write.
pub(super) fn as_room(bytes: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and a `ReadFn` writes only bytes
    // into the room it is given, so that `bytes` stays initialized.
    unsafe { &mut *(bytes as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

/// What [`Inbox::frame`] found wrong with the stream.
#[derive(Debug)]
pub(super) enum FrameError {
    /// The stream ended before a frame began.
    Closed,
    /// The stream ended inside a frame, or a header claimed more than the limit.
    Protocol(String),
    Io(io::Error),
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

impl Inbox {
    /// Bytes read ahead and not taken: what a reader can have without waiting for more.
    pub(super) fn buffered(&self) -> usize {
        self.ahead()
    }

    /// Bytes read and not taken, a frame read in part included.
    pub(super) fn holds(&self) -> usize {
        self.ahead() + self.partial.as_ref().map_or(0, |p| 4 + p.filled)
    }

    fn ahead(&self) -> usize {
        self.end - self.start
    }

    /// Takes up to `out.len()` buffered bytes, for plain byte reads of the channel.
    pub(super) fn take_bytes(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.ahead());
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.consume(n);
        n
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// One read into the free space, at most `want` bytes; returns how many came.
    fn fill(&mut self, want: usize, read: &mut ReadFn<'_>) -> io::Result<usize> {
        if self.buf.is_empty() {
            self.buf = malloc_zeroed(FIRST_READ_AHEAD);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = (self.buf.len() - self.end).min(want);
        let (n, fds) = read(as_room(&mut self.buf[self.end..self.end + room]))?;
        let first = self.offset + self.ahead() as u64;
        self.end += n;
        if n == room && room < want && self.buf.len() < READ_AHEAD {
            // The read filled the small buffer: more is coming, read ahead in full.
            let mut bigger = vec![0; READ_AHEAD].into_boxed_slice();
            bigger[..self.end].copy_from_slice(&self.buf[..self.end]);
            self.buf = bigger;
        }
        if !fds.is_empty() {
            let owner = self.owner(first, first + n as u64);
            self.fds.extend(fds.into_iter().map(|fd| (owner, fd)));
        }
        Ok(n)
    }

    /// The frame that descriptors read with the stream bytes `first..last` belong to: the
    /// last frame starting in that range (see the module docs), else the frame under way.
    fn owner(&self, first: u64, last: u64) -> u64 {
        let mut owner = self.offset;
        let mut at = self.offset;
        while at < last {
            if at >= first {
                owner = at;
            }
            let index = self.start + (at - self.offset) as usize;
            let Some(header) = self
                .buf
                .get(index..index + 4)
                .filter(|_| index + 4 <= self.end)
            else {
                break;
            };
            let len = u32::from_le_bytes(header.try_into().expect("four bytes"));
            at += 4 + u64::from(len);
        }
        owner
    }

    /// Receives one frame (a 4-byte little-endian length, then that many bytes) of at most
    /// `max` bytes, reading with `read` as needed, and the descriptors sent with it.
    ///
    /// A read that fails with `WouldBlock`, `TimedOut` or `Interrupted` (a deadline, a read
    /// time-out) leaves what arrived here: the next call goes on with the same frame.
    pub(super) fn frame(
        &mut self,
        max: usize,
        read: &mut ReadFn<'_>,
    ) -> Result<(Vec<u8>, Vec<OwnedFd>), FrameError> {
        let mut partial = match self.partial.take() {
            Some(partial) => partial,
            None => {
                let at = self.offset;
                let len = self.header(max, read)?;
                if self.ahead() >= len {
                    let payload = self.buf[self.start..self.start + len].to_vec();
                    self.consume(len);
                    return Ok((payload, self.fds_of(at, Vec::new())));
                }
                // The rest of the frame is read straight into it, never past its end, so
                // every descriptor that comes now is this frame's.
                let mut payload = Vec::with_capacity(len.min(FIRST_READ));
                payload.extend_from_slice(&self.buf[self.start..self.end]);
                let filled = payload.len();
                self.consume(filled);
                Partial {
                    at,
                    len,
                    payload,
                    filled,
                    fds: Vec::new(),
                }
            }
        };
        while partial.filled < partial.len {
            if partial.filled == partial.payload.capacity() {
                let grown = partial.len.min((2 * partial.filled).max(FIRST_READ));
                partial.payload.reserve_exact(grown - partial.filled);
            }
            // The room is read into as it is, never zeroed (see `ReadFn`).
            let left = partial.len - partial.filled;
            let spare = partial.payload.spare_capacity_mut();
            let room = spare.len().min(left);
            let (n, mut got) = match read(&mut spare[..room]) {
                Ok(read) => read,
                Err(e) => {
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) {
                        self.partial = Some(partial);
                    }
                    return Err(e.into());
                }
            };
            partial.fds.append(&mut got);
            if n == 0 {
                return Err(FrameError::Protocol(format!(
                    "truncated frame: {} of {} bytes arrived",
                    partial.filled, partial.len
                )));
            }
            let n = n.min(room);
            // SAFETY: the read wrote its `n` bytes at the start of the room, which begins at
            // `filled`, the payload's length, and lies within its capacity.
            unsafe { partial.payload.set_len(partial.filled + n) };
            partial.filled += n;
            self.offset += n as u64;
        }
        let Partial {
            at, payload, fds, ..
        } = partial;
        Ok((payload, self.fds_of(at, fds)))
    }

    /// Reads a frame's header and takes it; returns the length it gives.
    fn header(&mut self, max: usize, read: &mut ReadFn<'_>) -> Result<usize, FrameError> {
        while self.ahead() < 4 {
            let want = if READS_AHEAD {
                READ_AHEAD
            } else {
                4 - self.ahead()
            };
            match self.fill(want, read)? {
                0 if self.ahead() == 0 => return Err(FrameError::Closed),
                0 => {
                    // The stream ended inside a header: its bytes are dropped, so that the
                    // next read says `Closed` instead of this error again, forever.
                    self.consume(self.ahead());
                    return Err(FrameError::Protocol("truncated frame header".into()));
                }
                _ => {}
            }
        }
        let header = &self.buf[self.start..self.start + 4];
        let len = u32::from_le_bytes(header.try_into().expect("four bytes")) as usize;
        // The header is taken even when refused, as `codec::read_frame` takes it: left here,
        // it would fail every later read the same way without a byte read, and a reader that
        // reads on to the end of the stream would spin forever.
        self.consume(4);
        if len > max {
            return Err(FrameError::Protocol(format!(
                "frame of {len} bytes exceeds the limit of {max} bytes"
            )));
        }
        Ok(len)
    }

    /// The descriptors of the frame at stream offset `at`: those that came before its rest,
    /// in the order they came, then `rest`. Any of a frame before it (none, with a sender
    /// that keeps the rule) close here.
    fn fds_of(&mut self, at: u64, mut rest: Vec<OwnedFd>) -> Vec<OwnedFd> {
        let mut own = Vec::new();
        for (owner, fd) in std::mem::take(&mut self.fds) {
            match owner.cmp(&at) {
                std::cmp::Ordering::Equal => own.push(fd),
                std::cmp::Ordering::Greater => self.fds.push((owner, fd)),
                std::cmp::Ordering::Less => drop(fd),
            }
        }
        own.append(&mut rest);
        own
    }
}

/// How much of a frame's payload is allocated before its bytes arrive: the whole of any
/// frame up to this size (one allocation, no copy as it grows), never more for a header
/// that claims more than it sends.
const FIRST_READ: usize = 4 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Reads as a test scripts them: bytes and the descriptors that come with them.
    type Script = VecDeque<(Vec<u8>, Vec<OwnedFd>)>;

    /// A stream given as reads: each one some bytes and the number of descriptors with them
    /// (real ones, so that their identity can be checked).
    fn reads(script: &[(&[u8], usize)]) -> (Script, Vec<i32>) {
        use std::os::fd::AsRawFd;
        let mut ids = Vec::new();
        let script = script
            .iter()
            .map(|(bytes, fds)| {
                let fds: Vec<OwnedFd> = (0..*fds)
                    .map(|_| OwnedFd::from(std::fs::File::open("/dev/null").unwrap()))
                    .collect();
                ids.extend(fds.iter().map(|fd| fd.as_raw_fd()));
                (bytes.to_vec(), fds)
            })
            .collect();
        (script, ids)
    }

    fn frame_bytes(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    /// Writes `bytes` at the start of `room`, as a read does.
    fn write(room: &mut [MaybeUninit<u8>], bytes: &[u8]) {
        for (slot, &byte) in room.iter_mut().zip(bytes) {
            slot.write(byte);
        }
    }

    /// A reader that hands out the scripted reads, cut to the room given.
    fn reader(
        mut script: Script,
    ) -> impl FnMut(&mut [MaybeUninit<u8>]) -> io::Result<(usize, Vec<OwnedFd>)> {
        move |buf: &mut [MaybeUninit<u8>]| {
            let Some((mut bytes, fds)) = script.pop_front() else {
                return Ok((0, Vec::new()));
            };
            let n = bytes.len().min(buf.len());
            write(buf, &bytes[..n]);
            if n < bytes.len() {
                script.push_front((bytes.split_off(n), Vec::new()));
            }
            Ok((n, fds))
        }
    }

    fn raw(fds: &[OwnedFd]) -> Vec<i32> {
        use std::os::fd::AsRawFd;
        fds.iter().map(AsRawFd::as_raw_fd).collect()
    }

    #[test]
    fn several_frames_in_one_read_are_taken_one_by_one() {
        let mut wire = frame_bytes(b"one");
        wire.extend(frame_bytes(b""));
        wire.extend(frame_bytes(b"three"));
        let (script, _) = reads(&[(&wire, 0)]);
        let mut read = reader(script);
        let mut inbox = Inbox::default();
        for want in [&b"one"[..], b"", b"three"] {
            let (payload, fds) = inbox.frame(64, &mut read).unwrap();
            assert_eq!(payload, want);
            assert!(fds.is_empty());
        }
        assert!(matches!(
            inbox.frame(64, &mut read),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn descriptors_go_to_the_last_frame_starting_in_their_read() {
        // Linux's shape: a read brings frame A (no descriptors) whole and the head of B,
        // whose message carries two descriptors; then a read brings the rest of B.
        let a = frame_bytes(b"aaaa");
        let b = frame_bytes(b"bbbbbbbb");
        let mut first = a.clone();
        first.extend_from_slice(&b[..6]);
        let (script, ids) = reads(&[(&first, 2), (&b[6..], 0)]);
        let mut read = reader(script);
        let mut inbox = Inbox::default();
        let (payload, fds) = inbox.frame(64, &mut read).unwrap();
        assert_eq!((payload.as_slice(), fds.len()), (&b"aaaa"[..], 0));
        let (payload, fds) = inbox.frame(64, &mut read).unwrap();
        assert_eq!(payload, b"bbbbbbbb");
        if READS_AHEAD {
            assert_eq!(raw(&fds), ids);
        }
    }

    #[test]
    fn a_header_split_between_reads_still_owns_its_descriptors() {
        let a = frame_bytes(b"x");
        let b = frame_bytes(b"yz");
        let mut first = a.clone();
        first.extend_from_slice(&b[..2]);
        let (script, ids) = reads(&[(&first, 1), (&b[2..], 0)]);
        let mut read = reader(script);
        let mut inbox = Inbox::default();
        assert!(inbox.frame(64, &mut read).unwrap().1.is_empty());
        let (payload, fds) = inbox.frame(64, &mut read).unwrap();
        assert_eq!(payload, b"yz");
        if READS_AHEAD {
            assert_eq!(raw(&fds), ids);
        }
    }

    #[test]
    fn a_frame_larger_than_the_read_ahead_arrives_whole_with_its_descriptors() {
        let payload: Vec<u8> = (0..3 * READ_AHEAD).map(|i| i as u8).collect();
        let wire = frame_bytes(&payload);
        let (script, ids) = reads(&[(&wire[..100], 3), (&wire[100..], 0)]);
        let mut read = reader(script);
        let mut inbox = Inbox::default();
        let (got, fds) = inbox.frame(usize::MAX, &mut read).unwrap();
        assert_eq!(got, payload);
        assert_eq!(raw(&fds), ids);
        assert!(matches!(
            inbox.frame(64, &mut read),
            Err(FrameError::Closed)
        ));
    }

    /// A frame past the room made before its bytes arrive (`FIRST_READ`), in reads of
    /// every size: its room grows as they come, is read into without being zeroed, and
    /// holds the frame's bytes and nothing else.
    #[test]
    fn a_frame_past_the_first_room_grows_and_arrives_whole() {
        let payload: Vec<u8> = (0..2 * FIRST_READ + 12_345)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        let wire = frame_bytes(&payload);
        let mut cuts = vec![0, 1, 5, 700];
        while *cuts.last().unwrap() < wire.len() {
            let at = *cuts.last().unwrap();
            cuts.push((at + 1 + at / 3).min(wire.len()));
        }
        let pieces: Vec<(&[u8], usize)> = cuts.windows(2).map(|w| (&wire[w[0]..w[1]], 0)).collect();
        let (script, _) = reads(&pieces);
        let mut read = reader(script);
        let mut inbox = Inbox::default();
        let (got, _) = inbox.frame(usize::MAX, &mut read).unwrap();
        assert_eq!(got.len(), payload.len());
        assert!(got == payload);
        assert!(matches!(
            inbox.frame(64, &mut read),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn broken_streams_are_errors() {
        let (script, _) = reads(&[(&[5, 0], 0)]);
        let mut inbox = Inbox::default();
        let err = inbox.frame(64, &mut reader(script)).unwrap_err();
        assert!(matches!(err, FrameError::Protocol(m) if m.contains("header")));

        let (script, _) = reads(&[(&[5, 0, 0, 0, 1, 2], 0)]);
        let mut inbox = Inbox::default();
        let err = inbox.frame(64, &mut reader(script)).unwrap_err();
        assert!(matches!(err, FrameError::Protocol(m) if m.contains("2 of 5")));

        let (script, _) = reads(&[(&[0xff, 0xff, 0xff, 0xff], 0)]);
        let mut inbox = Inbox::default();
        let err = inbox.frame(64, &mut reader(script)).unwrap_err();
        assert!(matches!(err, FrameError::Protocol(m) if m.contains("exceeds")));
    }

    #[test]
    fn byte_reads_take_the_buffered_bytes_first() {
        let mut wire = frame_bytes(b"ab");
        wire.extend_from_slice(b"rest");
        let (script, _) = reads(&[(&wire, 0)]);
        let mut read = reader(script);
        let mut inbox = Inbox::default();
        assert_eq!(inbox.frame(64, &mut read).unwrap().0, b"ab");
        let mut out = [0u8; 8];
        let n = inbox.take_bytes(&mut out);
        if READS_AHEAD {
            assert_eq!(&out[..n], b"rest");
        } else {
            assert_eq!(n, 0);
        }
    }

    #[test]
    fn a_read_that_times_out_leaves_the_frame_to_go_on_with() {
        let payload: Vec<u8> = (0..2 * READ_AHEAD).map(|i| (i % 251) as u8).collect();
        let wire = frame_bytes(&payload);
        let cut = [3, READ_AHEAD, READ_AHEAD + 100];
        // The stream arrives in pieces, and the reader times out after each piece.
        let mut pieces: VecDeque<Vec<u8>> = VecDeque::new();
        let mut from = 0;
        for to in cut.into_iter().chain([wire.len()]) {
            pieces.push_back(wire[from..to].to_vec());
            from = to;
        }
        let mut timed_out = false;
        let mut read = |buf: &mut [MaybeUninit<u8>]| -> io::Result<(usize, Vec<OwnedFd>)> {
            timed_out = !timed_out;
            if timed_out {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let Some(mut piece) = pieces.pop_front() else {
                return Ok((0, Vec::new()));
            };
            let n = piece.len().min(buf.len());
            write(buf, &piece[..n]);
            if n < piece.len() {
                pieces.push_front(piece.split_off(n));
            }
            Ok((n, Vec::new()))
        };
        let mut inbox = Inbox::default();
        let mut timeouts = 0;
        let got = loop {
            match inbox.frame(usize::MAX, &mut read) {
                Ok((got, _)) => break got,
                Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    timeouts += 1;
                    assert!(timeouts < 100);
                }
                Err(e) => panic!("{e:?}"),
            }
        };
        assert_eq!(got, payload);
        assert!(timeouts >= cut.len());
        assert_eq!(inbox.holds(), 0);
    }

    /// The kernel's side of the rule: frames with and without descriptors, all sent before
    /// any is read, come back each with its own descriptors (told apart by inode).
    #[test]
    fn descriptors_travel_with_their_frames_over_a_real_socket() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let inode = |fd: &OwnedFd| {
            std::fs::File::from(fd.try_clone().unwrap())
                .metadata()
                .unwrap()
                .ino()
        };
        let pipes: Vec<OwnedFd> = (0..3)
            .map(|_| OwnedFd::from(std::io::pipe().unwrap().0))
            .collect();
        let (a, b) = super::super::Channel::pair().unwrap();
        let sends: [(&[u8], &[OwnedFd]); 5] = [
            (b"a", &[]),
            (b"b", &pipes[..1]),
            (b"c", &[]),
            (b"d", &pipes[1..]),
            (b"e", &[]),
        ];
        for _ in 0..50 {
            for (payload, fds) in sends {
                let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
                a.send_frame(payload, &raw).unwrap();
            }
            for (payload, fds) in sends {
                let (got, got_fds) = b.recv_frame(64).unwrap();
                assert_eq!(got, payload);
                let want: Vec<u64> = fds.iter().map(inode).collect();
                assert_eq!(got_fds.iter().map(inode).collect::<Vec<_>>(), want);
            }
        }
        assert_eq!(b.buffered(), 0);
    }
}
