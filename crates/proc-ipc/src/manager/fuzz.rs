//! A seeded fuzz test of the server's request decoding, run with the unit tests (and so in
//! CI): garbage in place of the handshake, garbage in place of the hello, random and mutated
//! request frames, frames that claim up to 4 GiB, requests for unknown objects and
//! operations of the wrong kind.
//!
//! Each must be answered with an error or a closed connection, and afterwards the server
//! must still serve a normal proxy, with its memory bounded. The generator is a xorshift
//! with a fixed seed per test (moved by `PROCS_FUZZ_SEED`, which the soak's fuzz leg sets
//! afresh: `procs_testkit::fuzz_seed`), so that a failure replays; the server runs on a
//! thread of the test process, so that the test can speak the wire types and the handshake
//! directly.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use proc_core::{Error, Result, codec};

use super::Manager;
use super::server::{ROOT, Server};
use super::wire::{
    Batch, Bytes, Failure, Invalid, Kind, MAX_BATCH, Op, Owner, Pairs, Reply, Request, Response,
};
use crate::listener::{Side, authenticate};
use crate::{Address, Client};

const KEY: &[u8] = b"fuzz key";

/// How long one read waits for the server: a guard that turns a hung server into a failure
/// with a message, not a timing assertion.
const HANG: Duration = Duration::from_secs(60);

/// The largest growth of the resident memory that the test accepts.
const MEMORY_BOUND: u64 = 256 << 20;

/// What the server sends first on a connection: the magic and a 32-byte nonce.
const CHALLENGE_LEN: usize = 11 + 32;

/// The length of the answer the server waits for in the handshake.
const DIGEST_LEN: usize = 32;

