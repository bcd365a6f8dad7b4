//! Pipes between processes, after CPython's `_TestConnection` (test_multiprocessing): values
//! and bytes both ways, end-of-file when the peer goes, garbage refused, connections handed to
//! a process that already runs.

use std::time::Duration;

use proc_core::{Error, Process};
use proc_ipc::{Connection, Pipe};
use procs_testkit::{PATIENCE, each_method};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Ping(u32),
    Text(String),
    Blob(Vec<u8>),
    Stop,
}

/// Answers every message until told to stop. (Not until end-of-file: a forked child inherits
/// the parent's end too, so it would wait for itself — as with Python's `fork`.)
fn answer(conn: Connection) -> u32 {
    let mut seen = 0;
    loop {
        match conn.recv::<Msg>() {
            Ok(Msg::Ping(n)) => conn.send(&Msg::Ping(n + 1)).unwrap(),
            Ok(Msg::Text(t)) => conn.send(&Msg::Text(t.chars().rev().collect())).unwrap(),
            Ok(Msg::Blob(b)) => conn.send_bytes(&b).unwrap(),
            Ok(Msg::Stop) => return seen,
            Err(e) => panic!("child: {e}"),
        }
        seen += 1;
    }
}

#[test]
fn ping_pong_both_ways() {
    each_method(|method| {
        let (here, there) = Pipe::duplex().unwrap();
        let mut child = Process::builder()
            .start_method(method)
            .spawn(answer, there)
            .unwrap();
        for n in 0..100 {
            here.send(&Msg::Ping(n)).unwrap();
            assert_eq!(here.recv::<Msg>().unwrap(), Msg::Ping(n + 1));
        }
        here.send(&Msg::Text("stressed".into())).unwrap();
        assert_eq!(here.recv::<Msg>().unwrap(), Msg::Text("desserts".into()));
        let blob: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        here.send(&Msg::Blob(blob.clone())).unwrap();
        assert_eq!(here.recv_bytes().unwrap(), blob);
        here.send(&Msg::Stop).unwrap();
        assert_eq!(child.join().unwrap(), 102);
    });
}

fn write_then_exit(conn: Connection) {
    conn.send(&"last words").unwrap();
}

#[test]
fn a_dead_peer_is_end_of_file_not_a_hang() {
    each_method(|method| {
        let (reader, writer) = Pipe::simplex().unwrap();
        let mut child = Process::builder()
            .start_method(method)
            .spawn(write_then_exit, writer)
            .unwrap();
        // Every wait is bounded: a regression fails here instead of stalling the suite.
        child.join_timeout(PATIENCE).unwrap();
        assert!(
            reader.poll(Some(PATIENCE)).unwrap(),
            "the last words arrive"
        );
        assert_eq!(reader.recv::<String>().unwrap(), "last words");
        assert!(
            reader.poll(Some(PATIENCE)).unwrap(),
            "the end of the stream arrives"
        );
        assert!(matches!(reader.recv::<String>(), Err(Error::Closed)));
        assert!(
            reader.poll(Some(Duration::ZERO)).unwrap(),
            "end-of-file is readable"
        );
    });
}

/// Says it is ready, then waits to be killed.
fn hold(conn: Connection) {
    conn.send(&"ready").unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_killed_peer_is_end_of_file() {
    each_method(|method| {
        let (here, there) = Pipe::duplex().unwrap();
        let mut child = Process::builder()
            .start_method(method)
            .spawn(hold, there)
            .unwrap();
        assert!(
            here.poll(Some(PATIENCE)).unwrap(),
            "the child says it is ready"
        );
        assert_eq!(here.recv::<String>().unwrap(), "ready");
        child.kill().unwrap();
        assert!(
            here.poll(Some(PATIENCE)).unwrap(),
            "the end of the stream arrives"
        );
        assert!(matches!(here.recv::<String>(), Err(Error::Closed)));
        assert!(child.join_timeout(PATIENCE).unwrap_err().signal().is_some() || cfg!(windows));
    });
}

/// Takes one message and ends without answering, leaving what else came unread.
fn leave_on_cue(conn: Connection) {
    let _ = conn.recv::<u8>();
}

/// `conn.recv` on another thread, waited for at most `PATIENCE`: a receive that hangs fails
/// the test instead of stalling the suite.
fn recv_in_time(conn: Connection) -> Result<u8, Error> {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(conn.recv::<u8>()));
    result
        .recv_timeout(PATIENCE)
        .expect("a receive from a dead peer returns")
}

