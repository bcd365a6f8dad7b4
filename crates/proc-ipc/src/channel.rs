//! `channel` and `bounded`: process channels with crossbeam-channel's shape, whose ends
//! disconnect.
//!
//! A channel is a [`Queue`] plus a table of ends in shared memory: one slot per process, with
//! how many senders and receivers that process holds. A process that dies holding ends
//! stops counting at once (its pid is dead, or went to a process that started later: see
//! [`owner`]), so a receiver learns that its last producer crashed without a sentinel; an end
//! serialized for another process counts as "in transit" for its sender's process until the
//! other side takes it (or for [`TRANSIT`] at most, if it never arrives), so that handing the
//! only sender to a child and dropping one's own does not close the channel in between.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proc_core::internal::Deadline;
use proc_core::shared::{Instance, Segment};
use proc_core::{Error, Handle, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::owner::{self, Owner};
use crate::queue::Put;
use crate::{GetError, PutError, Queue};

/// How many processes at once can hold ends of one channel.
const SLOTS: usize = 256;

/// How long an end serialized for another process counts, at most, before it arrives.
pub const TRANSIT: Duration = Duration::from_secs(10);

/// How often a waiting end looks whether the other side is still there.
const LOOK: Duration = Duration::from_millis(50);

const MAGIC: u64 = u64::from_le_bytes(*b"procsCh3");

/// One process's ends, for one side.
#[repr(C)]
struct Count {
    /// Ends held by the process.
    held: AtomicU32,
    /// Ends it serialized that no process has taken yet.
    transit: AtomicU32,
    /// When it last serialized one, in milliseconds since the Unix epoch.
    since: AtomicU64,
}

#[repr(C)]
struct Slot {
    /// The process whose ends these are, by pid and start time.
    owner: Owner,
    sides: [Count; 2],
}

#[repr(C)]
struct Table {
    magic: AtomicU64,
    slots: [Slot; SLOTS],
}

const TABLE: usize = std::mem::size_of::<Table>();

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Sender = 0,
    Receiver = 1,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The table of a channel's ends, as this process maps it.
struct Ends {
    segment: Segment,
}

impl Ends {
    fn new() -> Result<Ends> {
        let ends = Ends {
            segment: Segment::anonymous(TABLE)?,
        };
        ends.table().magic.store(MAGIC, Ordering::Release);
        Ok(ends)
    }

    fn from_handle(handle: Handle) -> Result<Ends> {
        let ends = Ends {
            segment: Segment::from_handle(handle, TABLE)?,
        };
        if ends.table().magic.load(Ordering::Acquire) != MAGIC {
            return Err(Error::Decode(
                "not a channel: its table lacks the mark".into(),
            ));
        }
        Ok(ends)
    }

    fn table(&self) -> &Table {
        // SAFETY: the segment is page-aligned and `TABLE` bytes long (made so in `new`, and
        // mapped with that length in `from_handle`); `Table` is `repr(C)` of atomics only,
        // valid when zeroed and whatever bytes a peer wrote, so a shared reference is fine
        // while other processes change it; the mapping lives as long as `self`.
        unsafe { &*self.segment.as_ptr().cast::<Table>() }
    }

    /// This process's slot, claimed if it has none: a free one, or one of a dead process
    /// (a process with the pid of a dead one has a slot of its own, claimed afresh).
    fn slot(&self) -> Result<&Slot> {
        owner::claim(
            &self.table().slots,
            |slot| &slot.owner,
            |slot| {
                for count in &slot.sides {
                    count.held.store(0, Ordering::Release);
                    count.transit.store(0, Ordering::Release);
                }
            },
        )
        .ok_or(Error::InvalidState(
            "a channel's ends are held by too many processes at once (256)",
        ))
    }

    fn take(&self, side: Side) -> Result<()> {
        self.slot()?.sides[side as usize]
            .held
            .fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// This process's slot, if it has one.
    fn mine(&self) -> Option<&Slot> {
        owner::mine(&self.table().slots, |slot| &slot.owner)
    }

    fn give_back(&self, side: Side) {
        if let Some(slot) = self.mine() {
            let held = &slot.sides[side as usize].held;
            let _ = held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    /// Counts an end of `side` as on its way to another process; returns the slot it is
    /// counted in and the process it belongs to.
    fn send_off(&self, side: Side) -> Result<(usize, Instance)> {
        let slot = self.slot()?;
        let count = &slot.sides[side as usize];
        count.since.store(now_ms(), Ordering::Release);
        count.transit.fetch_add(1, Ordering::AcqRel);
        let index = self
            .table()
            .slots
            .iter()
            .position(|s| std::ptr::eq(s, slot))
            .expect("a slot of the table");
        Ok((index, Instance::me()))
    }

    /// An end of `side` sent off from slot `index` of process `from` has arrived. A slot
    /// that another process took over since (`from` died, even if its pid went on to the new
    /// owner) keeps its counts.
    fn arrived(&self, side: Side, index: usize, from: Instance) {
        if let Some(slot) = self.table().slots.get(index)
            && slot.owner.get() == Some(from)
        {
            let transit = &slot.sides[side as usize].transit;
            let _ = transit.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    /// Whether any live process holds an end of `side`, or has one on its way.
    fn any(&self, side: Side) -> bool {
        let now = now_ms();
        self.table().slots.iter().any(|slot| {
            let count = &slot.sides[side as usize];
            let held = count.held.load(Ordering::Acquire) > 0;
            let transit = count.transit.load(Ordering::Acquire) > 0
                && now.saturating_sub(count.since.load(Ordering::Acquire))
                    < TRANSIT.as_millis() as u64;
            // A slot being claimed holds nothing yet (its claimer takes its end after), and
            // has no owner.
            (held || transit) && slot.owner.alive()
        })
    }
}

/// One end of a channel in this process; its clones share it.
struct End {
    ends: Ends,
    side: Side,
}

impl End {
    fn new(ends: Ends, side: Side) -> Result<Arc<End>> {
        ends.take(side)?;
        Ok(Arc::new(End { ends, side }))
    }
}

impl Drop for End {
    fn drop(&mut self) {
        self.ends.give_back(self.side);
    }
}

/// What an end is on the wire. The table's handle is borrowed while it is written: a
/// handle is sent when the whole value is, so it must outlive the serialization.
#[derive(Serialize, Deserialize)]
struct Wire<Q, H> {
    queue: Q,
    table: H,
    slot: u64,
    /// The pid and start time of the process whose slot counts the end in transit.
    from: (u32, u64),
}

fn serialize_end<Q: Serialize, S: Serializer>(
    queue: &Q,
    end: &End,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let (slot, from) = end
        .ends
        .send_off(end.side)
        .map_err(proc_core::codec::ser_error)?;
    Wire {
        queue,
        table: end.ends.segment.handle(),
        slot: slot as u64,
        from: (from.pid, from.start),
    }
    .serialize(serializer)
}

fn deserialize_end<'de, Q: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
    side: Side,
) -> Result<(Q, Arc<End>), D::Error> {
    let wire = Wire::<Q, Handle>::deserialize(deserializer)?;
    let ends = Ends::from_handle(wire.table).map_err(proc_core::codec::de_error)?;
    let end = End::new(ends, side).map_err(proc_core::codec::de_error)?;
    let (pid, start) = wire.from;
    end.ends
        .arrived(side, wire.slot as usize, Instance { pid, start });
    Ok((wire.queue, end))
}

/// A new unbounded channel between processes: crossbeam-channel's `unbounded()`, on the
/// shared-memory ring of [`Queue`].
///
/// Both ends are `Clone + Serialize`: they travel to children, pool tasks and running
/// processes like queues do. [`Receiver::recv`] returns [`GetError::Closed`] once every
/// [`Sender`] in every process is dropped or its process has died — after the items sent
/// before; [`Sender::send`] gives the item back with [`PutError::Closed`] once every
/// receiver is gone. ([`Queue`] keeps Python's semantics, where anyone may put, so it
/// never disconnects.)
///
/// # Errors
///
/// [`Error::Io`] when the system has no shared memory to give.
///
/// # Examples
///
/// ```
/// use proc_core::Process;
/// use proc_ipc::Sender;
///
/// fn produce(tx: Sender<u32>) {
///     for i in 0..5 {
///         tx.send(i).unwrap();
///     }
/// } // the child's sender drops here: the channel disconnects
///
/// fn main() {
///     proc_core::init();
///     let (tx, rx) = proc_ipc::channel().unwrap();
///     let mut child = Process::spawn(produce, tx).unwrap(); // the only sender moves away
///     let got: Vec<u32> = rx.iter().collect(); // ends when the child's sender is gone
///     assert_eq!(got, [0, 1, 2, 3, 4]);
///     child.join().unwrap();
/// }
/// ```
#[doc(alias = "unbounded")]
pub fn channel<T: Serialize + DeserializeOwned>() -> Result<(Sender<T>, Receiver<T>)> {
    make(Queue::new()?)
}

/// A new channel that holds at most `cap` items (at least 1): crossbeam-channel's
/// `bounded(cap)`, without its rendezvous form for 0. `send` waits while it is full.
///
/// # Errors
///
/// [`Error::Io`] when the system has no shared memory to give.
///
/// # Examples
///
/// ```
/// let (tx, rx) = proc_ipc::bounded(1).unwrap();
/// tx.send('a').unwrap();
/// assert!(matches!(tx.try_send('b'), Err(proc_ipc::PutError::Full('b'))));
/// assert_eq!(rx.recv().unwrap(), 'a');
/// ```
pub fn bounded<T: Serialize + DeserializeOwned>(cap: usize) -> Result<(Sender<T>, Receiver<T>)> {
    make(Queue::with_maxsize(cap.max(1))?)
}

fn make<T>(queue: Queue<T>) -> Result<(Sender<T>, Receiver<T>)> {
    let ends = Ends::new()?;
    let other = Ends::from_handle(ends.segment.handle().try_clone()?)?;
    Ok((
        Sender {
            queue: queue.clone(),
            end: End::new(ends, Side::Sender)?,
        },
        Receiver {
            queue,
            end: End::new(other, Side::Receiver)?,
        },
    ))
}

/// The sending end of a [`channel`].
///
/// # Examples
///
/// ```
/// let (tx, rx) = proc_ipc::channel().unwrap();
/// let tx2 = tx.clone();
/// tx.send(1).unwrap();
/// tx2.send(2).unwrap();
/// drop((tx, tx2));
/// assert_eq!(rx.iter().collect::<Vec<i32>>(), [1, 2]);
/// ```
pub struct Sender<T> {
    queue: Queue<T>,
    end: Arc<End>,
}

/// The receiving end of a [`channel`].
///
/// # Examples
///
/// ```
/// let (tx, rx) = proc_ipc::channel::<u8>().unwrap();
/// drop(tx);
/// assert!(rx.recv().unwrap_err().is_closed());
/// ```
pub struct Receiver<T> {
    queue: Queue<T>,
    end: Arc<End>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            queue: self.queue.clone(),
            end: self.end.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver {
            queue: self.queue.clone(),
            end: self.end.clone(),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("queue", &self.queue)
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("queue", &self.queue)
            .finish()
    }
}

impl<T> Serialize for Sender<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_end(&self.queue, &self.end, serializer)
    }
}

impl<'de, T> Deserialize<'de> for Sender<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (queue, end) = deserialize_end(deserializer, Side::Sender)?;
        Ok(Sender { queue, end })
    }
}

impl<T> Serialize for Receiver<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_end(&self.queue, &self.end, serializer)
    }
}

