//! Listeners and clients between processes, after CPython's `_TestListener`,
//! `_TestListenerClient` and `_TestConnection.test_wrong_authkey`-style checks
//! (test_multiprocessing): local sockets and TCP on loopback, the HMAC handshake both ways, and
//! peers that break the handshake.

use std::time::Duration;

use proc_core::{Error, Process, StartMethod};
use proc_ipc::{Address, Client, Connection, Listener, Pipe};
use procs_testkit::each_method;

const KEY: &[u8] = b"the right key";

/// Connects, then answers every number with its double until it gets 0.
fn doubler((address, key): (Address, Vec<u8>)) -> u32 {
    let conn = Client::connect(address, Some(&key)).expect("child: connect");
    let mut answered = 0;
    loop {
        match conn.recv::<u64>().expect("child: recv") {
            0 => return answered,
            n => conn.send(&(n * 2)).expect("child: send"),
        }
        answered += 1;
    }
}

fn talk_to_a_child(method: StartMethod, address: Address) {
    let listener = Listener::bind(address, Some(KEY)).unwrap();
    let mut child = Process::builder()
        .start_method(method)
        .spawn(doubler, (listener.address().clone(), KEY.to_vec()))
        .unwrap();
    let conn = listener.accept().unwrap();
    for n in 1..=50u64 {
        conn.send(&n).unwrap();
        assert_eq!(conn.recv::<u64>().unwrap(), 2 * n);
    }
    conn.send(&0u64).unwrap();
    assert_eq!(child.join().unwrap(), 50);
}

#[test]
fn a_child_connects_to_a_local_listener() {
    each_method(|method| talk_to_a_child(method, Address::unique_local()));
}

#[cfg(unix)]
#[test]
fn a_local_listener_on_a_path_removes_its_file() {
    each_method(|method| {
        let path = procs_testkit::temp_path(&format!("listener-{method}.sock"));
        talk_to_a_child(method, Address::Local(path.display().to_string()));
        assert!(!path.exists(), "the socket file is left behind");
    });
}

#[test]
fn a_child_connects_over_tcp() {
    each_method(|method| talk_to_a_child(method, "127.0.0.1:0".parse().unwrap()));
}

/// Connects without a key and receives a pipe end through the listener's connection.
fn take_a_pipe_end(address: Address) {
    let conn = Client::connect(address, None).expect("child: connect");
    let end: Connection = conn.recv().expect("child: recv the pipe end");
    end.send("through the pipe that came over the socket")
        .unwrap();
}

#[test]
fn handles_travel_over_local_connections() {
    each_method(|method| {
        let listener = Listener::bind(Address::unique_local(), None).unwrap();
        let mut child = Process::builder()
            .start_method(method)
            .spawn(take_a_pipe_end, listener.address().clone())
            .unwrap();
        let conn = listener.accept().unwrap();
        let (here, there) = Pipe::duplex().unwrap();
        conn.send(&there).unwrap();
        drop(there);
        assert_eq!(
            here.recv::<String>().unwrap(),
            "through the pipe that came over the socket"
        );
        child.join().unwrap();
    });
}

#[test]
fn a_handle_over_tcp_is_an_error_that_sends_nothing() {
    let listener = Listener::bind("127.0.0.1:0".parse::<Address>().unwrap(), None).unwrap();
    let address = listener.address().clone();
    let client = std::thread::spawn(move || Client::connect(address, None).unwrap());
    let here = listener.accept().unwrap();
    let there = client.join().unwrap();
    let (_a, b) = Pipe::duplex().unwrap();
    match here.send(&b) {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains("network"), "{e}");
        }
        other => panic!("sending a handle over tcp gave {other:?}"),
    }
    // Nothing of the refused frame went out: the stream is still at a frame boundary.
    here.send("next").unwrap();
    assert_eq!(there.recv::<String>().unwrap(), "next");
}

/// Connects with `key`; reports whether that failed with `AuthenticationFailed`.
fn connect_with((address, key): (Address, Vec<u8>)) -> bool {
    matches!(
        Client::connect(address, Some(&key)),
        Err(Error::AuthenticationFailed)
    )
}