/// A xorshift64 generator: small, deterministic, good enough for fuzzing.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn bytes(&mut self, max: usize) -> Bytes {
        let len = self.below(max as u64 + 1) as usize;
        (0..len).map(|_| self.byte()).collect()
    }

    fn timeout(&mut self) -> Option<Duration> {
        match self.below(3) {
            0 => None,
            1 => Some(Duration::ZERO),
            _ => Some(Duration::new(self.next(), self.below(1_000_000_000) as u32)),
        }
    }

    /// One of four owners, so that a lock taken by one is sometimes released by the same.
    fn owner(&mut self) -> Owner {
        Owner {
            client: self.below(2),
            thread: self.below(2),
        }
    }

    fn index(&mut self) -> i64 {
        self.next() as i64
    }

    fn list(&mut self) -> Batch {
        let mut batch = Batch::default();
        for _ in 0..self.below(4) {
            batch.push(&self.bytes(8));
        }
        batch
    }

    fn pairs(&mut self) -> Pairs {
        let mut pairs = Pairs::default();
        for _ in 0..self.below(4) {
            pairs.push(&self.bytes(8), &self.bytes(8));
        }
        pairs
    }

    fn kind(&mut self) -> Kind {
        match self.below(13) {
            0 => Kind::Dict,
            1 => Kind::List,
            2 => Kind::Namespace,
            3 => Kind::Queue {
                maxsize: self.next(),
            },
            4 => Kind::Lock,
            5 => Kind::RLock,
            6 => Kind::Semaphore {
                value: self.next() as u32,
                bound: self.one_in(2).then(|| self.next() as u32),
            },
            7 => Kind::Event,
            8 => Kind::Condition,
            9 => Kind::Barrier {
                parties: self.below(3) as u32,
            },
            10 => Kind::Value(self.bytes(8)),
            11 => Kind::Array(self.list()),
            _ => Kind::Custom {
                make: self.index(),
                state: self.bytes(8),
            },
        }
    }

    fn op(&mut self) -> Op {
        match self.below(40) {
            0 => Op::Len,
            1 => Op::Clear,
            2 => Op::Insert(self.bytes(8), self.bytes(8)),
            3 => Op::Get(self.bytes(8)),
            4 => Op::Remove(self.bytes(8)),
            5 => Op::Contains(self.bytes(8)),
            6 => Op::Keys,
            7 => Op::Values,
            8 => Op::Items,
            9 => Op::Update(self.pairs()),
            10 => Op::SetDefault(self.bytes(8), self.bytes(8)),
            11 => Op::UpdateWith {
                key: self.bytes(8),
                default: self.bytes(8),
                runner: self.index(),
                f: self.index(),
            },
            12 => Op::Push(self.bytes(8)),
            13 => Op::Pop(self.one_in(2).then(|| self.index())),
            14 => Op::At(self.index()),
            15 => Op::SetAt(self.index(), self.bytes(8)),
            16 => Op::InsertAt(self.index(), self.bytes(8)),
            17 => Op::RemoveValue(self.bytes(8)),
            18 => Op::Extend(self.list()),
            19 => Op::ToVec,
            20 => Op::Load,
            21 => Op::Store(self.bytes(8)),
            22 => Op::Put {
                item: self.bytes(8),
                timeout: self.timeout(),
            },
            23 => Op::Take {
                timeout: self.timeout(),
            },
            24 => Op::Full,
            25 => Op::Count,
            26 => Op::TaskDone,
            27 => Op::Join {
                timeout: self.timeout(),
            },
            28 => Op::Acquire {
                owner: self.owner(),
                timeout: self.timeout(),
            },
            29 => Op::Release {
                owner: self.owner(),
            },
            30 => Op::Set,
            31 => Op::Unset,
            32 => Op::IsSet,
            33 => Op::Wait {
                timeout: self.timeout(),
            },
            34 => Op::CondWait {
                owner: self.owner(),
                timeout: self.timeout(),
            },
            35 => Op::Notify {
                owner: self.owner(),
                n: self.next() as u32,
            },
            36 => Op::BarrierWait {
                timeout: self.timeout(),
            },
            37 => Op::Reset,
            38 => Op::Abort,
            _ => Op::Handle(self.bytes(8)),
        }
    }

    /// A request that names no object the server made: the root namespace or a random id.
    /// (Operations on objects of the wrong kind are the other test's.)
    fn request(&mut self) -> Request {
        match self.below(8) {
            0 => Request::Hello {
                client: self.next(),
                fingerprint: self.next(),
            },
            1 | 2 => Request::Create(self.kind()),
            3 => Request::Call {
                id: ROOT,
                op: self.op(),
            },
            _ => Request::Call {
                id: self.next(),
                op: self.op(),
            },
        }
    }

    /// A frame's payload: random bytes, or an encoded request with a few bytes changed.
    fn payload(&mut self) -> Vec<u8> {
        if self.one_in(3) {
            return self.bytes(48).to_vec();
        }
        let mut payload = codec::encode(&self.request()).expect("requests encode");
        if self.one_in(2) {
            for _ in 0..=self.below(3) {
                let at = self.below(payload.len() as u64 + 1) as usize;
                match self.below(4) {
                    0 if at < payload.len() => payload[at] ^= 1 << self.below(8),
                    1 if at < payload.len() => payload[at] = self.byte(),
                    2 => payload.truncate(at),
                    _ => payload.insert(at, self.byte()),
                }
            }
        }
        payload
    }

    /// A frame that the server would read as a request other than `Shutdown` (which a
    /// client may send, and which would end the test's server), with what it decodes to.
    fn frame(&mut self) -> (Vec<u8>, Result<Request>) {
        loop {
            let payload = self.payload();
            let decoded = codec::decode::<Request>(&payload);
            if !matches!(decoded, Ok(Request::Shutdown)) {
                return (payload, decoded);
            }
        }
    }

    /// Bytes that start a frame but never finish it: a cut header, or a header that claims
    /// more than follows. The server must close the connection once the stream ends.
    fn unfinished_frame(&mut self) -> Vec<u8> {
        if self.one_in(4) {
            return (0..1 + self.below(3)).map(|_| self.byte()).collect();
        }
        let body = self.bytes(64);
        let claim = match self.below(3) {
            0 => u32::MAX,
            1 => 1 << 30,
            _ => body.len() as u32 + 1 + self.below(1 << 20) as u32,
        };
        let mut bytes = claim.to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        bytes
    }
}