impl<'de, T> Deserialize<'de> for Receiver<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (queue, end) = deserialize_end(deserializer, Side::Receiver)?;
        Ok(Receiver { queue, end })
    }
}

impl<T: Serialize + DeserializeOwned> Sender<T> {
    fn send_within(&self, item: T, deadline: Deadline, put: Put) -> Result<(), PutError<T>> {
        let mut item = item;
        loop {
            if !self.end.ends.any(Side::Receiver) {
                return Err(PutError::Closed(item));
            }
            let slice = deadline.slice(LOOK);
            let outcome = match put {
                Put::NoWait => self.queue.put_nowait(item),
                Put::Wait => self.queue.put_timeout(item, slice),
            };
            match outcome {
                Err(PutError::Timeout(back)) if !deadline.passed() => item = back,
                other => return other,
            }
        }
    }

    /// Sends an item, waiting while a bounded channel is full.
    ///
    /// # Errors
    ///
    /// [`PutError::Closed`] with the item when every receiver is gone (dropped, or its
    /// process died), [`PutError::Failed`] when it does not encode.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = proc_ipc::channel::<String>().unwrap();
    /// tx.send("hi".into()).unwrap();
    /// drop(rx);
    /// let err = tx.send("anyone?".into()).unwrap_err();
    /// assert!(matches!(err, proc_ipc::PutError::Closed(item) if item == "anyone?"));
    /// ```
    pub fn send(&self, item: T) -> Result<(), PutError<T>> {
        self.send_within(item, Deadline::never(), Put::Wait)
    }

