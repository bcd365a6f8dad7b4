//! The model of `Queue`, `JoinableQueue` and `channel`.
//!
//! One or two producer processes put numbered items; consumer processes get them. Each item
//! is made from its producer and number alone (length and bytes), so a consumer recomputes
//! it and sees a torn item at once. A producer reports each item on its own pipe after `put`
//! returned, a consumer each item after `get` returned; a report cut short by the kill is no
//! report.
//!
//! - Every item reported put arrives (in a consumer's reports, or in what this process drains
//!   at the end), except one per consumer killed: the item it was taking, or had taken and not
//!   reported yet. When every consumer of a channel was killed, nothing is owed.
//! - No item arrives twice, and none torn.
//! - `Queue` and `JoinableQueue` are bounded (`maxsize` 1 to 16), so `put` itself writes the
//!   item and its return means the item is in the queue. (An unbounded `put` hands what does
//!   not fit to a feeder thread, whose items die with a killed process, as documented.)
//!   Consumers stop at a `None` that this process puts for each once the producers ended.
//! - `JoinableQueue`: consumers call `task_done` after each report; at the end at most one
//!   task per killed consumer is unfinished, and once this process marks those done `join`
//!   returns.
//! - `channel` (`bounded`, 1 to 16): this process keeps no end. Consumers stop at `Closed`,
//!   which must come once every producer ended or died; producers stop at `Closed` too, which
//!   only a channel whose receivers all died may give. The bound is the channel's own: a
//!   child killed before it took its end leaves that end counted for [`TRANSIT`] (10 s), so
//!   every survivor ends within that plus [`SLACK`]. Such kills, in the children's first
//!   milliseconds, are what makes a channel trial slow now and then.

use std::collections::HashSet;
use std::error::Error;
use std::time::Instant;

use procs::ipc::{Connection, Pipe, Receiver, Sender, TRANSIT};
use procs::{GetError, JoinableQueue, PutError, Queue};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::{Child, Kill, Reports, SLACK, Trial, spawn};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Queue,
    Joinable,
    Channel,
}

/// An item: who put it, its number, and bytes that both determine.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Item {
    producer: u32,
    seq: u32,
    payload: ByteBuf,
    /// FNV-1a of the three fields above.
    sum: u64,
}

fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn checksum(producer: u32, seq: u32, payload: &[u8]) -> u64 {
    let h = fnv(0xcbf2_9ce4_8422_2325, &producer.to_le_bytes());
    fnv(fnv(h, &seq.to_le_bytes()), payload)
}

/// The item `seq` of `producer`: mostly 0 to 2 KB, one in 64 of 300 KB, which the ring
/// carries as chunks (more than a quarter of its 1 MiB).
fn item(producer: u32, seq: u32) -> Item {
    let mut rng = crate::Rng::new(u64::from(producer) << 32 | u64::from(seq));
    let len = if rng.below(64) == 0 {
        300_000
    } else {
        rng.below(2048) as usize
    };
    let fill = rng.next() as u8;
    let payload: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
    Item {
        producer,
        seq,
        sum: checksum(producer, seq, &payload),
        payload: ByteBuf::from(payload),
    }
}

fn is_whole(got: &Item) -> bool {
    got.sum == checksum(got.producer, got.seq, &got.payload) && *got == item(got.producer, got.seq)
}

/// The side a child holds.
#[derive(Serialize, Deserialize)]
enum End {
    Queue(Queue<Option<Item>>),
    Joinable(JoinableQueue<Option<Item>>),
    Sender(Sender<Option<Item>>),
    Receiver(Receiver<Option<Item>>),
}

/// A consumer's report: producer, number, and 0 for a whole item, 1 for a torn one, 2 for
/// one that did not decode.
type Report = [u8; 9];

fn report(pipe: &Connection, producer: u32, seq: u32, flag: u8) {
    let mut message = [0; 9];
    message[..4].copy_from_slice(&producer.to_le_bytes());
    message[4..8].copy_from_slice(&seq.to_le_bytes());
    message[8] = flag;
    // The parent reads until the pipe is gone; a failed report only weakens the model.
    let _ = pipe.send_bytes(&message);
}