#[test]
fn a_peer_that_dies_while_the_receive_spins_is_end_of_file() {
    // The receive starts right after the cue, so it spins while the peer ends: the end of
    // the stream, or the reset of a peer that died with bytes unread, must end the spin (or
    // the sleep after it) with `Closed`.
    each_method(|method| {
        for unread in [false, true] {
            let (here, there) = Pipe::duplex().unwrap();
            let mut child = Process::builder()
                .start_method(method)
                .spawn(leave_on_cue, there)
                .unwrap();
            here.send(&1u8).unwrap();
            if unread {
                // The peer may be gone before this is written: then it fails.
                let _ = here.send_bytes(&[7; 100_000]);
            }
            assert!(matches!(recv_in_time(here), Err(Error::Closed)));
            child.join_timeout(PATIENCE).unwrap();
        }
    });
}

/// Sends bytes that are no `u64`, then a good message.
fn send_garbage(conn: Connection) {
    conn.send_bytes(&[0xff, 0xff, 0xff]).unwrap();
    conn.send(&7u64).unwrap();
}

#[test]
fn garbage_is_an_error_for_that_call_only() {
    each_method(|method| {
        let (reader, writer) = Pipe::simplex().unwrap();
        let mut child = Process::builder()
            .start_method(method)
            .spawn(send_garbage, writer)
            .unwrap();
        assert!(matches!(reader.recv::<u64>(), Err(Error::Decode(_))));
        assert_eq!(reader.recv::<u64>().unwrap(), 7);
        child.join().unwrap();
    });
}

#[test]
fn an_oversized_frame_is_refused_before_allocation() {
    let (a, mut b) = Pipe::duplex().unwrap();
    b.set_max_message_size(1024);
    let sender = std::thread::spawn(move || a.send_bytes(&vec![0u8; 4096]));
    assert!(matches!(b.recv_bytes(), Err(Error::Protocol(_))));
    drop(b);
    let _ = sender.join().unwrap();
}

/// Receives a connection through another connection, then talks over it.
fn receive_a_connection(control: Connection) -> String {
    let extra: Connection = control.recv().unwrap();
    extra.send(&"through the handed-over end").unwrap();
    extra.recv::<String>().unwrap()
}

#[test]
fn a_connection_travels_to_a_running_process() {
    each_method(|method| {
        let (control, control_there) = Pipe::duplex().unwrap();
        let mut child = Process::builder()
            .start_method(method)
            .spawn(receive_a_connection, control_there)
            .unwrap();
        let (mine, theirs) = Pipe::duplex().unwrap();
        control.send(&theirs).unwrap();
        drop(theirs);
        assert_eq!(
            mine.recv::<String>().unwrap(),
            "through the handed-over end"
        );
        mine.send(&"thanks").unwrap();
        assert_eq!(child.join().unwrap(), "thanks");
    });
}

#[test]
fn wait_reports_the_ready_connections() {
    let pipes: Vec<(Connection, Connection)> = (0..4).map(|_| Pipe::duplex().unwrap()).collect();
    pipes[2].0.send(&2).unwrap();
    let readers: Vec<&dyn proc_ipc::Waitable> = pipes
        .iter()
        .map(|(_, b)| b as &dyn proc_ipc::Waitable)
        .collect();
    assert_eq!(
        proc_ipc::wait(&readers, Some(Duration::from_secs(20))).unwrap(),
        [2]
    );
    assert!(
        proc_ipc::wait(&readers[..2], Some(Duration::from_millis(1)))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn misuse_is_an_invalid_state() {
    let (reader, writer) = Pipe::simplex().unwrap();
    assert!(matches!(reader.send(&1), Err(Error::InvalidState(_))));
    assert!(matches!(writer.recv::<u8>(), Err(Error::InvalidState(_))));
    let (mut a, _b) = Pipe::duplex().unwrap();
    a.close();
    a.close();
    assert!(matches!(a.send(&1), Err(Error::InvalidState(_))));
}

#[test]
fn public_types_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Connection>();
    both::<Pipe>();
}