/// What the server must answer to a request, by kind of answer.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Decode,
    Protocol,
    UnknownObject,
    WrongKind,
    NoParties,
    BuildMismatch,
    Other,
}

fn outcome(answer: &Response) -> Outcome {
    match answer {
        Ok(_) => Outcome::Done,
        Err(Failure::Decode(_)) => Outcome::Decode,
        Err(Failure::Protocol(_)) => Outcome::Protocol,
        Err(Failure::Invalid(Invalid::UnknownObject)) => Outcome::UnknownObject,
        Err(Failure::Invalid(Invalid::WrongKind)) => Outcome::WrongKind,
        Err(Failure::Invalid(Invalid::NoParties)) => Outcome::NoParties,
        Err(Failure::BuildMismatch) => Outcome::BuildMismatch,
        Err(_) => Outcome::Other,
    }
}

/// Whether a dict (the root namespace is one) does `op` at once.
fn is_dict_op(op: &Op) -> bool {
    matches!(
        op,
        Op::Len
            | Op::Clear
            | Op::Insert(..)
            | Op::Get(_)
            | Op::Remove(_)
            | Op::Contains(_)
            | Op::Keys
            | Op::Values
            | Op::Items
            | Op::Update(_)
            | Op::SetDefault(..)
    )
}

/// What a connection that said hello with another build's fingerprint must get for a frame
/// that decodes to `request` (see [`XorShift::request`] for the ids it names).
fn expected(request: &Result<Request>) -> Outcome {
    match request {
        Err(_) => Outcome::Decode,
        Ok(Request::Hello { .. }) => Outcome::Protocol,
        Ok(Request::Create(Kind::Barrier { parties: 0 })) => Outcome::NoParties,
        // Building a user type names a function, which only the same build may do.
        Ok(Request::Create(Kind::Custom { .. })) => Outcome::BuildMismatch,
        Ok(Request::Create(_)) => Outcome::Done,
        Ok(Request::Call { id: ROOT, op }) if is_dict_op(op) => Outcome::Done,
        Ok(Request::Call {
            id: ROOT,
            op: Op::UpdateWith { .. },
        }) => Outcome::BuildMismatch,
        Ok(Request::Call { id: ROOT, .. }) => Outcome::WrongKind,
        Ok(Request::Call { .. }) => Outcome::UnknownObject,
        Ok(Request::Shutdown) => unreachable!("never sent"),
    }
}

/// A server on a thread of this process, on a loopback port.
struct Running {
    address: SocketAddr,
    thread: JoinHandle<Result<()>>,
}

impl Running {
    fn start() -> Running {
        proc_core::init();
        let server = Server::bind("127.0.0.1:0".parse().unwrap(), KEY).unwrap();
        let Address::Tcp(address) = *server.address() else {
            unreachable!("bound on tcp")
        };
        let thread = std::thread::spawn(move || server.run());
        Running { address, thread }
    }