    /// Sends an item if there is room now.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`] with the item when a bounded channel is full; otherwise as
    /// [`send`](Sender::send).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = proc_ipc::bounded(1).unwrap();
    /// tx.try_send(1).unwrap();
    /// assert!(matches!(tx.try_send(2), Err(proc_ipc::PutError::Full(2))));
    /// ```
    pub fn try_send(&self, item: T) -> Result<(), PutError<T>> {
        self.send_within(item, Deadline::after(Duration::ZERO), Put::NoWait)
    }

    /// Sends an item, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// [`PutError::Timeout`] with the item when the channel stayed full; otherwise as
    /// [`send`](Sender::send).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (tx, _rx) = proc_ipc::bounded(1).unwrap();
    /// tx.send(1).unwrap();
    /// let err = tx.send_timeout(2, Duration::from_millis(10)).unwrap_err();
    /// assert!(matches!(err, proc_ipc::PutError::Timeout(2)));
    /// ```
    pub fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.send_within(item, Deadline::after(timeout), Put::Wait)
    }

    /// Whether every receiver is gone, so that `send` would fail.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = proc_ipc::channel::<u8>().unwrap();
    /// assert!(!tx.is_disconnected());
    /// drop(rx);
    /// assert!(tx.is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        !self.end.ends.any(Side::Receiver)
    }
}

