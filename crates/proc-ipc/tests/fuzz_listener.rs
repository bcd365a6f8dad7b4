//! Hostile bytes in the `Listener`/`Client` handshake (the HMAC-SHA256 challenge of CPython's
//! `multiprocessing.connection.deliver_challenge` and `answer_challenge`), a seeded fuzz with a
//! raw socket on the other side:
//!
//! - a hostile client against a real `Listener`: nothing, garbage, an answer cut short (then
//!   gone, or stalling), a wrong digest, a 4 GiB length header where the digest goes, the
//!   replay of a digest that answered an earlier challenge, and garbage (4 GiB headers, frames
//!   cut short, random bytes) after a good handshake;
//! - a hostile listener against a real `Client`: the same, from the other side, and wrong or
//!   garbled verdicts.
//!
//! Each case must end with a typed error (or, after a good handshake, values and then a
//! typed error) within a bounded time, never a panic, and the listener must serve the next
//! good client. A good handshake comes from a real `Client` and a real `Listener` with the
//! test in the middle, relaying the fixed-size messages and then turning hostile, so that the
//! test needs no HMAC of its own.
//!
//! Over TCP on loopback everywhere, and over a Unix socket on a path on Unix (Windows local
//! sockets are named pipes, which a test cannot play raw as simply).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use proc_core::Error;
use proc_ipc::{Address, Client, Connection, Listener};
use procs_testkit::{PATIENCE, Rng, within};

const KEY: &[u8] = b"the fuzzed key";

/// How long the listener gives a peer to authenticate here: stalling cases run into it.
const HANDSHAKE: Duration = Duration::from_millis(300);

/// How long one fuzz run may take before it counts as hung: a guard, not a timing assertion.
const HANG: Duration = Duration::from_secs(300);

/// The listener's challenge: the magic and 32 random bytes.
const CHALLENGE_LEN: usize = 11 + 32;
const DIGEST_LEN: usize = 32;
const VERDICT_LEN: usize = 9;

/// A raw socket, as a hostile peer holds it.
enum Raw {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Raw {
    fn connect(address: &Address) -> Raw {
        match address {
            Address::Tcp(addr) => Raw::Tcp(TcpStream::connect(addr).unwrap()),
            #[cfg(unix)]
            Address::Local(path) => {
                Raw::Unix(std::os::unix::net::UnixStream::connect(path).unwrap())
            }
            other => panic!("no raw peer for {other}"),
        }
    }

    fn set_read_timeout(&self, timeout: Duration) {
        match self {
            Raw::Tcp(s) => s.set_read_timeout(Some(timeout)).unwrap(),
            #[cfg(unix)]
            Raw::Unix(s) => s.set_read_timeout(Some(timeout)).unwrap(),
        }
    }

    /// Reads until the other side closes (or the read time-out set before runs out).
    fn drain(&mut self) {
        let mut sink = [0u8; 4096];
        while matches!(self.read(&mut sink), Ok(n) if n > 0) {}
    }
}

impl Read for Raw {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Raw::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Raw::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Raw {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Raw::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Raw::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A raw listening socket, for a hostile listener.
enum RawServer {
    Tcp(TcpListener),
    /// With its path, which goes once the one peer it is for has come.
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener, String),
}

impl RawServer {
    fn bind(transport: Transport, tag: &str) -> (RawServer, Address) {
        match transport {
            Transport::Tcp => {
                let _ = tag;
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = l.local_addr().unwrap();
                (RawServer::Tcp(l), Address::Tcp(addr))
            }
            #[cfg(unix)]
            Transport::UnixPath => {
                let path = fresh_path(tag);
                let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
                (RawServer::Unix(l, path.clone()), Address::Local(path))
            }
        }
    }

