//! Handles inside arguments and results reach the other process as working handles, under
//! every start method (what CPython's `reduction.DupFd`/`DupHandle` do for its pipes and
//! queues).

use std::io::{Read, Write};

use proc_core::{Error, Handle, Link, Process};
use procs_testkit::each_method;

fn write_through(writers: Vec<Handle>) -> usize {
    for (i, handle) in writers.into_iter().enumerate() {
        let mut pipe = std::io::PipeWriter::from(handle);
        pipe.write_all(format!("pipe {i}").as_bytes()).unwrap();
    }
    proc_core::getpid() as usize
}

#[test]
fn handles_in_arguments_work_in_the_child() {
    each_method(|method| {
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for _ in 0..5 {
            let (r, w) = std::io::pipe().unwrap();
            readers.push(r);
            writers.push(Handle::from(w));
        }
        let mut p = Process::builder()
            .start_method(method)
            .spawn(write_through, writers)
            .unwrap();
        p.join().unwrap();
        for (i, mut reader) in readers.into_iter().enumerate() {
            let mut text = String::new();
            // The parent's copies of the write ends went with the arguments, so this ends.
            reader.read_to_string(&mut text).unwrap();
            assert_eq!(text, format!("pipe {i}"));
        }
    });
}

fn make_pipe(message: String) -> Handle {
    let (reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(message.as_bytes()).unwrap();
    Handle::from(reader)
}

#[test]
fn handles_in_results_come_back_to_the_parent() {
    each_method(|method| {
        let mut p = Process::builder()
            .start_method(method)
            .spawn(make_pipe, "from the child".to_string())
            .unwrap();
        let mut reader = std::io::PipeReader::from(p.join().unwrap());
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "from the child");
    });
}

#[test]
fn a_handle_serializes_only_when_procs_sends_it() {
    let (_r, w) = std::io::pipe().unwrap();
    let handle = Handle::from(w);
    let err = proc_core::codec::encode(&handle).unwrap_err();
    assert!(matches!(err, Error::Decode(_)));
    assert!(
        err.to_string().contains("can only be sent by procs"),
        "{err}"
    );
    // A stray index decodes to an error, not to somebody else's descriptor.
    let bytes = proc_core::codec::encode(&3u32).unwrap();
    assert!(proc_core::codec::decode::<Handle>(&bytes).is_err());
}

#[test]
fn a_link_carries_handles_between_threads_of_one_process() {
    let (a, b) = Link::pair().unwrap();
    let (mut reader, writer) = std::io::pipe().unwrap();
    let sender = std::thread::spawn(move || a.send(&("pipe", Handle::from(writer))).unwrap());
    let (name, handle): (String, Handle) = b.recv().unwrap();
    sender.join().unwrap();
    assert_eq!(name, "pipe");
    std::io::PipeWriter::from(handle)
        .write_all(b"via link")
        .unwrap();
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    assert_eq!(text, "via link");
}

#[test]
fn threads_sharing_a_link_never_interleave_frames() {
    let (a, b) = Link::pair().unwrap();
    let a = std::sync::Arc::new(a);
    let senders: Vec<_> = (0..4u8)
        .map(|t| {
            let a = a.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    a.send(&vec![t; 100_000]).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..100 {
        let frame: Vec<u8> = b.recv().unwrap();
        assert_eq!(frame.len(), 100_000);
        assert!(frame.iter().all(|x| *x == frame[0]), "a torn frame");
    }
    for s in senders {
        s.join().unwrap();
    }
}

#[test]
fn a_panicking_serializer_leaves_no_handle_table_behind() {
    struct Bomb;
    impl serde::Serialize for Bomb {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            panic!("boom")
        }
    }
    let (a, _b) = Link::pair().unwrap();
    let (_r, w) = std::io::pipe().unwrap();
    let handle = Handle::from(w);
    let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.send(&(&handle, Bomb))));
    assert!(sent.is_err());
    // Outside of procs's sending, a handle still refuses to serialize.
    assert!(proc_core::codec::encode(&handle).is_err());
}

/// Linux reads small frames ahead (one `recvmsg` for several): an end holding frames it has
/// not returned yet would lose them by travelling, so it refuses to, until they are taken.
#[cfg(target_os = "linux")]
#[test]
fn a_link_with_frames_read_ahead_travels_only_once_they_are_taken() {
    let (a, b) = Link::pair().unwrap();
    let (carrier, far) = Link::pair().unwrap();
    a.send(&1u32).unwrap();
    a.send(&2u32).unwrap();
    assert_eq!(b.recv::<u32>().unwrap(), 1);
    let err = carrier.send(&b).unwrap_err();
    assert!(
        err.to_string().contains("receive them before sending"),
        "{err}"
    );
    assert_eq!(b.recv::<u32>().unwrap(), 2);
    carrier.send(&b).unwrap();
    let moved: Link = far.recv().unwrap();
    a.send(&3u32).unwrap();
    assert_eq!(moved.recv::<u32>().unwrap(), 3);
}
