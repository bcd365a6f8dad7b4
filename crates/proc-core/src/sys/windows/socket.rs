//! The socket side of a Windows `Channel`: a connected stream socket (TCP, from
//! `Link::from_tcp`) read and written with Winsock's `recv`/`send` and watched with `WSAPoll`,
//! where a named pipe uses `ReadFile`/`WriteFile` and `PeekNamedPipe`.
//!
//! The socket is in blocking mode without time-outs, as `Link::from_tcp` asks of its caller.
//! Winsock runs a `recv` and a `send` on one socket independently, so a thread blocked reading
//! never holds up another one writing, as on a Unix socket.

use std::io;
use std::os::windows::io::{AsRawSocket, OwnedSocket};
use std::time::{Duration, Instant};

use windows_sys::Win32::Networking::WinSock::{
    MSG_PEEK, POLLERR, POLLHUP, POLLNVAL, POLLRDNORM, SEND_RECV_FLAGS, SOCKET, SOCKET_ERROR,
    WSA_ERROR, WSAECONNABORTED, WSAECONNRESET, WSAEINTR, WSAGetLastError, WSAPOLLFD, WSAPoll, recv,
    send,
};

/// The error of the Winsock call that just failed on this thread.
fn last_error() -> io::Error {
    // SAFETY: WSAGetLastError only reads this thread's last Winsock error.
    io::Error::from_raw_os_error(unsafe { WSAGetLastError() })
}

/// Whether `err` is one of the Winsock error `codes`.
fn is_wsa_error(err: &io::Error, codes: &[WSA_ERROR]) -> bool {
    err.raw_os_error().is_some_and(|code| codes.contains(&code))
}

/// Whether an error from reading a socket means that the peer is gone: a reset or aborted
/// connection reads as end-of-file, as a broken pipe does on a named pipe (and a reset does in
/// `recv_frame` on Unix).
fn is_closed(err: &io::Error) -> bool {
    is_wsa_error(err, &[WSAECONNRESET, WSAECONNABORTED])
}

fn raw(socket: &OwnedSocket) -> SOCKET {
    socket.as_raw_socket() as SOCKET
}

/// Receives up to `buf.len()` bytes (at most `i32::MAX`) with `flags`; 0 at end-of-file,
/// which a reset connection counts as.
fn recv_with(socket: &OwnedSocket, buf: &mut [u8], flags: SEND_RECV_FLAGS) -> io::Result<usize> {
    let len = i32::try_from(buf.len()).unwrap_or(i32::MAX);
    // SAFETY: `buf` is valid for writes of `len` bytes (no more than its length), and the
    // socket is open for as long as `socket` borrows it.
    let n = unsafe { recv(raw(socket), buf.as_mut_ptr(), len, flags) };
    if n != SOCKET_ERROR {
        return Ok(n as usize);
    }
    match last_error() {
        e if is_closed(&e) => Ok(0),
        e => Err(e),
    }
}

/// Reads what has arrived, waiting for at least one byte unless the stream has ended (then
/// 0).
pub(super) fn read(socket: &OwnedSocket, buf: &mut [u8]) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    recv_with(socket, buf, 0)
}

/// Writes some of `buf` (at most `i32::MAX` bytes), waiting for room in the socket's buffer.
pub(super) fn write(socket: &OwnedSocket, buf: &[u8]) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    let len = i32::try_from(buf.len()).unwrap_or(i32::MAX);
    // SAFETY: `buf` is valid for reads of `len` bytes (no more than its length), and the
    // socket is open for as long as `socket` borrows it.
    let n = unsafe { send(raw(socket), buf.as_ptr(), len, 0) };
    if n == SOCKET_ERROR {
        Err(last_error())
    } else {
        Ok(n as usize)
    }
}

/// Milliseconds for `WSAPoll`, rounded up so that a short wait never becomes a busy loop; -1
/// waits forever.
fn poll_millis(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
    }
}