#[test]
fn a_wrong_authkey_fails_on_both_sides() {
    each_method(|method| {
        for address in addresses() {
            let listener = Listener::bind(address, Some(KEY)).unwrap();
            let mut child = Process::builder()
                .start_method(method)
                .spawn(
                    connect_with,
                    (listener.address().clone(), b"a wrong key".to_vec()),
                )
                .unwrap();
            assert!(matches!(
                listener.accept(),
                Err(Error::AuthenticationFailed)
            ));
            assert!(
                child.join().unwrap(),
                "the client did not see AuthenticationFailed"
            );
            // The listener goes on: the right key is welcome.
            let mut child = Process::builder()
                .start_method(method)
                .spawn(doubler, (listener.address().clone(), KEY.to_vec()))
                .unwrap();
            let conn = listener.accept().unwrap();
            conn.send(&21u64).unwrap();
            assert_eq!(conn.recv::<u64>().unwrap(), 42);
            conn.send(&0u64).unwrap();
            assert_eq!(child.join().unwrap(), 1);
        }
    });
}

fn addresses() -> Vec<Address> {
    vec![Address::unique_local(), "127.0.0.1:0".parse().unwrap()]
}

/// Peers that break the handshake, over TCP on loopback, where a test can play a raw peer.
mod misbehaving {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::time::Instant;

    use super::*;

    /// What a misbehaving client does to the listener at `addr`.
    #[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
    enum Misdeed {
        /// Reads the challenge and answers with 32 bytes of junk.
        Garbage,
        /// Connects and closes at once.
        Leave,
        /// Reads the challenge, sends half an answer and leaves.
        HalfAnswer,
        /// Connects and says nothing until killed.
        Stall,
    }

    fn misbehave((addr, misdeed): (SocketAddr, Misdeed)) {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut challenge = [0u8; 43];
        match misdeed {
            Misdeed::Garbage => {
                stream.read_exact(&mut challenge).unwrap();
                stream.write_all(&[0x5a; 32]).unwrap();
                let mut verdict = [0u8; 9];
                stream.read_exact(&mut verdict).unwrap();
                assert_eq!(&verdict, b"#FAILURE#");
            }
            Misdeed::Leave => {}
            Misdeed::HalfAnswer => {
                stream.read_exact(&mut challenge).unwrap();
                stream.write_all(&[1; 16]).unwrap();
            }
            Misdeed::Stall => std::thread::sleep(Duration::from_secs(120)),
        }
    }

    #[test]
    fn a_misbehaving_client_does_not_hang_or_break_the_listener() {
        each_method(|method| {
            let mut listener =
                Listener::bind("127.0.0.1:0".parse::<Address>().unwrap(), Some(KEY)).unwrap();
            listener.set_handshake_timeout(Duration::from_millis(500));
            let Address::Tcp(addr) = *listener.address() else {
                unreachable!("bound to tcp")
            };
            for misdeed in [
                Misdeed::Garbage,
                Misdeed::Leave,
                Misdeed::HalfAnswer,
                Misdeed::Stall,
            ] {
                let mut child = Process::builder()
                    .start_method(method)
                    .spawn(misbehave, (addr, misdeed))
                    .unwrap();
                let started = Instant::now();
                let result = listener.accept();
                match (misdeed, &result) {
                    (Misdeed::Garbage, Err(Error::AuthenticationFailed))
                    | (Misdeed::Leave | Misdeed::HalfAnswer, Err(Error::Protocol(_)))
                    | (Misdeed::Stall, Err(Error::Timeout)) => {}
                    _ => panic!("{misdeed:?}: accept gave {result:?}"),
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{misdeed:?} held accept"
                );
                if matches!(misdeed, Misdeed::Stall) {
                    child.kill().unwrap();
                    let _ = child.join();
                } else {
                    child.join().unwrap();
                }
            }
            // And the next, honest client is served.
            let mut child = Process::builder()
                .start_method(method)
                .spawn(doubler, (listener.address().clone(), KEY.to_vec()))
                .unwrap();
            let conn = listener.accept().unwrap();
            conn.send(&0u64).unwrap();
            assert_eq!(child.join().unwrap(), 0);
        });
    }

    #[test]
    fn a_misbehaving_listener_is_an_error_for_the_client() {
        // What the fake listener sends after accepting, before it closes the connection: something
        // else than a challenge, part of one, nothing.
        let cases: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\n\r\nhello there, friend!!!!!",
            b"#CHALLENGE#",
            b"",
        ];
        for said in cases {
            let fake = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = fake.local_addr().unwrap();
            let server = std::thread::spawn(move || {
                let (mut stream, _) = fake.accept().unwrap();
                stream.write_all(said).unwrap();
            });
            let started = Instant::now();
            let err = Client::connect(addr, Some(KEY)).unwrap_err();
            assert!(matches!(err, Error::Protocol(_)), "after {said:?}: {err:?}");
            assert!(started.elapsed() < Duration::from_secs(10));
            server.join().unwrap();
        }
        // One that sends part of a challenge and stalls runs into the time limit.
        let fake = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = fake.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = fake.accept().unwrap();
            stream.write_all(b"#CHALL").unwrap();
            std::thread::sleep(Duration::from_secs(2));
        });
        let err = Client::connect_timeout(addr, Some(KEY), Duration::from_millis(300)).unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        server.join().unwrap();
    }
}