    /// A connection that has not authenticated.
    fn raw(&self) -> TcpStream {
        let stream = TcpStream::connect(self.address).unwrap();
        // As the library's client does: the handshake's small writes go out at once.
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(HANG)).unwrap();
        stream
    }

    /// A connection that passed the handshake and has said nothing yet.
    fn authenticated(&self) -> TcpStream {
        let stream = self.raw();
        let stream = authenticate(stream, Some(KEY), Side::Client, Some(HANG)).unwrap();
        stream.set_read_timeout(Some(HANG)).unwrap();
        stream
    }

    /// An authenticated connection that said hello as a client of another build, so that
    /// no fuzzed request can make the server call a function by its offset.
    fn session(&self, rng: &mut XorShift) -> TcpStream {
        let mut stream = self.authenticated();
        let hello = Request::Hello {
            client: rng.next(),
            fingerprint: !proc_core::internal::fingerprint(),
        };
        assert!(send(&mut stream, &codec::encode(&hello).unwrap()));
        let answer = answer(&mut stream).expect("an answer to hello");
        assert!(matches!(answer, Ok(Reply::Hello { .. })), "{answer:?}");
        stream
    }

    /// A connection of the library's own client, after its hello.
    fn client(&self) -> crate::Connection {
        let conn = Client::connect(Address::Tcp(self.address), Some(KEY)).unwrap();
        conn.send(&Request::Hello {
            client: 7,
            fingerprint: proc_core::internal::fingerprint(),
        })
        .unwrap();
        let answer = conn.recv::<Response>().unwrap();
        assert!(matches!(answer, Ok(Reply::Hello { .. })), "{answer:?}");
        conn
    }

    /// A normal proxy works: the server survived.
    fn still_serves(&self) {
        let manager = Manager::connect(Address::Tcp(self.address), KEY).unwrap();
        let list = manager.list::<u32>().unwrap();
        list.push(1).unwrap();
        list.push(2).unwrap();
        assert_eq!(list.to_vec().unwrap(), [1, 2]);
    }

    /// Shuts the server down, and checks that a connection opened before serves nothing
    /// after.
    fn stop(self) {
        self.still_serves();
        let mut rng = XorShift(1);
        let mut open = self.session(&mut rng);
        Manager::connect(Address::Tcp(self.address), KEY)
            .unwrap()
            .shutdown()
            .unwrap();
        self.thread.join().unwrap().unwrap();
        let len = Request::Call {
            id: ROOT,
            op: Op::Len,
        };
        if send(&mut open, &codec::encode(&len).unwrap()) {
            assert!(answer(&mut open).is_none(), "a stopped server answered");
        }
    }
}

/// Sends one frame; false when the server has closed the connection.
fn send(stream: &mut TcpStream, payload: &[u8]) -> bool {
    send_raw(stream, &framed(payload))
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    codec::write_frame(&mut frame, payload).unwrap();
    frame
}

/// Sends bytes as they are; false when the server has closed the connection.
fn send_raw(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    match stream.write_all(bytes) {
        Ok(()) => true,
        Err(err) if gone(&err) => false,
        Err(err) => panic!("cannot write to the server: {err}"),
    }
}

/// Tells the server that no more bytes come, unless it has closed the connection already
/// (after a header it refused, say).
fn end_writing(stream: &TcpStream) {
    match stream.shutdown(Shutdown::Write) {
        Ok(()) => {}
        Err(err) if gone(&err) || err.kind() == io::ErrorKind::NotConnected => {}
        Err(err) => panic!("cannot end the stream: {err}"),
    }
}

fn gone(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// The server's next answer, or `None` when it closed the connection.
///
/// # Panics
///
/// When the server neither answers nor closes within [`HANG`], or answers with something
/// that is not a response.
fn answer(stream: &mut TcpStream) -> Option<Response> {
    match codec::read_frame(stream, codec::DEFAULT_MAX_FRAME) {
        Ok(frame) => Some(codec::decode::<Response>(&frame).expect("the server answers responses")),
        Err(Error::Closed) => None,
        Err(Error::Io(err)) if gone(&err) => None,
        Err(err) => panic!("the server neither answered nor closed the connection: {err}"),
    }
}

/// Reads until the server closes the connection, and gives what came.
fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if gone(&err) => return got,
            Err(err) => panic!("the server did not close the connection: {err}"),
        }
    }
}

fn resident() -> Option<u64> {
    proc_core::internal::resident_memory()
}

fn assert_bounded(before: Option<u64>) {
    if let (Some(before), Some(after)) = (before, resident()) {
        let growth = after.saturating_sub(before);
        assert!(
            growth < MEMORY_BOUND,
            "the resident memory grew by {} MiB",
            growth >> 20
        );
    }
}