/// A producer: puts items `0..count`, reporting each after its `put` returned. Returns how
/// many it put (fewer only when a channel closed).
fn produce((end, producer, count, reports): (End, u32, u32, Connection)) -> u32 {
    for seq in 0..count {
        let it = Some(item(producer, seq));
        let put = match &end {
            End::Queue(q) => q.put(it),
            End::Joinable(q) => q.put(it),
            End::Sender(tx) => tx.send(it),
            End::Receiver(_) => unreachable!("a producer holds a sending end"),
        };
        match put {
            Ok(()) => report(&reports, producer, seq, 0),
            Err(PutError::Closed(_)) => return seq,
            Err(error) => panic!("put {seq} failed: {error}"),
        }
    }
    count
}

/// A consumer: gets until a `None` or `Closed`, reporting each item.
fn consume((end, reports): (End, Connection)) {
    loop {
        let got = match &end {
            End::Queue(q) => q.get(),
            End::Joinable(q) => q.get(),
            End::Receiver(rx) => rx.recv(),
            End::Sender(_) => unreachable!("a consumer holds a receiving end"),
        };
        let done = match got {
            Ok(Some(it)) => {
                let flag = if is_whole(&it) { 0 } else { 1 };
                report(&reports, it.producer, it.seq, flag);
                false
            }
            Ok(None) => true,
            Err(GetError::Closed) => return,
            Err(GetError::Failed(procs::Error::Decode(_))) => {
                report(&reports, u32::MAX, u32::MAX, 2);
                false
            }
            Err(error) => panic!("get failed: {error}"),
        };
        if let End::Joinable(q) = &end {
            q.task_done().expect("task_done after a get");
        }
        if done {
            return;
        }
    }
}