/// Waits until at least one of `sockets` has bytes or end-of-file to read, or `timeout`
/// passes; returns the indexes of the ready ones (empty on time-out).
///
/// A reset connection (`POLLERR`) or an invalid socket (`POLLNVAL`) counts as ready as well:
/// the read that follows reports the end of the stream or the error, instead of a wait that
/// would never end.
pub(super) fn wait_readable(
    sockets: &[&OwnedSocket],
    timeout: Option<Duration>,
) -> io::Result<Vec<usize>> {
    let deadline = crate::internal::Deadline::from_timeout(timeout).instant();
    // `WSAPoll` takes only the events to wait for; it reports hang-ups and errors on its own.
    let mut fds: Vec<WSAPOLLFD> = sockets
        .iter()
        .map(|&socket| WSAPOLLFD {
            fd: raw(socket),
            events: POLLRDNORM,
            revents: 0,
        })
        .collect();
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // SAFETY: `fds` holds `fds.len()` initialised entries, which WSAPoll may write the
        // `revents` of, and each names a socket that its `OwnedSocket` keeps open.
        let ret = unsafe { WSAPoll(fds.as_mut_ptr(), fds.len() as u32, poll_millis(remaining)) };
        if ret == SOCKET_ERROR {
            let err = last_error();
            if is_wsa_error(&err, &[WSAEINTR]) {
                continue;
            }
            return Err(err);
        }
        let ready: Vec<usize> = fds
            .iter()
            .enumerate()
            .filter(|(_, fd)| fd.revents & (POLLRDNORM | POLLHUP | POLLERR | POLLNVAL) != 0)
            .map(|(i, _)| i)
            .collect();
        if !ready.is_empty()
            || remaining.is_some_and(|r| r.is_zero())
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            return Ok(ready);
        }
    }
}

/// Whether the peer has closed its end (and sent nothing more), without blocking: the socket
/// is readable and a one-byte peek finds the end of the stream (or a reset).
///
/// Winsock has no per-call `MSG_DONTWAIT`, so the peek waits when another thread takes the
/// bytes between the poll and the peek; as with a pipe, the caller is the only reader.
pub(super) fn peer_closed(socket: &OwnedSocket) -> bool {
    if !wait_readable(&[socket], Some(Duration::ZERO)).is_ok_and(|ready| !ready.is_empty()) {
        return false;
    }
    let mut byte = [0u8; 1];
    matches!(recv_with(socket, &mut byte, MSG_PEEK), Ok(0))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{Shutdown, TcpListener, TcpStream};

    use super::*;

    /// Both ends of a TCP connection on loopback: the accepted one first.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (server, client)
    }

    #[test]
    fn peer_closed_sees_the_end_of_the_stream_and_only_that() {
        let (server, mut client) = pair();
        let server = OwnedSocket::from(server);
        assert!(!peer_closed(&server), "nothing sent, nothing closed");
        client.write_all(b"x").unwrap();
        assert_eq!(
            wait_readable(&[&server], Some(Duration::from_secs(5))).unwrap(),
            [0]
        );
        assert!(!peer_closed(&server), "a byte waits: not closed yet");
        let mut byte = [0u8; 1];
        assert_eq!(read(&server, &mut byte).unwrap(), 1);
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(
            wait_readable(&[&server], Some(Duration::from_secs(5))).unwrap(),
            [0]
        );
        assert!(peer_closed(&server));
        assert_eq!(read(&server, &mut byte).unwrap(), 0);
    }

    #[test]
    fn a_peer_that_left_with_bytes_unread_is_the_end_and_fails_writes() {
        let (server, mut client) = pair();
        let server = OwnedSocket::from(server);
        // Windows resets a connection that is closed with bytes unread; under wine 8.0 the
        // server sees a clean end-of-file instead, and a reset only in answer to a write.
        // Either way a read is the end of the stream.
        assert_eq!(write(&server, b"unread").unwrap(), 6);
        client.write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(client);
        assert_eq!(
            wait_readable(&[&server], Some(Duration::from_secs(5))).unwrap(),
            [0]
        );
        let mut buf = [0u8; 8];
        assert_eq!(read(&server, &mut buf).unwrap(), 1);
        assert_eq!(read(&server, &mut buf).unwrap(), 0);
        assert!(peer_closed(&server));
        // The peer answers the first write with a reset, which fails a later one.
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = loop {
            match write(&server, &[0; 1024]) {
                Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Ok(_) => panic!("writes to a closed connection go on succeeding"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ),
            "{err:?}"
        );
        assert_eq!(
            read(&server, &mut buf).unwrap(),
            0,
            "a reset reads as the end"
        );
    }

    #[test]
    fn a_wait_on_a_quiet_socket_times_out() {
        let (server, _client) = pair();
        let server = OwnedSocket::from(server);
        let started = Instant::now();
        assert!(
            wait_readable(&[&server], Some(Duration::from_millis(50)))
                .unwrap()
                .is_empty()
        );
        assert!(started.elapsed() >= Duration::from_millis(40));
    }
}