/// Garbage in place of the handshake's answer: the challenge goes out, then a failure
/// when 32 bytes came, and the connection closes either way.
#[test]
fn garbage_instead_of_the_handshake_closes_the_connection() {
    let server = Running::start();
    let mut rng = XorShift(procs_testkit::fuzz_seed(0x9E37_79B9_7F4A_7C15));
    for _ in 0..300 {
        let mut stream = server.raw();
        // The server reads exactly the digest: more would be left unread, and the kernel
        // would then reset the connection instead of closing it.
        let garbage = rng.bytes(DIGEST_LEN);
        assert!(send_raw(&mut stream, &garbage));
        if garbage.len() < DIGEST_LEN {
            end_writing(&stream);
        }
        let got = until_closed(&mut stream);
        assert!(got.starts_with(b"#CHALLENGE#"), "{got:?}");
        assert_eq!(
            got.len(),
            CHALLENGE_LEN + 9 * usize::from(garbage.len() == DIGEST_LEN)
        );
        if garbage.len() == DIGEST_LEN {
            assert!(got.ends_with(b"#FAILURE#"), "{got:?}");
        }
    }
    server.stop();
}

/// An authenticated peer whose first frame is not a hello gets a protocol error and a
/// closed connection; a frame it never finishes closes the connection without an answer.
#[test]
fn garbage_instead_of_hello_closes_the_connection() {
    let server = Running::start();
    let mut rng = XorShift(procs_testkit::fuzz_seed(0xD1B5_4A32_D192_ED03));
    let mut answered = 0;
    for _ in 0..400 {
        let mut stream = server.authenticated();
        if rng.one_in(3) {
            assert!(send_raw(&mut stream, &rng.unfinished_frame()));
            end_writing(&stream);
            assert!(until_closed(&mut stream).is_empty());
            continue;
        }
        let (payload, decoded) = rng.frame();
        if matches!(decoded, Ok(Request::Hello { .. })) {
            continue;
        }
        assert!(send(&mut stream, &payload));
        let answer = answer(&mut stream).expect("an answer before the close");
        assert_eq!(
            outcome(&answer),
            Outcome::Protocol,
            "{decoded:?}: {answer:?}"
        );
        assert!(until_closed(&mut stream).is_empty());
        answered += 1;
    }
    assert!(answered > 100, "only {answered} frames were tried");
    server.stop();
}

/// Random and mutated request frames after a hello: each gets the answer its decoding
/// calls for, and a connection ends only when the client breaks the framing.
#[test]
fn fuzzed_requests_are_answered_with_errors() {
    let server = Running::start();
    let before = resident();
    let mut rng = XorShift(procs_testkit::fuzz_seed(0x5EED_0000_F022_CAFE));
    let mut frames = 0u32;
    let mut outcomes = std::collections::HashMap::new();
    while frames < 10_000 {
        let mut stream = server.session(&mut rng);
        // Some frames one by one, then some sent in one write, then the end of the session.
        for _ in 0..rng.below(64) {
            let (payload, decoded) = rng.frame();
            assert!(send(&mut stream, &payload));
            let answer = answer(&mut stream).expect("an answer");
            let expected = expected(&decoded);
            assert_eq!(outcome(&answer), expected, "{decoded:?}: {answer:?}");
            if let (Ok(Request::Create(_)), Ok(reply)) = (&decoded, &answer) {
                assert!(
                    matches!(reply, Reply::Count(id) if *id != ROOT),
                    "{reply:?}"
                );
            }
            *outcomes.entry(format!("{expected:?}")).or_insert(0u32) += 1;
            frames += 1;
        }
        let batch: Vec<_> = (0..rng.below(8)).map(|_| rng.frame()).collect();
        let mut bytes: Vec<u8> = batch.iter().flat_map(|(p, _)| framed(p)).collect();
        match rng.below(3) {
            0 => {
                // The client leaves after its answers.
                assert!(send_raw(&mut stream, &bytes));
                for (_, decoded) in &batch {
                    let answer = answer(&mut stream).expect("an answer");
                    assert_eq!(
                        outcome(&answer),
                        expected(decoded),
                        "{decoded:?}: {answer:?}"
                    );
                }
            }
            _ => {
                // The client breaks the framing: the answers to the whole frames come, then
                // the end of the connection.
                bytes.extend(rng.unfinished_frame());
                assert!(send_raw(&mut stream, &bytes));
                end_writing(&stream);
                for (_, decoded) in &batch {
                    let answer = answer(&mut stream).expect("an answer");
                    assert_eq!(
                        outcome(&answer),
                        expected(decoded),
                        "{decoded:?}: {answer:?}"
                    );
                }
                assert!(answer(&mut stream).is_none(), "a broken frame was answered");
            }
        }
        frames += batch.len() as u32;
    }
    // The generator reaches every kind of answer, not only decoding errors.
    for outcome in [
        "Done",
        "Decode",
        "Protocol",
        "UnknownObject",
        "WrongKind",
        "NoParties",
    ] {
        assert!(
            outcomes.contains_key(outcome),
            "no {outcome} in {outcomes:?}"
        );
    }
    server.still_serves();
    assert_bounded(before);
    server.stop();
}