pub(crate) fn trial(t: &mut Trial, kind: Kind) -> Result<(), Box<dyn Error>> {
    let producers = 1 + t.rng.below(2) as u32;
    let consumers = if kind == Kind::Channel {
        1 + t.rng.below(2) as usize
    } else {
        2
    };
    let maxsize = 1 + t.rng.below(16) as usize;
    let count = 100 + t.rng.below(200) as u32;

    let (queue, joinable, channel) = match kind {
        Kind::Queue => (Some(Queue::with_maxsize(maxsize)?), None, None),
        Kind::Joinable => (None, Some(JoinableQueue::with_maxsize(maxsize)?), None),
        Kind::Channel => (None, None, Some(procs::ipc::bounded(maxsize)?)),
    };
    let sending = || match (&queue, &joinable, &channel) {
        (Some(q), _, _) => End::Queue(q.clone()),
        (_, Some(q), _) => End::Joinable(q.clone()),
        (_, _, Some((tx, _))) => End::Sender(tx.clone()),
        _ => unreachable!(),
    };
    let receiving = || match (&queue, &joinable, &channel) {
        (Some(q), _, _) => End::Queue(q.clone()),
        (_, Some(q), _) => End::Joinable(q.clone()),
        (_, _, Some((_, rx))) => End::Receiver(rx.clone()),
        _ => unreachable!(),
    };

    let started = Instant::now();
    let mut put_pipes = Vec::new();
    let mut prods: Vec<Child<u32>> = Vec::new();
    for p in 0..producers {
        let (reader, writer) = Pipe::simplex()?;
        prods.push(spawn(
            format!("producer {p}"),
            produce,
            (sending(), p, count, writer),
        )?);
        put_pipes.push(Reports::<9>::read(reader));
    }
    let mut got_pipes = Vec::new();
    let mut cons: Vec<Child<()>> = Vec::new();
    for c in 0..consumers {
        let (reader, writer) = Pipe::simplex()?;
        cons.push(spawn(
            format!("consumer {c}"),
            consume,
            (receiving(), writer),
        )?);
        got_pipes.push(Reports::<9>::read(reader));
    }
    // A channel's ends live in the children only, so that they alone decide when it closes.
    drop(channel);

    // One victim among all the children: the producers first, then the consumers.
    let victim = t.kill_at.and_then(|at| {
        if let Some(left) = at.checked_sub(started.elapsed()) {
            std::thread::sleep(left);
        }
        let v = t.rng.below((prods.len() + cons.len()) as u64) as usize;
        let process = match v.checked_sub(prods.len()) {
            None => &prods[v].process as &dyn Kill,
            Some(c) => &cons[c].process as &dyn Kill,
        };
        process.kill_alive().then_some(v)
    });
    let prod_victim = victim.filter(|&v| v < producers as usize);
    let cons_victim = victim.and_then(|v| v.checked_sub(producers as usize));

    // A channel's own bound: an end that a killed child never took counts for `TRANSIT`
    // (its death is seen within a look of 50 ms once it took it), so every survivor ends
    // within that plus the slack; a queue's survivors have the trial's bound.
    let limit = match kind {
        Kind::Channel => TRANSIT + SLACK,
        Kind::Queue | Kind::Joinable => t.hang,
    };
    let produced = t.join_all((started, limit), &mut prods, prod_victim);
    let closed_early = produced.iter().flatten().any(|&n| n < count);

    // The producers are done: one `None` per consumer ends the consumers of a queue.
    let ended = Instant::now();
    for _ in 0..consumers {
        let left = t.hang.saturating_sub(ended.elapsed());
        let put = match (&queue, &joinable) {
            (Some(q), _) => q.put_timeout(None, left),
            (_, Some(q)) => q.put_timeout(None, left),
            _ => Ok(()),
        };
        if put.is_err() {
            t.hangs += 1;
            t.fail("hang: this process could not put the end marker within the bound");
            break;
        }
    }
    let kills_before = t.kills;
    let consumed = t.join_all((ended, limit), &mut cons, cons_victim);
    let killed_consumers = (t.kills - kills_before) as usize;
    let survivors = consumed.iter().flatten().count();

    // What is left in a queue, the end markers of killed consumers among it.
    let mut drained = Vec::new();
    match (&queue, &joinable) {
        (Some(q), _) => {
            while let Ok(got) = q.get_nowait() {
                drained.extend(got);
            }
        }
        (_, Some(q)) => {
            while let Ok(got) = q.get_nowait() {
                drained.extend(got);
                let _ = q.task_done();
            }
        }
        _ => {}
    }

    // The model.
    let mut must_arrive = HashSet::new();
    for pipe in put_pipes {
        for r in pipe.take(t) {
            let producer = u32::from_le_bytes(r[..4].try_into().unwrap());
            let seq = u32::from_le_bytes(r[4..8].try_into().unwrap());
            must_arrive.insert((producer, seq));
        }
    }
    let mut arrived = HashSet::new();
    let mut duplicates = 0;
    let mut torn = 0;
    let mut note = |producer: u32, seq: u32, whole: bool| {
        if !whole {
            torn += 1;
        } else if !arrived.insert((producer, seq)) {
            duplicates += 1;
        }
    };
    for pipe in got_pipes {
        for r in pipe.take(t) {
            let r: Report = r;
            let producer = u32::from_le_bytes(r[..4].try_into().unwrap());
            let seq = u32::from_le_bytes(r[4..8].try_into().unwrap());
            note(producer, seq, r[8] == 0);
        }
    }
    for it in &drained {
        note(it.producer, it.seq, is_whole(it));
    }
    if torn > 0 {
        t.bad += torn;
        t.fail(&format!("{torn} torn item(s)"));
    }
    if duplicates > 0 {
        t.bad += duplicates;
        t.fail(&format!("{duplicates} item(s) arrived twice"));
    }
    let missing = must_arrive.difference(&arrived).count();
    if survivors > 0 || kind != Kind::Channel {
        t.inside += missing.min(killed_consumers) as u64;
        let owed = missing.saturating_sub(killed_consumers);
        if owed > 0 {
            t.lost += owed as u64;
            let mut sample: Vec<_> = must_arrive.difference(&arrived).take(5).collect();
            sample.sort();
            t.fail(&format!(
                "{missing} item(s) reported put never arrived ({killed_consumers} consumer(s) \
                 killed may take one each), e.g. {sample:?}"
            ));
        }
        if closed_early {
            t.bad += 1;
            t.fail("a producer saw the channel closed while a receiver lived");
        }
    }
    if let Some(q) = &joinable {
        let unfinished = q.unfinished_tasks();
        if unfinished > killed_consumers {
            t.leaked += 1;
            t.fail(&format!(
                "{unfinished} task(s) unfinished after every survivor ended \
                 ({killed_consumers} consumer(s) killed may leave one each)"
            ));
        }
        for _ in 0..unfinished {
            let _ = q.task_done();
        }
        if q.join_timeout(t.hang).is_err() {
            t.hangs += 1;
            t.fail("hang: JoinableQueue::join did not return once every task was done");
        }
    }
    Ok(())
}
