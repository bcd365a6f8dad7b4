//! Hostile bytes in the wire format: a seeded fuzz of the frame reader (`codec::read_frame`),
//! of postcard decoding (`codec::decode`), and of the internal frames with a header and a
//! value (`Outgoing` / `Incoming`) over a real `Link` pair.
//!
//! Each input must give a value or a typed error (`Closed`, `Protocol`, `Decode`): never a
//! panic, a hang, or memory that grows with what a header claims rather than with what
//! arrived. The generator is a xorshift with fixed seeds (`procs_testkit::fuzz_seeds`: from 1,
//! or from `PROCS_FUZZ_SEED`, which the soak's fuzz leg sets afresh), so that a failure
//! replays from the seed its message names. The socket-level and handle-passing cases, which need raw Unix
//! sockets, are in `fuzz_sockets.rs`.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::time::Duration;

use proc_core::internal::Outgoing;
use proc_core::{Error, Handle, Link, codec};
use procs_testkit::{Rng, within};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How long one fuzz run may take before it counts as hung: a guard, not a timing assertion.
const HANG: Duration = Duration::from_secs(120);

/// The largest growth of the resident memory a run accepts: far below the gibibyte that the
/// hostile headers claim.
const MEMORY_BOUND: u64 = 256 << 20;

/// A reader that hands out its bytes in random pieces, now and then failing with
/// `Interrupted` as a signal would make a system call fail.
struct Dribble {
    bytes: Vec<u8>,
    at: usize,
    rng: Rng,
}

impl Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.rng.one_in(8) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let left = self.bytes.len() - self.at;
        let n = left.min(buf.len()).min(1 + self.rng.below(64) as usize);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn header(len: u32) -> [u8; 4] {
    len.to_le_bytes()
}

/// A stream of pieces, and the payloads a correct reader gives before it stops: every whole
/// frame up to the first piece that is not one.
fn hostile_stream(rng: &mut Rng, max: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut whole = true;
    for _ in 0..rng.below(5) {
        match rng.below(6) {
            // A well-formed frame.
            0 | 1 => {
                let payload = rng.bytes(80);
                if payload.len() > max {
                    whole = false;
                }
                stream.extend_from_slice(&header(payload.len() as u32));
                stream.extend_from_slice(&payload);
                if whole {
                    expected.push(payload);
                }
            }
            // Bytes that are no frame at all.
            2 => {
                stream.extend_from_slice(&rng.bytes(32));
                whole = false;
            }
            // A header that claims far more than follows: 4 GiB, past the limit, a gibibyte.
            3 => {
                let claim = match rng.below(4) {
                    0 => u32::MAX,
                    1 => u32::try_from(max + 1).unwrap_or(u32::MAX),
                    2 => 1 << 30,
                    _ => 100 + rng.below(1 << 20) as u32,
                };
                stream.extend_from_slice(&header(claim));
                stream.extend_from_slice(&rng.bytes(16));
                whole = false;
            }
            // A header cut short.
            4 => {
                let n = 1 + rng.below(3) as usize;
                stream.extend_from_slice(&header(rng.next_u64() as u32)[..n]);
                whole = false;
            }
            // A valid frame with a few bytes changed.
            _ => {
                let mut frame = header(rng.below(40) as u32).to_vec();
                frame.extend_from_slice(&rng.bytes(40));
                rng.mutate(&mut frame);
                stream.extend_from_slice(&frame);
                whole = false;
            }
        }
    }
    (stream, expected)
}

/// Every stream reads as its whole frames, then one `Closed` or `Protocol` error; never more
/// payload than the limit, and memory that follows the bytes, not the headers.
#[test]
fn read_frame_turns_hostile_streams_into_errors() {
    within("read_frame fuzz", HANG, || {
        let before = proc_core::internal::resident_memory();
        for seed in procs_testkit::fuzz_seeds(4000) {
            let mut rng = Rng::new(seed);
            let max = match rng.below(4) {
                0 => 0,
                1 => 16,
                2 => 1024,
                _ => codec::DEFAULT_MAX_FRAME,
            };
            let (bytes, expected) = hostile_stream(&mut rng, max);
            let clean = {
                // A stream of whole frames only ends in `Closed`.
                let mut total = 0;
                for payload in &expected {
                    total += 4 + payload.len();
                }
                total == bytes.len()
            };
            let mut reader = Dribble {
                bytes,
                at: 0,
                rng: Rng::new(seed ^ 0xdead_beef),
            };
            let mut got = Vec::new();
            let end = loop {
                match codec::read_frame(&mut reader, max) {
                    Ok(payload) => {
                        assert!(payload.len() <= max, "seed {seed}: a frame over the limit");
                        got.push(payload);
                        assert!(got.len() <= 5, "seed {seed}: more frames than were sent");
                    }
                    Err(e) => break e,
                }
            };
            assert!(
                matches!(end, Error::Closed | Error::Protocol(_)),
                "seed {seed}: {end:?}"
            );
            assert_eq!(got[..expected.len()], expected[..], "seed {seed}");
            if clean {
                assert_eq!(got, expected, "seed {seed}");
                assert!(matches!(end, Error::Closed), "seed {seed}: {end:?}");
            }
        }
        assert_memory_bounded(before);
    });
}