/// `op` with every timeout zero, so that it answers at once on an object of any state.
fn at_once(op: Op) -> Op {
    let timeout = Some(Duration::ZERO);
    match op {
        Op::Put { item, .. } => Op::Put { item, timeout },
        Op::Take { .. } => Op::Take { timeout },
        Op::Join { .. } => Op::Join { timeout },
        Op::Acquire { owner, .. } => Op::Acquire { owner, timeout },
        Op::Wait { .. } => Op::Wait { timeout },
        Op::CondWait { owner, .. } => Op::CondWait { owner, timeout },
        Op::BarrierWait { .. } => Op::BarrierWait { timeout },
        op => op,
    }
}

/// Random operations on objects that exist, of every kind, from four owners: each is
/// answered (an object's logic never panics on what a client asks, which would close the
/// connection), and the objects keep working.
#[test]
fn fuzzed_operations_on_real_objects_are_answered() {
    let server = Running::start();
    let before = resident();
    let mut rng = XorShift(procs_testkit::fuzz_seed(0x94D0_49BB_1331_11EB));
    let mut answered = 0u32;
    let mut refused = 0u32;
    for _ in 0..40 {
        let mut stream = server.session(&mut rng);
        let mut ids = vec![ROOT];
        while ids.len() < 6 {
            let kind = match rng.kind() {
                // Building a user type is refused to another build; covered above.
                Kind::Custom { .. } => continue,
                kind => kind,
            };
            assert!(send(
                &mut stream,
                &codec::encode(&Request::Create(kind)).unwrap()
            ));
            if let Some(Ok(Reply::Count(id))) = answer(&mut stream) {
                ids.push(id);
            }
        }
        for _ in 0..250 {
            let id = ids[rng.below(ids.len() as u64) as usize];
            let request = Request::Call {
                id,
                op: at_once(rng.op()),
            };
            let asked = format!("{request:?}");
            assert!(send(&mut stream, &codec::encode(&request).unwrap()));
            match answer(&mut stream) {
                Some(Ok(_)) => answered += 1,
                Some(Err(Failure::Decode(_) | Failure::Protocol(_))) => {
                    panic!("{asked} did not decode")
                }
                Some(Err(_)) => refused += 1,
                None => panic!("the server closed the connection after {asked}"),
            }
        }
    }
    assert!(
        answered > 1000 && refused > 1000,
        "{answered} done, {refused} refused"
    );
    server.still_serves();
    assert_bounded(before);
    server.stop();
}

