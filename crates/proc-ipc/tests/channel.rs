//! Process channels that disconnect: a receiver learns that its producers are gone — ended,
//! dropped their senders, or were killed — without a sentinel, after the items they sent;
//! a sender learns that every receiver is gone. Real processes under every start method.

use std::time::Duration;

use proc_core::Process;
use proc_ipc::{GetError, PutError, Receiver, Sender, bounded, channel};
#[cfg(unix)]
use procs_testkit::{OwnerTable, PATIENCE};
use procs_testkit::{builder, each_method, eventually};

fn produce((tx, from, n): (Sender<u32>, u32, u32)) {
    for i in from..from + n {
        tx.send(i).unwrap();
    }
}

/// Three producers, each with a clone of the sender; the parent drops its own. The
/// receiver's iterator ends once all three have exited, with every item.
#[test]
fn the_receiver_ends_when_every_producer_has_exited() {
    each_method(|method| {
        let (tx, rx) = channel::<u32>().unwrap();
        let children: Vec<_> = (0..3)
            .map(|k| {
                builder(method)
                    .spawn(produce, (tx.clone(), k * 100, 100))
                    .unwrap()
            })
            .collect();
        drop(tx);
        let mut got: Vec<u32> = rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, (0..300).collect::<Vec<_>>());
        assert!(matches!(rx.recv(), Err(GetError::Closed)));
        for mut child in children {
            child.join().unwrap();
        }
    });
}

fn produce_then_hang((tx, ready): (Sender<u32>, Sender<()>)) {
    for i in 0..10 {
        tx.send(i).unwrap();
    }
    ready.send(()).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The producer is SIGKILLed while it holds its sender: the receiver gets the ten items it
/// sent, then `Closed`, instead of waiting forever (Python's consumer hangs in `get()`).
#[test]
fn a_killed_producer_disconnects_the_channel() {
    each_method(|method| {
        let (tx, rx) = channel::<u32>().unwrap();
        let (ready_tx, ready_rx) = channel::<()>().unwrap();
        let child = builder(method)
            .spawn(produce_then_hang, (tx, ready_tx))
            .unwrap();
        ready_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        child.kill().unwrap();
        let got: Vec<u32> = rx.iter().collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert!(matches!(rx.recv(), Err(GetError::Closed)));
    });
}

fn take_one((rx, ready): (Receiver<u32>, Sender<u32>)) {
    let first = rx.recv().unwrap();
    ready.send(first).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The only receiver lives in a child that is killed: a sender blocked on a full bounded
/// channel, and every later send, gets its item back with `Closed`.
#[test]
fn a_killed_consumer_disconnects_the_senders() {
    each_method(|method| {
        let (tx, rx) = bounded::<u32>(1).unwrap();
        let (ready_tx, ready_rx) = channel::<u32>().unwrap();
        let child = builder(method).spawn(take_one, (rx, ready_tx)).unwrap();
        tx.send(1).unwrap();
        assert_eq!(ready_rx.recv_timeout(Duration::from_secs(30)).unwrap(), 1);
        tx.send(2).unwrap(); // fills the channel
        let blocked = {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send(3))
        };
        std::thread::sleep(Duration::from_millis(100));
        child.kill().unwrap();
        assert!(matches!(blocked.join().unwrap(), Err(PutError::Closed(3))));
        assert!(matches!(tx.send(4), Err(PutError::Closed(4))));
        assert!(tx.is_disconnected());
    });
}

/// A receiver dropped in this process disconnects the sender at once.
#[test]
fn dropping_every_receiver_disconnects_the_sender() {
    let (tx, rx) = channel::<String>().unwrap();
    let rx2 = rx.clone();
    drop(rx);
    tx.send("still one".into()).unwrap();
    drop(rx2);
    let err = tx.send("nobody".into()).unwrap_err();
    assert_eq!(err.into_inner(), "nobody");
}

fn forward((conn, out): (proc_ipc::Connection, Sender<u32>)) {
    // Takes a second sender over a connection while it runs, and uses both.
    let tx: Sender<u32> = conn.recv().unwrap();
    tx.send(1).unwrap();
    out.send(2).unwrap();
}

/// Ends travel to a running process over a connection, and count there.
#[test]
fn ends_travel_over_connections() {
    let (tx, rx) = channel::<u32>().unwrap();
    let (here, there) = proc_ipc::Pipe::duplex().unwrap();
    let mut child = Process::spawn(forward, (there, tx.clone())).unwrap();
    here.send(&tx).unwrap();
    drop(tx);
    let mut got: Vec<u32> = rx.iter().collect();
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
    child.join().unwrap();
}

fn slow_start((tx, pause): (Sender<u8>, Duration)) {
    std::thread::sleep(pause);
    tx.send(9).unwrap();
}

/// Handing the only sender to a child and dropping one's own does not close the channel
/// while the child is starting: the sender is counted in transit until it arrives.
#[test]
fn a_sender_in_transit_keeps_the_channel_open() {
    each_method(|method| {
        let (tx, rx) = channel::<u8>().unwrap();
        let mut child = builder(method)
            .spawn(slow_start, (tx, Duration::from_millis(300)))
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), 9);
        assert!(matches!(rx.recv(), Err(GetError::Closed)));
        child.join().unwrap();
    });
}