/// A header that claims 4 GiB, or a gibibyte that never comes, costs nothing.
#[test]
fn oversized_and_missing_frames_allocate_nothing_for_their_claims() {
    within("oversized headers", HANG, || {
        let before = proc_core::internal::resident_memory();
        for _ in 0..100 {
            let mut wire: &[u8] = &header(u32::MAX);
            let err = codec::read_frame(&mut wire, codec::DEFAULT_MAX_FRAME).unwrap_err();
            assert!(
                matches!(&err, Error::Protocol(m) if m.contains("exceeds the limit")),
                "{err:?}"
            );
            let mut claim = header((codec::DEFAULT_MAX_FRAME - 1) as u32).to_vec();
            claim.extend_from_slice(b"only this");
            let err =
                codec::read_frame(&mut claim.as_slice(), codec::DEFAULT_MAX_FRAME).unwrap_err();
            assert!(
                matches!(&err, Error::Protocol(m) if m.contains("9 of")),
                "{err:?}"
            );
        }
        assert_memory_bounded(before);
    });
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
enum Shape {
    Unit,
    Tuple(u16, i64),
    Struct { name: String, tags: Vec<String> },
    Nested(Option<Box<Shape>>),
}

/// Decodes `bytes` as a `T`: a value, or a `Decode` error.
fn decodes_or_fails<T: DeserializeOwned>(seed: u64, bytes: &[u8]) {
    match codec::decode::<T>(bytes) {
        Ok(_) => {}
        Err(Error::Decode(_)) => {}
        Err(other) => panic!("seed {seed}: decoding gave {other:?}"),
    }
}

/// Random bytes and mutated encodings, decoded as a handful of types: a value or a `Decode`
/// error, and lengths that claim billions of elements allocate nothing for them.
#[test]
fn decoding_garbage_is_a_value_or_a_decode_error() {
    within("decode fuzz", HANG, || {
        let before = proc_core::internal::resident_memory();
        let samples: Vec<Vec<u8>> = vec![
            codec::encode(&vec!["one".to_string(), "two".to_string()]).unwrap(),
            codec::encode(&(7u64, -3i32, Some(vec![1u8, 2, 3]))).unwrap(),
            codec::encode(&Shape::Struct {
                name: "s".into(),
                tags: vec!["a".into()],
            })
            .unwrap(),
            codec::encode(&Shape::Nested(Some(Box::new(Shape::Tuple(1, 2))))).unwrap(),
            codec::encode(&BTreeMap::from([("k".to_string(), 1u32)])).unwrap(),
            codec::encode(&('λ', 2.5f64, true)).unwrap(),
            // A length prefix of 2^63: a vector of that many elements, claimed.
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ];
        for seed in procs_testkit::fuzz_seeds(20_000) {
            let mut rng = Rng::new(seed);
            let bytes = if rng.one_in(2) {
                rng.bytes(24)
            } else {
                let mut b = samples[rng.below(samples.len() as u64) as usize].clone();
                rng.mutate(&mut b);
                if rng.one_in(4) {
                    b.truncate(rng.below(b.len() as u64 + 1) as usize);
                }
                b
            };
            decodes_or_fails::<Vec<String>>(seed, &bytes);
            decodes_or_fails::<(u64, i32, Option<Vec<u8>>)>(seed, &bytes);
            decodes_or_fails::<Shape>(seed, &bytes);
            decodes_or_fails::<BTreeMap<String, u32>>(seed, &bytes);
            decodes_or_fails::<(char, f64, bool)>(seed, &bytes);
            decodes_or_fails::<Vec<Vec<u64>>>(seed, &bytes);
        }
        assert_memory_bounded(before);
    });
}

/// Frames with a header of the caller's and a value, as the pool's workers speak them, over a
/// real link: the header is rewritten with garbage and the value decoded at the wrong offset,
/// as the wrong type, or as handles that never came. A value or a typed error, every time.
#[test]
fn outgoing_and_incoming_frames_survive_wrong_offsets_and_garbage() {
    within("Outgoing/Incoming fuzz", HANG, || {
        let (a, b) = Link::pair().unwrap();
        for seed in procs_testkit::fuzz_seeds(3000) {
            let mut rng = Rng::new(seed);
            let header = rng.bytes(12);
            let value = (
                rng.next_u64() as u32,
                String::from_utf8_lossy(&rng.bytes(20)).into_owned(),
            );
            let mut frame = Outgoing::encode(header.clone(), value.clone()).unwrap();
            assert!(!frame.has_handles());
            if rng.one_in(2) {
                // Garbage of the header's length, through both ways of rewriting it.
                let garbage: Vec<u8> = (0..header.len()).map(|_| rng.byte()).collect();
                if rng.one_in(2) {
                    frame.set_header(&garbage);
                } else {
                    frame.header_mut().copy_from_slice(&garbage);
                }
            }
            a.send_outgoing(&frame).unwrap();
            let got = b.recv_incoming().unwrap();
            assert_eq!(got.bytes().len(), frame.len(), "seed {seed}");
            let len = got.bytes().len();
            match rng.below(4) {
                // The right offset and type: the value itself.
                0 => {
                    let back = got.decode::<(u32, String)>(header.len()).unwrap();
                    assert_eq!(back, value, "seed {seed}");
                }
                // An offset past the end: a protocol error that says so.
                1 => {
                    let offset = len + 1 + rng.below(8) as usize;
                    let err = got.decode::<(u32, String)>(offset).unwrap_err();
                    assert!(matches!(err, Error::Protocol(_)), "seed {seed}: {err:?}");
                }
                // Handles that were never sent: none may come out of nowhere.
                2 => {
                    let offset = rng.below(len as u64 + 1) as usize;
                    match got.decode::<Vec<Handle>>(offset) {
                        Ok(handles) => assert!(handles.is_empty(), "seed {seed}"),
                        Err(Error::Decode(_)) => {}
                        Err(other) => panic!("seed {seed}: {other:?}"),
                    }
                }
                // Any offset, another type.
                _ => {
                    let offset = rng.below(len as u64 + 1) as usize;
                    match got.decode::<Shape>(offset) {
                        Ok(_) | Err(Error::Decode(_)) => {}
                        Err(other) => panic!("seed {seed}: {other:?}"),
                    }
                }
            }
        }
        // Raw garbage where a frame with a header and a value was expected.
        for seed in procs_testkit::fuzz_seeds(3000) {
            let mut rng = Rng::new(seed);
            let garbage = rng.bytes(40);
            a.send_bytes(&garbage).unwrap();
            let got = b.recv_incoming().unwrap();
            assert_eq!(got.bytes(), garbage, "seed {seed}");
            let offset = rng.below(garbage.len() as u64 + 3) as usize;
            match got.decode::<(u8, Vec<Handle>, Shape)>(offset) {
                Ok((_, handles, _)) => assert!(handles.is_empty(), "seed {seed}"),
                Err(Error::Decode(_) | Error::Protocol(_)) => {}
                Err(other) => panic!("seed {seed}: {other:?}"),
            }
        }
    });
}

/// A link whose limit is smaller than what arrives refuses the frame, and everything read
/// after (the stream is then out of step) is still a value or a typed error until the
/// writer's end closes.
#[test]
fn a_link_out_of_step_reads_garbage_as_errors_until_it_closes() {
    within("out-of-step link", HANG, || {
        for seed in procs_testkit::fuzz_seeds(300) {
            let mut rng = Rng::new(seed);
            let (a, mut b) = Link::pair().unwrap();
            b.set_max_frame(rng.below(32) as usize);
            for _ in 0..rng.below(6) {
                a.send_bytes(&rng.bytes(48)).unwrap();
            }
            drop(a);
            let mut reads = 0;
            loop {
                match b.recv::<Shape>() {
                    Ok(_) | Err(Error::Decode(_) | Error::Protocol(_)) => {}
                    Err(Error::Closed) => break,
                    Err(other) => panic!("seed {seed}: {other:?}"),
                }
                reads += 1;
                // Each read takes at least a header's four bytes of a stream of at most 6
                // frames of 52 bytes.
                assert!(reads <= 6 * 52 / 4 + 1, "seed {seed}: reads without end");
            }
        }
    });
}

fn assert_memory_bounded(before: Option<u64>) {
    if let (Some(before), Some(after)) = (before, proc_core::internal::resident_memory()) {
        assert!(
            after.saturating_sub(before) < MEMORY_BOUND,
            "resident memory grew from {before} to {after} bytes"
        );
    }
}