/// Frames that claim more than the limit (4 GiB - 1) or the limit itself (1 GiB) and then
/// stop: the connection closes, and the server allocates for the bytes that came, not for
/// the bytes claimed.
#[test]
fn a_frame_claiming_4_gib_closes_the_connection() {
    let server = Running::start();
    let before = resident();
    let mut rng = XorShift(procs_testkit::fuzz_seed(0xA076_1D64_78BD_642F));
    for claim in [u32::MAX, (1 << 30) + 1, u32::MAX / 2] {
        for hello in [false, true] {
            let mut stream = if hello {
                server.session(&mut rng)
            } else {
                server.authenticated()
            };
            // A peer may keep writing after its header; the server stops reading at once.
            let _ = send_raw(&mut stream, &claim.to_le_bytes());
            assert!(
                answer(&mut stream).is_none(),
                "a {claim}-byte frame was answered"
            );
        }
    }
    let body: Vec<u8> = (0..8 << 20).map(|_| rng.byte()).collect();
    for _ in 0..8 {
        let mut stream = server.session(&mut rng);
        let mut bytes = (1u32 << 30).to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        assert!(send_raw(&mut stream, &bytes));
        end_writing(&stream);
        assert!(answer(&mut stream).is_none(), "a cut frame was answered");
    }
    server.still_serves();
    assert_bounded(before);
    server.stop();
}

/// Requests through the library's own connection for objects that do not exist, or with
/// operations of another kind of object, are refused with the error that says so, and the
/// connection goes on. None of them waits, whatever its timeout.
#[test]
fn unknown_ids_and_wrong_kinds_are_refused() {
    let server = Running::start();
    let conn = server.client();
    let call = |request: &Request| {
        conn.send(request).unwrap();
        conn.recv::<Response>().unwrap()
    };
    let owner = Owner {
        client: 7,
        thread: 1,
    };
    let mut rng = XorShift(procs_testkit::fuzz_seed(0xBF58_476D_1CE4_E5B9));
    for _ in 0..200 {
        let id = rng.next();
        if id == ROOT {
            continue;
        }
        // Blocking operations without a timeout too: the id is checked first.
        let op = match rng.below(4) {
            0 => Op::Take { timeout: None },
            1 => Op::Acquire {
                owner,
                timeout: None,
            },
            2 => Op::BarrierWait { timeout: None },
            _ => rng.op(),
        };
        let answer = call(&Request::Call { id, op });
        assert_eq!(outcome(&answer), Outcome::UnknownObject, "{answer:?}");
    }
    let wrong: Vec<(Kind, Vec<Op>)> = vec![
        (
            Kind::Dict,
            vec![
                Op::Push(Bytes::from(vec![1])),
                Op::Take { timeout: None },
                Op::Handle(Bytes::from(vec![])),
            ],
        ),
        (
            Kind::List,
            vec![
                Op::Insert(Bytes::from(vec![1]), Bytes::from(vec![2])),
                Op::Acquire {
                    owner,
                    timeout: None,
                },
            ],
        ),
        (
            Kind::Queue { maxsize: 1 },
            vec![
                Op::Get(Bytes::from(vec![1])),
                Op::Load,
                Op::Wait { timeout: None },
            ],
        ),
        (
            Kind::Lock,
            vec![
                Op::Put {
                    item: Bytes::from(vec![1]),
                    timeout: None,
                },
                Op::Push(Bytes::from(vec![1])),
            ],
        ),
        (Kind::RLock, vec![Op::Notify { owner, n: 1 }, Op::TaskDone]),
        (
            Kind::Semaphore {
                value: 0,
                bound: None,
            },
            vec![Op::CondWait {
                owner,
                timeout: None,
            }],
        ),
        (
            Kind::Event,
            vec![
                Op::Acquire {
                    owner,
                    timeout: None,
                },
                Op::Len,
            ],
        ),
        (
            Kind::Condition,
            vec![Op::BarrierWait { timeout: None }, Op::Keys],
        ),
        (
            Kind::Barrier { parties: 2 },
            vec![Op::Set, Op::Take { timeout: None }],
        ),
        (
            Kind::Value(Bytes::from(vec![1])),
            vec![Op::Push(Bytes::from(vec![1])), Op::Join { timeout: None }],
        ),
        (
            Kind::Array({
                let mut items = Batch::default();
                items.push(&[1]);
                items
            }),
            vec![Op::Push(Bytes::from(vec![1])), Op::Pop(None), Op::Clear],
        ),
        // A function's offset is looked at only on a dict; elsewhere the kind is wrong.
        (
            Kind::List,
            vec![Op::UpdateWith {
                key: Bytes::from(vec![]),
                default: Bytes::from(vec![]),
                runner: 1,
                f: 1,
            }],
        ),
    ];
    for (kind, ops) in wrong {
        let what = format!("{kind:?}");
        let id = match call(&Request::Create(kind)) {
            Ok(Reply::Count(id)) => id,
            other => panic!("{what} was not made: {other:?}"),
        };
        for op in ops {
            let asked = format!("{op:?} on {what}");
            let answer = call(&Request::Call { id, op });
            assert_eq!(outcome(&answer), Outcome::WrongKind, "{asked}: {answer:?}");
        }
    }
    // The connection still works for a right call.
    let answer = call(&Request::Call {
        id: ROOT,
        op: Op::Len,
    });
    assert!(matches!(answer, Ok(Reply::Count(_))), "{answer:?}");
    drop(conn);
    server.stop();
}