/// Connects, waits `delay_ms`, then sends its index.
fn report_after((address, index, delay_ms): (Address, usize, u64)) {
    let conn = Client::connect(address, Some(KEY)).expect("child: connect");
    std::thread::sleep(Duration::from_millis(delay_ms));
    conn.send(&index).unwrap();
    // Wait for the parent's word before leaving, so that end-of-file does not count as ready.
    let _ = conn.recv::<()>();
}

#[test]
fn wait_watches_connections_from_a_listener() {
    each_method(|method| {
        for address in addresses() {
            wait_on_connections(method, address);
        }
    });
}

fn wait_on_connections(method: StartMethod, address: Address) {
    let listener = Listener::bind(address, Some(KEY)).unwrap();
    let delays = [600u64, 0, 1200];
    let mut children = Vec::new();
    let mut conns = Vec::new();
    for (index, delay) in delays.into_iter().enumerate() {
        children.push(
            Process::builder()
                .start_method(method)
                .spawn(report_after, (listener.address().clone(), index, delay))
                .unwrap(),
        );
        conns.push(listener.accept().unwrap());
    }
    // Connections are accepted in order, so `conns[i]` talks to child `i`.
    let mut order = Vec::new();
    let mut pending: Vec<usize> = (0..conns.len()).collect();
    while !pending.is_empty() {
        let watched: Vec<&Connection> = pending.iter().map(|&i| &conns[i]).collect();
        let ready = proc_ipc::wait(&watched, Some(Duration::from_secs(20))).unwrap();
        assert!(!ready.is_empty(), "wait timed out");
        let first = pending[ready[0]];
        assert_eq!(conns[first].recv::<usize>().unwrap(), first);
        order.push(first);
        pending.retain(|&i| i != first);
    }
    assert_eq!(order, [1, 0, 2]);
    for conn in &conns {
        conn.send(&()).unwrap();
    }
    for mut child in children {
        child.join().unwrap();
    }
}

/// Connects a client on another thread to a new listener at `address`, without an authkey:
/// the listener's end first.
fn connected(address: Address) -> (Connection, Connection) {
    let listener = Listener::bind(address, None).unwrap();
    let address = listener.address().clone();
    let client = std::thread::spawn(move || Client::connect(address, None).unwrap());
    let here = listener.accept().unwrap();
    (here, client.join().unwrap())
}

#[test]
fn a_tcp_connection_travels_over_a_local_one_on_unix_only() {
    let (tcp_here, tcp_there) = connected("127.0.0.1:0".parse().unwrap());
    let (local_here, local_there) = connected(Address::unique_local());
    let sent = local_here.send(&tcp_there);
    if cfg!(windows) {
        match sent {
            Err(Error::Decode(msg)) => assert!(msg.contains("network"), "{msg}"),
            other => panic!("sending a tcp connection on windows gave {other:?}"),
        }
        // The refused value sent nothing.
        local_here.send("next").unwrap();
        assert_eq!(local_there.recv::<String>().unwrap(), "next");
    } else {
        sent.unwrap();
        drop(tcp_there);
        let moved: Connection = local_there.recv().unwrap();
        tcp_here.send("through the moved connection").unwrap();
        assert_eq!(
            moved.recv::<String>().unwrap(),
            "through the moved connection"
        );
    }
}

#[test]
fn no_authkey_on_either_side_is_no_handshake() {
    let listener = Listener::bind(Address::unique_local(), None).unwrap();
    let address = listener.address().clone();
    let client = std::thread::spawn(move || Client::connect(address, None).unwrap());
    let here = listener.accept().unwrap();
    let there = client.join().unwrap();
    there.send_bytes(b"plain").unwrap();
    assert_eq!(here.recv_bytes().unwrap(), b"plain");
    assert!(here.poll(Some(Duration::ZERO)).is_ok());
}

#[test]
fn listeners_and_clients_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Listener>();
    check::<Client>();
    check::<Address>();
}
