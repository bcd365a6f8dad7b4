//! Links over TCP (`Link::from_tcp`): frames both ways, the end of the stream, waiting, and
//! the handles that cannot travel over a network connection. The behaviour is that of a
//! `Link` over a local stream (and of CPython's `Connection` over a socket), minus handles.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use proc_core::internal::Outgoing;
use proc_core::{Error, Handle, Link, codec};

/// Both ends of a TCP connection on loopback, as links: the connecting one first.
fn tcp_pair() -> (Link, Link) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    (Link::from_tcp(client), Link::from_tcp(server))
}

#[test]
fn frames_of_every_size_go_both_ways() {
    let (a, b) = tcp_pair();
    let echo = std::thread::spawn(move || {
        while let Ok(frame) = b.recv_bytes() {
            b.send_bytes(&frame).unwrap();
        }
    });
    // Larger than a socket's buffer, so that writes are partial and reads come in pieces.
    for len in [0usize, 1, 100, 252, 253, 64 * 1024, 64 * 1024 + 1, 4 << 20] {
        let frame: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        a.send_bytes(&frame).unwrap();
        assert_eq!(a.recv_bytes().unwrap(), frame, "a frame of {len} bytes");
    }
    a.send(&("values", 3u16)).unwrap();
    let _ = a.recv_bytes().unwrap();
    drop(a);
    echo.join().unwrap();
}

#[test]
fn the_end_of_the_stream_is_closed() {
    let (a, b) = tcp_pair();
    a.send_bytes(b"last words").unwrap();
    drop(a);
    assert!(b.poll(Some(Duration::from_secs(5))).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"last words");
    assert!(
        b.poll(Some(Duration::from_secs(5))).unwrap(),
        "end-of-file is readable"
    );
    assert!(matches!(b.recv_bytes(), Err(Error::Closed)));
    assert!(matches!(b.recv::<u8>(), Err(Error::Closed)));
}

#[test]
fn a_reset_connection_reads_as_closed() {
    let (a, b) = tcp_pair();
    // Closing a socket with unread bytes resets the connection instead of ending it cleanly
    // (on Linux and Windows; wine 8.0 ends it cleanly, which must read the same).
    b.send_bytes(b"never read").unwrap();
    a.send_bytes(b"also never read").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(b);
    assert!(a.poll(Some(Duration::from_secs(5))).unwrap());
    // The bytes that arrived before the reset may or may not still be read; then it ends.
    let mut frames = 0;
    loop {
        match a.recv_bytes() {
            Ok(frame) => {
                assert_eq!(frame, b"never read");
                frames += 1;
                assert!(frames < 2);
            }
            Err(Error::Closed) => break,
            Err(e) => panic!("a reset connection gave {e:?}"),
        }
    }
}

/// A frame over TCP is the codec's frame alone, a `u32` length and the payload, on every
/// platform (a Windows pipe puts a handle table before it; a socket carries no handles, so it
/// has none): a link understands a link on another system, and any peer that writes bare
/// frames, as a manager's clients and its fuzz test do.
#[test]
fn a_tcp_link_speaks_bare_codec_frames_on_every_platform() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut raw = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let link = Link::from_tcp(server);
    let payloads: [&[u8]; 3] = [b"hi", b"", &[7; 40]];
    let mut wire = Vec::new();
    for payload in payloads {
        codec::write_frame(&mut wire, payload).unwrap();
    }
    raw.write_all(&wire).unwrap();
    // The end of the stream follows, so that a reader that took a length for something else
    // fails instead of waiting for bytes that never come.
    raw.shutdown(Shutdown::Write).unwrap();
    for payload in payloads {
        assert_eq!(link.recv_bytes().unwrap(), payload);
    }
    assert!(matches!(link.recv_bytes(), Err(Error::Closed)));
    // The other way: one frame, then two sent in one write.
    link.send_bytes(b"back").unwrap();
    let one = Outgoing::encode(Vec::new(), 1u8).unwrap();
    let two = Outgoing::encode(vec![9], "two".to_string()).unwrap();
    link.send_outgoing_all(&[&one, &two]).unwrap();
    drop(link);
    let mut expected = Vec::new();
    codec::write_frame(&mut expected, b"back").unwrap();
    codec::write_frame(&mut expected, &codec::encode(&1u8).unwrap()).unwrap();
    codec::write_frame(
        &mut expected,
        &[&[9][..], &codec::encode("two").unwrap()].concat(),
    )
    .unwrap();
    let mut got = Vec::new();
    raw.read_to_end(&mut got).unwrap();
    assert_eq!(got, expected);
}

#[test]
fn handles_do_not_travel_over_tcp_and_nothing_is_sent() {
    let (a, b) = tcp_pair();
    let (_reader, writer) = std::io::pipe().unwrap();
    match a.send(&Handle::from(writer)) {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains("network"), "{e}");
        }
        other => panic!("sending a handle over tcp gave {other:?}"),
    }
    a.send("next").unwrap();
    assert_eq!(b.recv::<String>().unwrap(), "next");
}

#[test]
fn wait_any_watches_tcp_links_alone_and_beside_pipes() {
    let (a, b) = tcp_pair();
    let (c, d) = tcp_pair();
    let (e, f) = Link::pair().unwrap();
    let started = Instant::now();
    assert!(
        Link::wait_any(&[&b, &d], Some(Duration::from_millis(50)))
            .unwrap()
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(40));
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        c.send_bytes(b"!").unwrap();
        c
    });
    assert_eq!(
        Link::wait_any(&[&b, &d], Some(Duration::from_secs(10))).unwrap(),
        [1]
    );
    assert!(d.poll(Some(Duration::ZERO)).unwrap());
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    // Beside a pipe the sockets are watched as well, and the pipe too.
    assert_eq!(
        Link::wait_any(&[&b, &f, &d], Some(Duration::from_secs(10))).unwrap(),
        [2]
    );
    e.send_bytes(b"?").unwrap();
    a.send_bytes(b".").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ready = Vec::new();
    while ready.len() < 3 && Instant::now() < deadline {
        ready = Link::wait_any(&[&b, &f, &d], Some(Duration::from_secs(10))).unwrap();
    }
    assert_eq!(ready, [0, 1, 2]);
    let _c = writer.join().unwrap();
}

#[test]
fn a_tcp_link_travels_to_another_link_on_unix_only() {
    let (a, b) = tcp_pair();
    let (here, there) = Link::pair().unwrap();
    let sent = here.send(&b);
    if cfg!(windows) {
        match sent {
            Err(Error::Decode(msg)) => assert!(msg.contains("network"), "{msg}"),
            other => panic!("sending a tcp link on windows gave {other:?}"),
        }
        here.send("next").unwrap();
        assert_eq!(there.recv::<String>().unwrap(), "next");
    } else {
        sent.unwrap();
        drop(b);
        let moved: Link = there.recv().unwrap();
        a.send("through the moved end").unwrap();
        assert_eq!(moved.recv::<String>().unwrap(), "through the moved end");
    }
}