/// Bulk requests of more entries than one call carries are refused before the server
/// stores any of them, and the connection goes on. The entries are empty, one byte each on
/// the wire, which would cost the server a 24-byte item each without the bound (a frame of
/// 1 GiB of them, 24 GiB); here that would be some 400 MiB beyond the memory bound.
#[test]
fn bulk_requests_of_too_many_entries_are_refused() {
    let server = Running::start();
    let conn = server.client();
    let before = resident();
    let call = |request: &Request| {
        conn.send(request).unwrap();
        conn.recv::<Response>().unwrap()
    };
    let refused = |answer: Response| match answer {
        Err(Failure::Protocol(message)) => assert!(message.contains("split"), "{message}"),
        other => panic!("a request over the bound was answered {other:?}"),
    };
    let mut items = Batch::default();
    for _ in 0..=MAX_BATCH {
        items.push(&[]);
    }
    let mut pairs = Pairs::default();
    for _ in 0..=MAX_BATCH / 2 {
        pairs.push(&[], &[]);
    }
    let Ok(Reply::Count(list)) = call(&Request::Create(Kind::List)) else {
        panic!("no list")
    };
    refused(call(&Request::Call {
        id: list,
        op: Op::Extend(items.clone()),
    }));
    refused(call(&Request::Call {
        id: ROOT,
        op: Op::Update(pairs),
    }));
    refused(call(&Request::Create(Kind::Array(items))));
    for id in [list, ROOT] {
        let answer = call(&Request::Call { id, op: Op::Len });
        assert!(matches!(answer, Ok(Reply::Count(0))), "{answer:?}");
    }
    assert_bounded(before);
    drop(conn);
    server.stop();
}

/// A call (or a create) before hello is refused and the connection closed, since the
/// server does not know who the client is.
#[test]
fn a_call_before_hello_is_refused() {
    let server = Running::start();
    for request in [
        Request::Call {
            id: ROOT,
            op: Op::Len,
        },
        Request::Create(Kind::List),
        // Not even a stop comes before hello.
        Request::Shutdown,
    ] {
        let conn = Client::connect(Address::Tcp(server.address), Some(KEY)).unwrap();
        conn.send(&request).unwrap();
        let answer = conn.recv::<Response>().unwrap();
        assert_eq!(outcome(&answer), Outcome::Protocol, "{answer:?}");
        assert!(matches!(conn.recv::<Response>(), Err(Error::Closed)));
    }
    server.stop();
}
