//! Frames sent in parts (`Link::send_bytes_parts`, a gathering write on Unix): they arrive
//! as the one frame of their concatenation, at every size (past a socket's buffer, where
//! the write is partial and goes on mid-part), between frames sent whole, over a local
//! link and over TCP; and a dead peer is an error.

use std::net::{TcpListener, TcpStream};

use proc_core::{Error, Link};

/// Both ends of a TCP connection on loopback, as links.
fn tcp_pair() -> (Link, Link) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (Link::from_tcp(client), Link::from_tcp(server))
}

/// `len` bytes that differ from one offset to the next, starting at `seed`.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i + seed) % 251) as u8).collect()
}

fn parts_arrive_whole(a: Link, b: Link) {
    let echo = std::thread::spawn(move || {
        while let Ok(frame) = b.recv_bytes() {
            b.send_bytes(&frame).unwrap();
        }
    });
    let sizes = [0usize, 1, 3, 100, 64 * 1024 + 1, 3 << 20];
    for (n, &first) in sizes.iter().enumerate() {
        for &second in &sizes[n..] {
            let (head, body, tail) = (pattern(first, 1), pattern(second, 7), pattern(5, 3));
            a.send_bytes_parts(&[&head, &[], &body, &tail]).unwrap();
            // A frame sent whole after it: the stream is still at a frame boundary.
            a.send_bytes(b"next").unwrap();
            let whole = [&head[..], &body, &tail].concat();
            assert_eq!(
                a.recv_bytes().unwrap(),
                whole,
                "parts of {first} and {second}"
            );
            assert_eq!(a.recv_bytes().unwrap(), b"next");
        }
    }
    a.send_bytes_parts(&[]).unwrap();
    assert!(a.recv_bytes().unwrap().is_empty());
    drop(a);
    echo.join().unwrap();
}

#[test]
fn parts_arrive_as_one_frame_over_a_local_link() {
    let (a, b) = Link::pair().unwrap();
    parts_arrive_whole(a, b);
}

#[test]
fn parts_arrive_as_one_frame_over_tcp() {
    let (a, b) = tcp_pair();
    parts_arrive_whole(a, b);
}

#[test]
fn parts_to_a_dead_peer_are_an_error() {
    let (a, b) = Link::pair().unwrap();
    drop(b);
    let big = pattern(1 << 20, 0);
    assert!(matches!(
        a.send_bytes_parts(&[b"head", &big]),
        Err(Error::Io(_))
    ));
}