/// A receiver's `len`, `try_recv` and `recv_timeout` say what is there, and the iterator
/// form works through `&Receiver`.
#[test]
fn receivers_report_what_they_hold() {
    let (tx, rx) = bounded::<u8>(4).unwrap();
    assert!(matches!(rx.try_recv(), Err(GetError::Empty)));
    for i in 0..4 {
        tx.try_send(i).unwrap();
    }
    assert!(matches!(tx.try_send(4), Err(PutError::Full(4))));
    eventually("four items", || rx.len() == 4);
    assert_eq!(rx.recv_timeout(Duration::from_secs(1)).unwrap(), 0);
    drop(tx);
    let rest: Vec<u8> = (&rx).into_iter().collect();
    assert_eq!(rest, [1, 2, 3]);
    assert!(rx.is_empty());
    assert!(matches!(rx.try_recv(), Err(GetError::Closed)));
}

/// A second mapping of a channel's table of ends, as a process holding the channel maps it,
/// laid out as `channel::Table` is: a mark, then 256 slots of 48 bytes (the owner, then per
/// side the ends held, the ends in transit and when the last one left).
#[cfg(unix)]
fn ends_table(rx: &Receiver<u32>) -> OwnerTable {
    use proc_core::Handle;
    use proc_core::shared::Parkers;
    type Queue = (u32, Handle, u64, Parkers);
    let (a, b) = proc_core::Link::pair().unwrap();
    a.send(rx).unwrap();
    let (_, table, _, _): (Queue, Handle, u64, (u32, u64)) = b.recv().unwrap();
    OwnerTable::new(table, 8 + 256 * 48, 8, 256, 48)
}

/// Where a slot of the table counts the senders held.
#[cfg(unix)]
const SENDERS_HELD: usize = 16;

// Beyond crossbeam: an end's holder is its pid and its start time. A producer that was
// killed holding its sender, and whose pid the system gave to another process before the
// receiver looked, must not pass for that process: the channel disconnects while the new
// owner of the pid lives on. The slot is written as it reads once the pid went to the
// stranger (a test cannot make the system recycle a pid), before the kill, so that it never
// names a dead pid; with the pid alone, `recv` would time out instead.
#[cfg(unix)]
#[test]
fn a_killed_producer_disconnects_the_channel_though_its_pid_went_to_a_live_process() {
    each_method(|method| {
        let (tx, rx) = channel::<u32>().unwrap();
        let (ready_tx, ready_rx) = channel::<()>().unwrap();
        let mut child = builder(method)
            .spawn(produce_then_hang, (tx, ready_tx))
            .unwrap();
        ready_rx.recv_timeout(PATIENCE).unwrap();
        let stranger = ends_table(&rx).give_away_and_kill(&mut child, SENDERS_HELD, method);
        let got: Vec<u32> = (0..10)
            .map(|_| rx.recv_timeout(PATIENCE).unwrap())
            .collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        match rx.recv_timeout(PATIENCE) {
            Err(GetError::Closed) => {}
            other => panic!("the dead producer passed for the stranger: {other:?}"),
        }
        assert!(
            stranger.is_alive(),
            "the stranger must live on for the test to mean anything"
        );
    });
}