impl<T: Serialize + DeserializeOwned> Receiver<T> {
    fn recv_within(&self, deadline: Deadline) -> Result<T, GetError> {
        loop {
            match self.queue.get_timeout(deadline.slice(LOOK)) {
                Err(GetError::Timeout) => {}
                other => return other,
            }
            // Nothing came for a while: if no sender is left anywhere, nothing will. The
            // count of items includes those a live sender's feeder thread still holds.
            if !self.end.ends.any(Side::Sender) && self.queue.qsize() == 0 {
                return match self.queue.get_nowait() {
                    Err(GetError::Empty) => Err(GetError::Closed),
                    other => other,
                };
            }
            if deadline.passed() {
                return Err(GetError::Timeout);
            }
        }
    }

    /// Receives an item, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`GetError::Closed`] once the channel is empty and every sender is gone (dropped, or
    /// its process died), [`GetError::Failed`] when an item is not a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = proc_ipc::channel().unwrap();
    /// tx.send(5).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv().unwrap(), 5); // what was sent comes first
    /// assert_eq!(rx.recv(), Err(proc_ipc::GetError::Closed));
    /// ```
    pub fn recv(&self) -> Result<T, GetError> {
        self.recv_within(Deadline::never())
    }

    /// Receives an item if there is one now.
    ///
    /// # Errors
    ///
    /// [`GetError::Empty`] when there is none but a sender is left; otherwise as
    /// [`recv`](Receiver::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use proc_ipc::GetError;
    ///
    /// let (tx, rx) = proc_ipc::channel::<u8>().unwrap();
    /// assert_eq!(rx.try_recv(), Err(GetError::Empty));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(GetError::Closed));
    /// ```
    pub fn try_recv(&self) -> Result<T, GetError> {
        match self.queue.get_nowait() {
            Err(GetError::Empty) if !self.end.ends.any(Side::Sender) && self.queue.qsize() == 0 => {
                Err(GetError::Closed)
            }
            other => other,
        }
    }

    /// Receives an item, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`GetError::Timeout`] when none came in time; otherwise as [`recv`](Receiver::recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (_tx, rx) = proc_ipc::channel::<u8>().unwrap();
    /// assert!(rx.recv_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.recv_within(Deadline::after(timeout))
    }

    /// A blocking iterator over the items, which ends when the channel is disconnected (or
    /// an item fails to decode).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = proc_ipc::channel().unwrap();
    /// for i in 0..3 {
    ///     tx.send(i).unwrap();
    /// }
    /// drop(tx);
    /// assert_eq!(rx.iter().sum::<i32>(), 3);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { receiver: self }
    }

    /// How many items are in the channel now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = proc_ipc::channel().unwrap();
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// assert!(!rx.is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.queue.qsize()
    }

    /// Whether the channel holds no item now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = proc_ipc::channel::<u8>().unwrap();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The iterator of [`Receiver::iter`].
///
/// # Examples
///
/// ```
/// let (tx, rx) = proc_ipc::channel().unwrap();
/// tx.send('x').unwrap();
/// drop(tx);
/// let mut it: proc_ipc::Iter<'_, char> = rx.iter();
/// assert_eq!(it.next(), Some('x'));
/// assert_eq!(it.next(), None);
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    receiver: &'a Receiver<T>,
}