    fn accept(&self) -> Raw {
        match self {
            RawServer::Tcp(l) => Raw::Tcp(l.accept().unwrap().0),
            #[cfg(unix)]
            RawServer::Unix(l, path) => {
                let stream = l.accept().unwrap().0;
                std::fs::remove_file(path).unwrap();
                Raw::Unix(stream)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    Tcp,
    #[cfg(unix)]
    UnixPath,
}

fn transports() -> Vec<Transport> {
    vec![
        Transport::Tcp,
        #[cfg(unix)]
        Transport::UnixPath,
    ]
}

/// A socket path of its own for `tag`.
#[cfg(unix)]
fn fresh_path(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = procs_testkit::temp_path(&format!("{tag}-{n}.sock"));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

fn listen(transport: Transport) -> Listener {
    let address: Address = match transport {
        Transport::Tcp => "127.0.0.1:0".parse().unwrap(),
        #[cfg(unix)]
        Transport::UnixPath => Address::Local(fresh_path("listener")),
    };
    let mut listener = Listener::bind(address, Some(KEY)).unwrap();
    listener.set_handshake_timeout(HANDSHAKE);
    listener
}

/// Copies exactly `n` bytes from `from` to `to`, and returns them.
fn relay(from: &mut Raw, to: &mut Raw, n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    from.read_exact(&mut bytes).unwrap();
    to.write_all(&bytes).unwrap();
    bytes
}

/// Relays a whole good handshake between a listener's side (`upstream`) and a client's
/// (`downstream`); returns the client's answer to the listener's challenge.
fn relay_handshake(upstream: &mut Raw, downstream: &mut Raw) -> Vec<u8> {
    relay(upstream, downstream, CHALLENGE_LEN);
    let answer = relay(downstream, upstream, DIGEST_LEN);
    relay(upstream, downstream, VERDICT_LEN);
    relay(downstream, upstream, CHALLENGE_LEN);
    relay(upstream, downstream, DIGEST_LEN);
    relay(downstream, upstream, VERDICT_LEN);
    answer
}

/// A good handshake with `listener`, by a real `Client` that the test stands in front of:
/// the raw socket to the listener, now past the handshake, and the client's answer.
/// The listener's side is accepted by `accept`, which runs meanwhile.
fn good_raw_client<T: Send + 'static>(
    transport: Transport,
    listener_address: &Address,
    accept: impl FnOnce() -> T + Send + 'static,
) -> (Raw, Vec<u8>, T) {
    let (front, front_address) = RawServer::bind(transport, "front");
    let client = std::thread::spawn(move || Client::connect(front_address, Some(KEY)));
    let mut upstream = Raw::connect(listener_address);
    let accepted = std::thread::spawn(accept);
    let mut downstream = front.accept();
    let answer = relay_handshake(&mut upstream, &mut downstream);
    client
        .join()
        .unwrap()
        .expect("the relayed client is welcome");
    (upstream, answer, accepted.join().unwrap())
}

/// Hostile bytes for a connection past its handshake: garbage, frames whose header claims
/// 4 GiB, frames cut short, and good-looking small frames of random content; and whether
/// they start with a 4 GiB header, which the receiver must refuse at once, beyond its frame
/// limit, rather than wait for (or make room for) what it claims.
fn hostile_frames(rng: &mut Rng) -> (Vec<u8>, bool) {
    let mut bytes = Vec::new();
    let first = rng.below(4);
    for i in 0..=rng.below(4) {
        match if i == 0 { first } else { rng.below(4) } {
            0 => bytes.extend(rng.bytes(64)),
            1 => {
                bytes.extend(u32::MAX.to_le_bytes());
                bytes.extend(rng.bytes(16));
            }
            2 => {
                bytes.extend(1000u32.to_le_bytes());
                bytes.extend(rng.bytes(100));
            }
            _ => {
                let payload = rng.bytes(24);
                bytes.extend((payload.len() as u32).to_le_bytes());
                bytes.extend(payload);
            }
        }
    }
    (bytes, first == 1)
}

/// Sends hostile frames down `raw` and leaves; `conn`, the other end, must give values and
/// then a typed error (a peer that sent a finite stream and left cannot keep it going).
fn garbage_after_handshake(mut raw: Raw, conn: &Connection, rng: &mut Rng, what: &str) {
    let (bytes, huge_first) = hostile_frames(rng);
    raw.write_all(&bytes).unwrap();
    drop(raw);
    let mut values = 0;
    let err = loop {
        match conn.recv::<u64>() {
            Ok(_) => values += 1,
            Err(e) => break e,
        }
        assert!(
            values < 64,
            "{what}: 64 values from a few hundred hostile bytes"
        );
    };
    if huge_first {
        assert!(
            matches!(err, Error::Protocol(_)),
            "{what}: a 4 GiB header gave {err:?}"
        );
    } else {
        assert!(
            matches!(err, Error::Closed | Error::Protocol(_) | Error::Decode(_)),
            "{what}: {err:?}"
        );
    }
}

/// What a hostile client does to the listener.
#[derive(Debug, Clone, Copy)]
enum ClientMisdeed {
    /// Connects and closes at once.
    Leave,
    /// Sends garbage without reading the challenge, and leaves.
    Garbage,
    /// Reads the challenge, sends part of an answer and leaves.
    ShortAnswer,
    /// Reads the challenge, sends part of an answer and stalls.
    ShortAnswerAndStall,
    /// Reads the challenge and answers with a wrong digest.
    WrongDigest,
    /// Reads the challenge and sends a 4 GiB length header and garbage for the digest.
    HugeHeader,
    /// Answers with the digest that answered an earlier challenge.
    Replay,
    /// Passes the handshake and sends hostile frames.
    GarbageAfterHandshake,
}

const CLIENT_MISDEEDS: [ClientMisdeed; 8] = [
    ClientMisdeed::Leave,
    ClientMisdeed::Garbage,
    ClientMisdeed::ShortAnswer,
    ClientMisdeed::ShortAnswerAndStall,
    ClientMisdeed::WrongDigest,
    ClientMisdeed::HugeHeader,
    ClientMisdeed::Replay,
    ClientMisdeed::GarbageAfterHandshake,
];

/// Plays `misdeed` against `listener` and checks what `accept` makes of it.
fn hostile_client(
    transport: Transport,
    listener: &std::sync::Arc<Listener>,
    misdeed: ClientMisdeed,
    old_answer: &[u8],
    rng: &mut Rng,
) {
    let address = listener.address().clone();
    if let ClientMisdeed::GarbageAfterHandshake = misdeed {
        let l = listener.clone();
        let (raw, _, accepted) = good_raw_client(transport, &address, move || l.accept());
        let conn = accepted.expect("the relayed handshake is good");
        garbage_after_handshake(raw, &conn, rng, "to the listener");
        return;
    }
    let mut raw = Raw::connect(&address);
    raw.set_read_timeout(PATIENCE);
    let seed = rng.next_u64();
    let old_answer = old_answer.to_vec();
    let peer = std::thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut challenge = [0u8; CHALLENGE_LEN];
        match misdeed {
            ClientMisdeed::Leave => return,
            ClientMisdeed::Garbage => {
                // Fewer bytes than an answer: the listener sees it cut short.
                let garbage = rng.bytes(DIGEST_LEN - 1);
                let _ = raw.write_all(&garbage);
                return;
            }
            _ => raw.read_exact(&mut challenge).unwrap(),
        }
        let cut = 1 + rng.below(DIGEST_LEN as u64 - 1) as usize;
        let answer: Vec<u8> = match misdeed {
            ClientMisdeed::ShortAnswer | ClientMisdeed::ShortAnswerAndStall => {
                (0..cut).map(|_| rng.byte()).collect()
            }
            ClientMisdeed::WrongDigest => (0..DIGEST_LEN).map(|_| rng.byte()).collect(),
            ClientMisdeed::HugeHeader => {
                let mut a = u32::MAX.to_le_bytes().to_vec();
                a.resize(DIGEST_LEN, 0xff);
                a
            }
            ClientMisdeed::Replay => old_answer,
            _ => unreachable!(),
        };
        raw.write_all(&answer).unwrap();
        match misdeed {
            ClientMisdeed::ShortAnswer => {}
            ClientMisdeed::ShortAnswerAndStall => raw.drain(),
            _ => {
                let mut verdict = [0u8; VERDICT_LEN];
                raw.read_exact(&mut verdict).unwrap();
                assert_eq!(&verdict, b"#FAILURE#", "{misdeed:?}");
            }
        }
    });
    let result = listener.accept();
    match (misdeed, &result) {
        (
            ClientMisdeed::Leave | ClientMisdeed::Garbage | ClientMisdeed::ShortAnswer,
            Err(Error::Protocol(_)),
        )
        | (ClientMisdeed::ShortAnswerAndStall, Err(Error::Timeout))
        | (
            ClientMisdeed::WrongDigest | ClientMisdeed::HugeHeader | ClientMisdeed::Replay,
            Err(Error::AuthenticationFailed),
        ) => {}
        _ => panic!("{misdeed:?}: accept gave {result:?}"),
    }
    drop(result);
    peer.join().unwrap();
}

/// A good client is still served, and its connection works.
fn still_serves(listener: &std::sync::Arc<Listener>) {
    let address = listener.address().clone();
    let client = std::thread::spawn(move || {
        let conn = Client::connect(address, Some(KEY)).unwrap();
        conn.send(&42u64).unwrap();
    });
    let conn = listener
        .accept()
        .expect("a good client after the hostile ones");
    assert_eq!(conn.recv::<u64>().unwrap(), 42);
    client.join().unwrap();
}

#[test]
fn hostile_clients_get_a_typed_error_and_the_listener_serves_the_next() {
    for transport in transports() {
        for seed in procs_testkit::fuzz_seeds(3) {
            within(&format!("{transport:?}, seed {seed}"), HANG, move || {
                let mut rng = Rng::new(seed);
                let listener = std::sync::Arc::new(listen(transport));
                // An answer that a good client gave to an earlier challenge, to replay.
                let l = listener.clone();
                let (_raw, old_answer, accepted) =
                    good_raw_client(transport, &listener.address().clone(), move || l.accept());
                accepted.unwrap();
                for _ in 0..24 {
                    let misdeed = CLIENT_MISDEEDS[rng.below(CLIENT_MISDEEDS.len() as u64) as usize];
                    hostile_client(transport, &listener, misdeed, &old_answer, &mut rng);
                    still_serves(&listener);
                }
            });
        }
    }
}

/// What a hostile listener does to a client.
#[derive(Debug, Clone, Copy)]
enum ListenerMisdeed {
    /// Accepts and closes at once.
    Leave,
    /// Sends garbage of a challenge's length or more, and leaves.
    Garbage,
    /// Sends part of a challenge and leaves.
    ShortChallenge,
    /// Sends part of a challenge and stalls.
    ShortChallengeAndStall,
    /// Sends a challenge, reads the answer, and sends a garbled verdict.
    GarbledVerdict,
    /// Sends a challenge, reads the answer, and turns it down.
    Failure,
    /// Welcomes the client and answers its challenge with a wrong digest.
    WrongDigest,
    /// Welcomes the client and answers its challenge with a 4 GiB length header and garbage.
    HugeHeader,
    /// Welcomes the client and answers its challenge with an old answer of a client.
    Replay,
    /// Relays a good handshake from a real listener, then sends hostile frames.
    GarbageAfterHandshake,
}

const LISTENER_MISDEEDS: [ListenerMisdeed; 10] = [
    ListenerMisdeed::Leave,
    ListenerMisdeed::Garbage,
    ListenerMisdeed::ShortChallenge,
    ListenerMisdeed::ShortChallengeAndStall,
    ListenerMisdeed::GarbledVerdict,
    ListenerMisdeed::Failure,
    ListenerMisdeed::WrongDigest,
    ListenerMisdeed::HugeHeader,
    ListenerMisdeed::Replay,
    ListenerMisdeed::GarbageAfterHandshake,
];

/// Plays `misdeed` against a real `Client` and checks what `connect_timeout` makes of it.
fn hostile_listener(
    transport: Transport,
    real: &std::sync::Arc<Listener>,
    misdeed: ListenerMisdeed,
    old_answer: &[u8],
    rng: &mut Rng,
) {
    let (server, address) = RawServer::bind(transport, "hostile");
    let client = std::thread::spawn(move || Client::connect_timeout(address, Some(KEY), HANDSHAKE));
    let mut raw = server.accept();
    raw.set_read_timeout(PATIENCE);
    if let ListenerMisdeed::GarbageAfterHandshake = misdeed {
        let l = real.clone();
        let accepted = std::thread::spawn(move || l.accept());
        let mut upstream = Raw::connect(&real.address().clone());
        relay_handshake(&mut upstream, &mut raw);
        accepted
            .join()
            .unwrap()
            .expect("the relayed handshake is good");
        let conn = client
            .join()
            .unwrap()
            .expect("the relayed client is welcome");
        garbage_after_handshake(raw, &conn, rng, "to the client");
        return;
    }
    let mut challenge = b"#CHALLENGE#".to_vec();
    challenge.extend((0..32).map(|_| rng.byte()));
    match misdeed {
        ListenerMisdeed::Leave => {}
        ListenerMisdeed::Garbage => {
            let mut garbage = rng.bytes(200);
            garbage.resize(garbage.len().max(CHALLENGE_LEN), rng.byte());
            garbage[0] = b'!';
            let _ = raw.write_all(&garbage);
        }
        ListenerMisdeed::ShortChallenge | ListenerMisdeed::ShortChallengeAndStall => {
            let cut = 1 + rng.below(CHALLENGE_LEN as u64 - 1) as usize;
            raw.write_all(&challenge[..cut]).unwrap();
            if let ListenerMisdeed::ShortChallengeAndStall = misdeed {
                raw.drain();
            }
        }
        _ => {
            raw.write_all(&challenge).unwrap();
            let mut answer = [0u8; DIGEST_LEN];
            raw.read_exact(&mut answer).unwrap();
            match misdeed {
                ListenerMisdeed::GarbledVerdict => {
                    let mut verdict = rng.bytes(VERDICT_LEN);
                    verdict.resize(VERDICT_LEN, 0);
                    verdict[0] = b'!';
                    raw.write_all(&verdict).unwrap();
                }
                ListenerMisdeed::Failure => raw.write_all(b"#FAILURE#").unwrap(),
                _ => {
                    raw.write_all(b"#WELCOME#").unwrap();
                    let mut theirs = [0u8; CHALLENGE_LEN];
                    raw.read_exact(&mut theirs).unwrap();
                    assert_eq!(&theirs[..11], b"#CHALLENGE#");
                    let digest: Vec<u8> = match misdeed {
                        ListenerMisdeed::WrongDigest => {
                            (0..DIGEST_LEN).map(|_| rng.byte()).collect()
                        }
                        ListenerMisdeed::HugeHeader => {
                            let mut d = u32::MAX.to_le_bytes().to_vec();
                            d.resize(DIGEST_LEN, 0xff);
                            d
                        }
                        ListenerMisdeed::Replay => old_answer.to_vec(),
                        _ => unreachable!(),
                    };
                    raw.write_all(&digest).unwrap();
                    let mut verdict = [0u8; VERDICT_LEN];
                    raw.read_exact(&mut verdict).unwrap();
                    assert_eq!(&verdict, b"#FAILURE#", "{misdeed:?}");
                }
            }
        }
    }
    drop(raw);
    let result = client.join().unwrap();
    match (misdeed, &result) {
        (
            ListenerMisdeed::Leave
            | ListenerMisdeed::Garbage
            | ListenerMisdeed::ShortChallenge
            | ListenerMisdeed::GarbledVerdict,
            Err(Error::Protocol(_)),
        )
        | (ListenerMisdeed::ShortChallengeAndStall, Err(Error::Timeout))
        | (
            ListenerMisdeed::Failure
            | ListenerMisdeed::WrongDigest
            | ListenerMisdeed::HugeHeader
            | ListenerMisdeed::Replay,
            Err(Error::AuthenticationFailed),
        ) => {}
        _ => panic!("{misdeed:?}: connect gave {result:?}"),
    }
}

#[test]
fn hostile_listeners_give_the_client_a_typed_error() {
    for transport in transports() {
        for seed in procs_testkit::fuzz_seeds(6).skip(3) {
            within(&format!("{transport:?}, seed {seed}"), HANG, move || {
                let mut rng = Rng::new(seed);
                // A real listener, for the good handshakes that the hostile one relays.
                let real = std::sync::Arc::new(listen(transport));
                let l = real.clone();
                let (_raw, old_answer, accepted) =
                    good_raw_client(transport, &real.address().clone(), move || l.accept());
                accepted.unwrap();
                for _ in 0..24 {
                    let misdeed =
                        LISTENER_MISDEEDS[rng.below(LISTENER_MISDEEDS.len() as u64) as usize];
                    hostile_listener(transport, &real, misdeed, &old_answer, &mut rng);
                }
                still_serves(&real);
            });
        }
    }
}