impl<T: Serialize + DeserializeOwned> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.recv().ok()
    }
}

impl<'a, T: Serialize + DeserializeOwned> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_core::shared::{pid, start_time};

    /// A process that is not alive.
    const DEAD: Instance = Instance {
        pid: i32::MAX as u32 - 1,
        start: 7,
    };

    #[test]
    fn a_slot_of_a_dead_process_is_taken_over() {
        let ends = Ends::new().unwrap();
        // A pid that is not alive holds ends: they do not count, and its slot is free.
        let dead = &ends.table().slots[0];
        dead.owner.set(DEAD);
        dead.sides[0].held.store(3, Ordering::Release);
        assert!(!ends.any(Side::Sender));
        ends.take(Side::Sender).unwrap();
        assert!(ends.any(Side::Sender));
        assert!(dead.owner.is_mine());
        assert_eq!(dead.sides[0].held.load(Ordering::Acquire), 1);
    }

    #[test]
    fn a_live_pid_with_another_start_time_is_a_dead_holder() {
        if start_time() == 0 {
            return; // The platform cannot tell processes of one pid apart.
        }
        let ends = Ends::new().unwrap();
        // This process's pid, as a recycled one would look: alive, but started at another
        // time than the holder that wrote the slot.
        let slot = &ends.table().slots[0];
        slot.owner.set(Instance {
            pid: pid(),
            start: start_time() + 12345,
        });
        slot.sides[0].held.store(1, Ordering::Release);
        assert!(!ends.any(Side::Sender));
        ends.take(Side::Receiver).unwrap();
        assert!(slot.owner.is_mine(), "the dead holder's slot is taken over");
        assert_eq!(slot.sides[0].held.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_claim_under_way_holds_nothing_and_is_left_to_a_live_claimer() {
        let ends = Ends::new().unwrap();
        // A live process (this one, as another would look) in the middle of its claim:
        // the old owner's counts are still there, but they count for nobody.
        let claimed = &ends.table().slots[0];
        claimed.owner.set_claiming(Instance::me());
        claimed.sides[0].held.store(3, Ordering::Release);
        assert!(!ends.any(Side::Sender));
        ends.take(Side::Sender).unwrap();
        assert!(
            claimed.owner.is_claiming(),
            "a live claimer's slot is left alone"
        );
        assert!(ends.table().slots[1].owner.is_mine());
        assert!(ends.any(Side::Sender));
    }

    #[test]
    fn a_claim_whose_claimer_died_is_a_free_slot() {
        let ends = Ends::new().unwrap();
        let claimed = &ends.table().slots[0];
        claimed.owner.set_claiming(DEAD);
        claimed.sides[1].held.store(2, Ordering::Release);
        ends.take(Side::Receiver).unwrap();
        assert!(claimed.owner.is_mine());
        assert_eq!(claimed.sides[1].held.load(Ordering::Acquire), 1);
    }

    #[test]
    fn an_end_in_transit_counts_until_it_arrives() {
        let ends = Ends::new().unwrap();
        let (slot, from) = ends.send_off(Side::Receiver).unwrap();
        assert!(ends.any(Side::Receiver));
        ends.arrived(Side::Receiver, slot, from);
        assert!(!ends.any(Side::Receiver));
        // A bogus slot or sender is ignored.
        ends.arrived(Side::Receiver, SLOTS + 5, from);
        ends.arrived(Side::Receiver, 0, DEAD);
    }

    /// An end sent off by a process that died, arriving once its slot went to a process that
    /// got the same pid, leaves the new owner's count alone.
    #[test]
    fn an_end_of_a_dead_process_arriving_leaves_the_new_owners_count() {
        if start_time() == 0 {
            return; // The platform cannot tell processes of one pid apart.
        }
        let ends = Ends::new().unwrap();
        let (slot, me) = ends.send_off(Side::Sender).unwrap();
        let earlier = Instance {
            pid: me.pid,
            start: me.start + 1,
        };
        ends.arrived(Side::Sender, slot, earlier);
        assert_eq!(
            ends.table().slots[slot].sides[0]
                .transit
                .load(Ordering::Acquire),
            1,
            "an arrival from a process of the same pid and another start time was counted"
        );
        ends.arrived(Side::Sender, slot, me);
        assert!(!ends.any(Side::Sender));
    }
}
