//! The objects a manager's server keeps, and what each operation does to them.
//!
//! Every object is one mutex over its state and one condition variable. Blocking operations
//! (a queue's `get`, a lock's `acquire`, a barrier's `wait`) wait on the condition variable in
//! slices, and between slices ask whether their client is still connected: a client that died
//! in the middle of a call takes nothing with it (no item leaves the queue for it, no lock is
//! taken for it, a barrier it waited at is broken for the others).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use proc_core::internal::{Deadline, fn_at, unwind};

use hashbrown::{DefaultHashBuilder, HashTable};

use super::wire::{
    Batch, Bytes, Failure, Invalid, Kind, MAX_BATCH, Op, Owner, Pairs, Reply, Response, too_many,
};

/// How often a blocked operation looks whether its client is still there.
const LIVENESS_SLICE: Duration = Duration::from_millis(100);

/// The function that builds a user object from its encoded state (see `Manager::register`).
pub(crate) type Make = fn(&[u8]) -> Result<Box<dyn Custom>, Failure>;

/// The function that applies an `update_with` function to an encoded value.
pub(crate) type Runner = fn(&mut Bytes, i64) -> Result<(), Failure>;

/// A user object, behind its encoded requests and responses.
pub(crate) trait Custom: Send {
    fn handle(&mut self, request: &[u8]) -> Result<Bytes, Failure>;
}

/// What a blocked operation needs to know about its caller.
pub(crate) trait Caller {
    /// Whether the client left (or the server is stopping), so that waiting is pointless.
    fn gone(&self) -> bool;
    /// Whether the client runs this build, so that it may name functions.
    fn same_build(&self) -> bool;
}

/// One object on the server.
pub(crate) struct Object {
    state: Mutex<State>,
    changed: Condvar,
}

enum State {
    Dict(Dict),
    List(Items),
    Queue(QueueState),
    Lock(Option<Owner>),
    RLock(Reentrant),
    Semaphore(SemaphoreState),
    Event(bool),
    Condition(ConditionState),
    Barrier(BarrierState),
    Value(Bytes),
    Array(Items),
    Custom(Box<dyn Custom>),
}

/// A dict that keeps the order of insertion, as Python's does (a key set again keeps its
/// place; a key removed and set again goes to the end).
///
/// Python's layout: the entries in a vector in that order, where a removed entry leaves a
/// hole until the holes outnumber the entries, and a hash table of their places. Keys are
/// stored once, and an entry costs no allocation unless its key or value is long.
#[derive(Default)]
struct Dict {
    entries: Vec<Option<(Bytes, Bytes)>>,
    /// Places are `u32`: half the table of `usize` ones, which a bulk update's lookups,
    /// at random places of it, find in the cache more often.
    places: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

/// The key of the entry at `place` (every place in the table holds one).
fn key_at(entries: &[Option<(Bytes, Bytes)>], place: u32) -> &[u8] {
    entries[place as usize].as_ref().map_or(&[], |(key, _)| key)
}

/// Whether two keys are the same bytes, without a call to `memcmp` for a key of up to 16
/// bytes: the call cost more than the rest of comparing a short key, once per entry of a
/// bulk update. Two loads from each side, at its start and at its end, overlap to cover
/// every byte.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
        bytes[at..at + N].try_into().unwrap_or([0; N])
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=8 => word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4),
        9..=16 => word::<8>(a, 0) == word::<8>(b, 0) && word::<8>(a, n - 8) == word::<8>(b, n - 8),
        _ => a == b,
    }
}

impl Dict {
    fn len(&self) -> usize {
        self.places.len()
    }

    /// Sets `key` to `value` and returns the value it had; `key` becomes a [`Bytes`] only
    /// when it is new. Fails only for a dict of 2³² entries.
    fn insert<K: AsRef<[u8]> + Into<Bytes>>(
        &mut self,
        key: K,
        value: Bytes,
    ) -> Result<Option<Bytes>, Failure> {
        self.set(key, value).map(|(_, old)| old)
    }

    /// Sets `key` to `value` as [`insert`](Dict::insert) does, looking first at the entry at
    /// `next`: the place after the key set before it, where the key is when an update comes
    /// in the dict's order (a dict updated again from the keys it was filled with). That
    /// entry is beside the one just set, in the cache, where a lookup in the table goes to
    /// a place at random of it, which misses the cache for a large dict (most of the time
    /// of such an update); a key found there is the dict's, since keys are unique. Returns
    /// the key's place.
    fn set_after<K: AsRef<[u8]> + Into<Bytes>>(
        &mut self,
        next: usize,
        key: K,
        value: Bytes,
    ) -> Result<usize, Failure> {
        if let Some(Some((here, old))) = self.entries.get_mut(next)
            && same(here, key.as_ref())
        {
            *old = value;
            return Ok(next);
        }
        self.set(key, value).map(|(at, _)| at)
    }

    /// Sets `key` to `value`: the key's place, and the value it had.
    fn set<K: AsRef<[u8]> + Into<Bytes>>(
        &mut self,
        key: K,
        value: Bytes,
    ) -> Result<(usize, Option<Bytes>), Failure> {
        let Dict {
            entries,
            places,
            hasher,
        } = self;
        let hash = hasher.hash_one(key.as_ref());
        // A lookup, then an insertion only for a new key: a lookup costs half as much as
        // hashbrown's `entry`, which looks for a free place as it goes, and most keys of a
        // bulk update of a dict in use are there already.
        if let Some(&at) = places.find(hash, |&at| same(key_at(entries, at), key.as_ref())) {
            let old = entries[at as usize]
                .as_mut()
                .map(|(_, old)| std::mem::replace(old, value));
            return Ok((at as usize, old));
        }
        let at =
            u32::try_from(entries.len()).map_err(|_| Failure::Invalid(Invalid::TooManyEntries))?;
        places.insert_unique(hash, at, |&at| hasher.hash_one(key_at(entries, at)));
        entries.push(Some((key.into(), value)));
        Ok((at as usize, None))
    }

    fn remove(&mut self, key: &[u8]) -> Option<Bytes> {
        let hash = self.hasher.hash_one(key);
        let entries = &mut self.entries;
        let (at, _) = self
            .places
            .find_entry(hash, |&at| same(key_at(entries, at), key))
            .ok()?
            .remove();
        let (_, value) = entries[at as usize].take()?;
        while matches!(entries.last(), Some(None)) {
            entries.pop();
        }
        if entries.len() > 2 * self.places.len() + 16 {
            self.compact();
        }
        Some(value)
    }

    /// Closes the holes, which makes new places for every entry.
    fn compact(&mut self) {
        let Dict {
            entries,
            places,
            hasher,
        } = self;
        entries.retain(Option::is_some);
        places.clear();
        for at in 0..entries.len() as u32 {
            let hash = hasher.hash_one(key_at(entries, at));
            places.insert_unique(hash, at, |&at| hasher.hash_one(key_at(entries, at)));
        }
    }

    fn get(&self, key: &[u8]) -> Option<&Bytes> {
        let hash = self.hasher.hash_one(key);
        let at = *self
            .places
            .find(hash, |&at| same(key_at(&self.entries, at), key))?;
        self.entries[at as usize].as_ref().map(|(_, value)| value)
    }

    fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    fn iter(&self) -> impl Iterator<Item = &(Bytes, Bytes)> {
        self.entries.iter().flatten()
    }

    fn keys(&self) -> Batch {
        let mut keys = Batch::with_capacity(self.len(), 4);
        self.iter().for_each(|(key, _)| keys.push_stored(key));
        keys
    }

    fn values(&self) -> Batch {
        let mut values = Batch::with_capacity(self.len(), 4);
        self.iter().for_each(|(_, value)| values.push_stored(value));
        values
    }

    fn items(&self) -> Pairs {
        let mut items = Pairs::with_capacity(self.len(), 8);
        self.iter()
            .for_each(|(key, value)| items.push_stored(key, value));
        items
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.places.clear();
    }

    /// Makes room for `new` more keys at once, when the dict holds none: a bulk update of
    /// an empty dict (Python's `manager.dict(mapping)`) then fills its table without
    /// rehashing it as it grows. A dict with keys is left as it is, since the update may
    /// only set keys it has.
    fn reserve_if_empty(&mut self, new: usize) {
        if self.len() == 0 {
            let Dict {
                entries,
                places,
                hasher,
            } = self;
            entries.reserve(new);
            places.reserve(new, |&at| hasher.hash_one(key_at(entries, at)));
        }
    }
}

/// A list's or array's items: the ones split into entries, then a tail of items that came
/// in bulk and are still as they arrived, in one [`Batch`].
///
/// A bulk call ([`Op::Extend`], [`Kind::Array`]) keeps its batch as it came off the wire,
/// which costs the copy of its bytes and nothing per item: storing 100k small items as
/// [`Bytes`] wrote 2.4 MB of fresh memory, several times the frame. The tail is split into
/// entries the first time an operation needs an item by its place (`get`, `pop`, `set`,
/// ...); `len`, `extend`, `to_vec` and `clear` never need to. Either way a call sees the
/// whole batch or none of it, since the batch is stored under the object's lock in one
/// step.
#[derive(Default)]
struct Items {
    split: Vec<Bytes>,
    tail: Batch,
}

impl Items {
    /// The items of `batch`, unless there are more than a request may carry.
    fn from_batch(batch: Batch) -> Result<Items, Failure> {
        let mut items = Items::default();
        items.extend(batch)?;
        Ok(items)
    }

    fn len(&self) -> usize {
        self.split.len() + self.tail.len()
    }

    /// Appends the items of `batch`, unless there are more than a request may carry.
    fn extend(&mut self, batch: Batch) -> Result<(), Failure> {
        if batch.len() > MAX_BATCH {
            return Err(Failure::Protocol(too_many()));
        }
        self.tail.append(batch);
        Ok(())
    }

    /// Every item as an entry of its own, for the operations that find one by its place.
    fn split(&mut self) -> &mut Vec<Bytes> {
        if self.tail.len() > 0 {
            let tail = std::mem::take(&mut self.tail);
            self.split.extend(tail.iter().stored());
        }
        &mut self.split
    }

    /// The items, to send.
    fn to_batch(&self) -> Batch {
        let mut batch = Batch::with_capacity(self.split.len(), 4);
        self.split.iter().for_each(|item| batch.push_stored(item));
        batch.append_copy(&self.tail);
        batch
    }

    fn clear(&mut self) {
        self.split.clear();
        self.tail = Batch::default();
    }
}

struct QueueState {
    items: VecDeque<Bytes>,
    maxsize: usize,
    unfinished: u64,
    /// Shut down (Python 3.13): puts fail; gets drain, or fail at once when `immediate`.
    shut: Option<Shut>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shut {
    Draining,
    Immediate,
}

#[derive(Default)]
struct Reentrant {
    owner: Option<Owner>,
    count: u32,
}

impl Reentrant {
    fn try_take(&mut self, owner: Owner) -> bool {
        match self.owner {
            None => {
                self.owner = Some(owner);
                self.count = 1;
                true
            }
            Some(o) if o == owner => {
                self.count = self.count.saturating_add(1);
                true
            }
            Some(_) => false,
        }
    }

    fn release(&mut self, owner: Owner) -> Result<bool, Failure> {
        match self.owner {
            None => Err(Failure::Invalid(Invalid::Unlocked)),
            Some(o) if o != owner => Err(Failure::Invalid(Invalid::NotOwner)),
            Some(_) => {
                self.count -= 1;
                if self.count == 0 {
                    self.owner = None;
                }
                Ok(self.count == 0)
            }
        }
    }
}

struct SemaphoreState {
    value: u32,
    bound: Option<u32>,
    held: HashMap<u64, u32>,
}

struct ConditionState {
    lock: Reentrant,
    waiters: VecDeque<u64>,
    woken: Vec<u64>,
    next_waiter: u64,
}

struct BarrierState {
    parties: u32,
    count: u32,
    generation: u64,
    broken: bool,
    last_reset: Option<u64>,
}

impl BarrierState {
    fn break_now(&mut self) {
        self.broken = true;
    }
}

fn wrong_kind() -> Failure {
    Failure::Invalid(Invalid::WrongKind)
}

/// Python's index rule: a negative index counts from the end.
fn index(i: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let at = if i < 0 { len.checked_add(i)? } else { i };
    (0..len).contains(&at).then_some(at as usize)
}

impl Object {
    /// Builds the object that `kind` asks for.
    pub(crate) fn new(kind: Kind, caller: &dyn Caller) -> Result<Object, Failure> {
        let state = match kind {
            Kind::Dict | Kind::Namespace => State::Dict(Dict::default()),
            Kind::List => State::List(Items::default()),
            Kind::Queue { maxsize } => State::Queue(QueueState {
                items: VecDeque::new(),
                maxsize: usize::try_from(maxsize).unwrap_or(usize::MAX),
                unfinished: 0,
                shut: None,
            }),
            Kind::Lock => State::Lock(None),
            Kind::RLock => State::RLock(Reentrant::default()),
            Kind::Semaphore { value, bound } => State::Semaphore(SemaphoreState {
                value,
                bound,
                held: HashMap::new(),
            }),
            Kind::Event => State::Event(false),
            Kind::Condition => State::Condition(ConditionState {
                lock: Reentrant::default(),
                waiters: VecDeque::new(),
                woken: Vec::new(),
                next_waiter: 0,
            }),
            Kind::Barrier { parties } => {
                if parties == 0 {
                    return Err(Failure::Invalid(Invalid::NoParties));
                }
                State::Barrier(BarrierState {
                    parties,
                    count: 0,
                    generation: 0,
                    broken: false,
                    last_reset: None,
                })
            }
            Kind::Value(bytes) => State::Value(bytes),
            Kind::Array(batch) => State::Array(Items::from_batch(batch)?),
            Kind::Custom { make, state } => {
                if !caller.same_build() {
                    return Err(Failure::BuildMismatch);
                }
                // SAFETY: the client runs this very build (its fingerprint is ours, checked
                // above) and made `make` with `fn_offset` from a `Make`.
                let make: Make = unsafe { fn_at(make) };
                let built = unwind::catch(|| make(&state)).map_err(|p| Failure::Panicked {
                    message: p.message,
                    location: p.location,
                })??;
                State::Custom(built)
            }
        };
        Ok(Object {
            state: Mutex::new(state),
            changed: Condvar::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the state is held can only come from a user function, whose
        // object keeps what it did; the other objects are never left half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `step` gives an answer, as long as `timeout` allows and the caller stays.
    ///
    /// `step` is called with the state and `None` while there is time, and with
    /// `Some(failure)` (`Timeout` or `Closed`) when the wait ends without an answer, so that
    /// it can undo what it began; it must answer then.
    fn block(
        &self,
        caller: &dyn Caller,
        timeout: Option<Duration>,
        mut step: impl FnMut(&mut State, Option<Failure>) -> Option<Response>,
    ) -> Response {
        let deadline = Deadline::from_timeout(timeout);
        let mut state = self.state();
        loop {
            if let Some(answer) = step(&mut state, None) {
                return answer;
            }
            let end = if deadline.passed() {
                Some(Failure::Timeout)
            } else if caller.gone() {
                Some(Failure::Closed)
            } else {
                None
            };
            if let Some(end) = end {
                let answer = step(&mut state, Some(end.clone()));
                return answer.unwrap_or(Err(end));
            }
            let slice = deadline.slice(LIVENESS_SLICE);
            state = self
                .changed
                .wait_timeout(state, slice)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Gives back what `client` held (locks, permits), because its process is gone.
    pub(crate) fn release_client(&self, client: u64) {
        let mut state = self.state();
        let released = match &mut *state {
            State::Lock(holder) if holder.is_some_and(|o| o.client == client) => {
                *holder = None;
                true
            }
            State::RLock(lock) if lock.owner.is_some_and(|o| o.client == client) => {
                *lock = Reentrant::default();
                true
            }
            State::Condition(cond) if cond.lock.owner.is_some_and(|o| o.client == client) => {
                cond.lock = Reentrant::default();
                true
            }
            State::Semaphore(sem) => match sem.held.remove(&client) {
                Some(n) => {
                    sem.value = sem.value.saturating_add(n);
                    if let Some(bound) = sem.bound {
                        sem.value = sem.value.min(bound);
                    }
                    true
                }
                None => false,
            },
            _ => false,
        };
        drop(state);
        if released {
            self.changed.notify_all();
        }
    }

    /// Runs `op` on the object for `caller`.
    pub(crate) fn call(&self, op: Op, caller: &dyn Caller) -> Response {
        let reads_only = matches!(
            op,
            Op::Len
                | Op::Get(_)
                | Op::Contains(_)
                | Op::Keys
                | Op::Values
                | Op::Items
                | Op::At(_)
                | Op::ToVec
                | Op::Load
                | Op::IsSet
                | Op::Full
                | Op::Count
        );
        let answer = self.apply(op, caller);
        // After a change the waiters look again (they also look by themselves, in slices);
        // a read changes nothing, and saves the wake-up's system call.
        if !reads_only {
            self.changed.notify_all();
        }
        answer
    }

    /// Puts an item taken for a client that left before it got it back at the front.
    pub(crate) fn requeue(&self, item: Bytes) {
        if let State::Queue(queue) = &mut *self.state() {
            queue.items.push_front(item);
        }
        self.changed.notify_all();
    }

    fn apply(&self, op: Op, caller: &dyn Caller) -> Response {
        match op {
            Op::Acquire { owner, timeout } => return self.acquire(owner, timeout, caller),
            Op::Put { item, timeout } => return self.put(item, timeout, caller),
            Op::Take { timeout } => return self.take(timeout, caller),
            Op::Join { timeout } => {
                return self.block(caller, timeout, |state, end| match state {
                    State::Queue(q) if q.unfinished == 0 || q.shut == Some(Shut::Immediate) => {
                        Some(Ok(Reply::Unit))
                    }
                    State::Queue(_) => end.map(Err),
                    _ => Some(Err(wrong_kind())),
                });
            }
            Op::Wait { timeout } => {
                return self.block(caller, timeout, |state, end| match (state, end) {
                    (State::Event(true), _) => Some(Ok(Reply::Bool(true))),
                    (State::Event(false), Some(Failure::Timeout)) => Some(Ok(Reply::Bool(false))),
                    (State::Event(false), end) => end.map(Err),
                    _ => Some(Err(wrong_kind())),
                });
            }
            Op::CondWait { owner, timeout } => return self.cond_wait(owner, timeout, caller),
            Op::BarrierWait { timeout } => return self.barrier_wait(timeout, caller),
            _ => {}
        }
        let mut state = self.state();
        match (&mut *state, op) {
            (State::Dict(d), Op::Len) => Ok(Reply::Count(d.len() as u64)),
            (State::Dict(d), Op::Clear) => {
                d.clear();
                Ok(Reply::Unit)
            }
            (State::Dict(d), Op::Insert(k, v)) => d.insert(k, v).map(Reply::Item),
            (State::Dict(d), Op::Get(k)) => Ok(Reply::Item(d.get(&k).cloned())),
            (State::Dict(d), Op::Remove(k)) => Ok(Reply::Item(d.remove(&k))),
            (State::Dict(d), Op::Contains(k)) => Ok(Reply::Bool(d.contains(&k))),
            (State::Dict(d), Op::Keys) => Ok(Reply::Items(d.keys())),
            (State::Dict(d), Op::Values) => Ok(Reply::Items(d.values())),
            (State::Dict(d), Op::Items) => Ok(Reply::Pairs(d.items())),
            (State::Dict(d), Op::Update(pairs)) => {
                if pairs.len() > MAX_BATCH / 2 {
                    return Err(Failure::Protocol(too_many()));
                }
                d.reserve_if_empty(pairs.len());
                let mut next = 0;
                for (k, v) in pairs.stored() {
                    next = d.set_after(next, k, Bytes::from(v))? + 1;
                }
                Ok(Reply::Unit)
            }
            (State::Dict(d), Op::SetDefault(k, v)) => {
                if let Some(old) = d.get(&k) {
                    return Ok(Reply::Item(Some(old.clone())));
                }
                d.insert(k, v.clone())?;
                Ok(Reply::Item(Some(v)))
            }
            (
                State::Dict(d),
                Op::UpdateWith {
                    key,
                    default,
                    runner,
                    f,
                },
            ) => {
                if !caller.same_build() {
                    return Err(Failure::BuildMismatch);
                }
                // SAFETY: the client runs this very build (its fingerprint is ours, checked
                // above) and made `runner` with `fn_offset` from a `Runner`; the runner turns
                // `f` back into the function type it was made for.
                let runner: Runner = unsafe { fn_at(runner) };
                let mut value = d.get(&key).cloned().unwrap_or(default);
                unwind::catch(|| runner(&mut value, f)).map_err(|p| Failure::Panicked {
                    message: p.message,
                    location: p.location,
                })??;
                d.insert(key, value.clone())?;
                Ok(Reply::Item(Some(value)))
            }
            (State::List(l) | State::Array(l), Op::Len) => Ok(Reply::Count(l.len() as u64)),
            (State::List(l), Op::Clear) => {
                l.clear();
                Ok(Reply::Unit)
            }
            (State::List(l), Op::Push(v)) => {
                l.split().push(v);
                Ok(Reply::Unit)
            }
            (State::List(l), Op::Pop(None)) => Ok(Reply::Item(l.split().pop())),
            (State::List(l), Op::Pop(Some(i))) => {
                let l = l.split();
                match index(i, l.len()) {
                    Some(at) => Ok(Reply::Item(Some(l.remove(at)))),
                    None => Err(Failure::Invalid(Invalid::IndexOutOfRange)),
                }
            }
            (State::List(l) | State::Array(l), Op::At(i)) => {
                let l = l.split();
                Ok(Reply::Item(index(i, l.len()).map(|at| l[at].clone())))
            }
            (State::List(l) | State::Array(l), Op::SetAt(i, v)) => {
                let l = l.split();
                match index(i, l.len()) {
                    Some(at) => {
                        l[at] = v;
                        Ok(Reply::Unit)
                    }
                    None => Err(Failure::Invalid(Invalid::IndexOutOfRange)),
                }
            }
            (State::List(l), Op::InsertAt(i, v)) => {
                let l = l.split();
                // Python's `list.insert` clamps the index to the list.
                let len = l.len() as i64;
                let at = if i < 0 { (len + i).max(0) } else { i.min(len) };
                l.insert(at as usize, v);
                Ok(Reply::Unit)
            }
            (State::List(l), Op::RemoveValue(v)) => {
                let l = l.split();
                match l.iter().position(|x| *x == v) {
                    Some(at) => {
                        l.remove(at);
                        Ok(Reply::Bool(true))
                    }
                    None => Ok(Reply::Bool(false)),
                }
            }
            (State::List(l), Op::Extend(items)) => l.extend(items).map(|()| Reply::Unit),
            (State::List(l) | State::Array(l), Op::ToVec) => Ok(Reply::Items(l.to_batch())),
            (State::Value(v), Op::Load) => Ok(Reply::Item(Some(v.clone()))),
            (State::Value(v), Op::Store(new)) => {
                *v = new;
                Ok(Reply::Unit)
            }
            (State::Queue(q), Op::Len) => Ok(Reply::Count(q.items.len() as u64)),
            (State::Queue(q), Op::Full) => Ok(Reply::Bool(q.items.len() >= q.maxsize)),
            (State::Queue(q), Op::TaskDone) => match q.unfinished.checked_sub(1) {
                Some(n) => {
                    q.unfinished = n;
                    Ok(Reply::Unit)
                }
                None => Err(Failure::Invalid(Invalid::TooManyTaskDone)),
            },
            (State::Queue(q), Op::Count) => Ok(Reply::Count(q.unfinished)),
            (State::Queue(q), Op::Shutdown { immediate }) => {
                if immediate {
                    q.shut = Some(Shut::Immediate);
                } else if q.shut.is_none() {
                    q.shut = Some(Shut::Draining);
                }
                Ok(Reply::Unit)
            }
            (State::Queue(q), Op::IsSet) => Ok(Reply::Bool(q.shut.is_some())),
            (State::Lock(holder), Op::Release { .. }) => match holder.take() {
                // Python's manager `Lock` is a `threading.Lock`: anyone may release it.
                Some(_) => Ok(Reply::Unit),
                None => Err(Failure::Invalid(Invalid::Unlocked)),
            },
            (State::Lock(holder), Op::IsSet) => Ok(Reply::Bool(holder.is_some())),
            (State::RLock(lock), Op::Release { owner }) => lock.release(owner).map(|_| Reply::Unit),
            (State::RLock(lock), Op::IsSet) => Ok(Reply::Count(u64::from(lock.count))),
            (State::Condition(cond), Op::Release { owner }) => {
                cond.lock.release(owner).map(|_| Reply::Unit)
            }
            (State::Condition(cond), Op::Notify { owner, n }) => {
                if cond.lock.owner != Some(owner) {
                    return Err(Failure::Invalid(Invalid::NotOwner));
                }
                for _ in 0..n {
                    match cond.waiters.pop_front() {
                        Some(w) => cond.woken.push(w),
                        None => break,
                    }
                }
                Ok(Reply::Unit)
            }
            (State::Semaphore(sem), Op::Release { owner }) => {
                if sem.bound.is_some_and(|b| sem.value >= b) {
                    return Err(Failure::Invalid(Invalid::OverReleased));
                }
                sem.value = sem.value.saturating_add(1);
                // The permit goes back for whoever holds one: the releaser if it does,
                // else any holder (Python lets any process release).
                let holder = if sem.held.contains_key(&owner.client) {
                    Some(owner.client)
                } else {
                    sem.held.keys().next().copied()
                };
                if let Some(h) = holder
                    && let Some(n) = sem.held.get_mut(&h)
                {
                    *n -= 1;
                    if *n == 0 {
                        sem.held.remove(&h);
                    }
                }
                Ok(Reply::Unit)
            }
            (State::Semaphore(sem), Op::Len) => Ok(Reply::Count(u64::from(sem.value))),
            (State::Event(flag), Op::Set) => {
                *flag = true;
                Ok(Reply::Unit)
            }
            (State::Event(flag), Op::Unset) => {
                *flag = false;
                Ok(Reply::Unit)
            }
            (State::Event(flag), Op::IsSet) => Ok(Reply::Bool(*flag)),
            (State::Barrier(b), Op::Reset) => {
                if b.count > 0 {
                    b.last_reset = Some(b.generation);
                    b.generation += 1;
                }
                b.count = 0;
                b.broken = false;
                Ok(Reply::Unit)
            }
            (State::Barrier(b), Op::Abort) => {
                b.break_now();
                Ok(Reply::Unit)
            }
            (State::Barrier(b), Op::Len) => Ok(Reply::Barrier(b.parties, b.count, b.broken)),
            (State::Custom(object), Op::Handle(request)) => {
                let object = &mut **object;
                unwind::catch(std::panic::AssertUnwindSafe(|| object.handle(&request)))
                    .map_err(|p| Failure::Panicked {
                        message: p.message,
                        location: p.location,
                    })?
                    .map(|b| Reply::Item(Some(b)))
            }
            _ => Err(wrong_kind()),
        }
    }

    fn acquire(&self, owner: Owner, timeout: Option<Duration>, caller: &dyn Caller) -> Response {
        self.block(caller, timeout, |state, end| {
            let taken = match state {
                State::Lock(holder) => {
                    if holder.is_none() {
                        *holder = Some(owner);
                        true
                    } else {
                        false
                    }
                }
                State::RLock(lock) => lock.try_take(owner),
                State::Condition(cond) => cond.lock.try_take(owner),
                State::Semaphore(sem) => {
                    if sem.value > 0 {
                        sem.value -= 1;
                        *sem.held.entry(owner.client).or_insert(0) += 1;
                        true
                    } else {
                        false
                    }
                }
                _ => return Some(Err(wrong_kind())),
            };
            match (taken, end) {
                (true, _) => Some(Ok(Reply::Bool(true))),
                (false, Some(Failure::Timeout)) => Some(Ok(Reply::Bool(false))),
                (false, end) => end.map(Err),
            }
        })
    }

    fn put(&self, item: Bytes, timeout: Option<Duration>, caller: &dyn Caller) -> Response {
        let mut item = Some(item);
        self.block(caller, timeout, |state, end| match state {
            State::Queue(q) if q.shut.is_some() => Some(Err(Failure::Closed)),
            State::Queue(q) => {
                if q.items.len() < q.maxsize {
                    q.items.extend(item.take());
                    q.unfinished += 1;
                    Some(Ok(Reply::Unit))
                } else {
                    match end {
                        Some(Failure::Timeout) if timeout == Some(Duration::ZERO) => {
                            Some(Err(Failure::Full))
                        }
                        end => end.map(Err),
                    }
                }
            }
            _ => Some(Err(wrong_kind())),
        })
    }

    fn take(&self, timeout: Option<Duration>, caller: &dyn Caller) -> Response {
        self.block(caller, timeout, |state, end| match state {
            State::Queue(q) if q.shut == Some(Shut::Immediate) => Some(Err(Failure::Closed)),
            State::Queue(q) if q.shut.is_some() && q.items.is_empty() => Some(Err(Failure::Closed)),
            State::Queue(q) => match q.items.pop_front() {
                Some(item) => Some(Ok(Reply::Item(Some(item)))),
                None => match end {
                    Some(Failure::Timeout) if timeout == Some(Duration::ZERO) => {
                        Some(Err(Failure::Empty))
                    }
                    end => end.map(Err),
                },
            },
            _ => Some(Err(wrong_kind())),
        })
    }

    fn cond_wait(&self, owner: Owner, timeout: Option<Duration>, caller: &dyn Caller) -> Response {
        // Release the lock entirely, wait to be notified, take it back with its count.
        let (me, count) = {
            let mut state = self.state();
            let State::Condition(cond) = &mut *state else {
                return Err(wrong_kind());
            };
            if cond.lock.owner != Some(owner) {
                return Err(Failure::Invalid(Invalid::NotOwner));
            }
            let count = cond.lock.count;
            cond.lock = Reentrant::default();
            let me = cond.next_waiter;
            cond.next_waiter += 1;
            cond.waiters.push_back(me);
            (me, count)
        };
        self.changed.notify_all();
        let notified = self.block(caller, timeout, |state, end| {
            let State::Condition(cond) = state else {
                return Some(Err(wrong_kind()));
            };
            if let Some(at) = cond.woken.iter().position(|&w| w == me) {
                cond.woken.swap_remove(at);
                return Some(Ok(Reply::Bool(true)));
            }
            let end = end?;
            cond.waiters.retain(|&w| w != me);
            Some(match end {
                Failure::Timeout => Ok(Reply::Bool(false)),
                other => Err(other),
            })
        });
        if let Err(failure) = notified {
            return Err(failure);
        }
        // Take the lock back, however long that takes (Python's `wait` does too).
        let back = self.block(caller, None, |state, end| {
            let State::Condition(cond) = state else {
                return Some(Err(wrong_kind()));
            };
            if cond.lock.owner.is_none() {
                cond.lock = Reentrant {
                    owner: Some(owner),
                    count,
                };
                return Some(Ok(Reply::Unit));
            }
            end.map(Err)
        });
        back.and(notified)
    }

    fn barrier_wait(&self, timeout: Option<Duration>, caller: &dyn Caller) -> Response {
        let (generation, index) = {
            let mut state = self.state();
            let State::Barrier(b) = &mut *state else {
                return Err(wrong_kind());
            };
            if b.broken {
                return Err(Failure::Invalid(Invalid::Broken));
            }
            let index = b.count;
            b.count += 1;
            if b.count == b.parties {
                b.count = 0;
                b.generation += 1;
                drop(state);
                self.changed.notify_all();
                return Ok(Reply::Count(u64::from(index)));
            }
            (b.generation, index)
        };
        let answer = self.block(caller, timeout, |state, end| {
            let State::Barrier(b) = state else {
                return Some(Err(wrong_kind()));
            };
            if b.generation != generation {
                return Some(if b.last_reset == Some(generation) {
                    Err(Failure::Invalid(Invalid::Broken))
                } else {
                    Ok(Reply::Count(u64::from(index)))
                });
            }
            if b.broken {
                return Some(Err(Failure::Invalid(Invalid::Broken)));
            }
            // A party that times out or leaves breaks the barrier for the others, as in
            // Python.
            let end = end?;
            b.break_now();
            Some(Err(end))
        });
        self.changed.notify_all();
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, Bytes, Dict, Items};

    fn key(i: u32) -> Bytes {
        // Long keys too, so that heap entries move through the holes and compactions.
        let len = if i.is_multiple_of(3) { 40 } else { 4 };
        (0..len).map(|at| (i >> (8 * (at % 4))) as u8).collect()
    }

    fn keys(dict: &Dict) -> Vec<Bytes> {
        dict.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Python's dict order: a key set again keeps its place, a key removed and set again
    /// goes to the end, whatever the removals in between.
    #[test]
    fn a_dict_keeps_the_order_python_keeps_through_removals() {
        let mut dict = Dict::default();
        let mut model: Vec<(Bytes, u32)> = Vec::new();
        for i in 0..2000 {
            assert!(dict.insert(key(i), Bytes::from(vec![1])).unwrap().is_none());
            model.push((key(i), 1));
        }
        // Most entries go, from the middle and the end, which compacts the holes several
        // times; every fifth of the rest is set again, which moves nothing.
        for i in (0..2000u32).rev().filter(|i| !i.is_multiple_of(7)) {
            assert_eq!(dict.remove(&key(i)).as_deref(), Some(&[1][..]));
            model.retain(|(k, _)| *k != key(i));
            assert!(dict.remove(&key(i)).is_none());
        }
        for i in (0..2000).step_by(35) {
            assert_eq!(
                dict.insert(&key(i)[..], Bytes::from(vec![2]))
                    .unwrap()
                    .as_deref(),
                Some(&[1][..])
            );
            model.iter_mut().find(|(k, _)| *k == key(i)).unwrap().1 = 2;
        }
        // Removed and set again: to the end.
        dict.remove(&key(7));
        dict.insert(key(7), Bytes::from(vec![3])).unwrap();
        model.retain(|(k, _)| *k != key(7));
        model.push((key(7), 3));
        assert_eq!(dict.len(), model.len());
        assert_eq!(
            keys(&dict),
            model.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
        );
        for (k, v) in &model {
            assert_eq!(dict.get(k).map(|v| v[0]), Some(*v as u8));
        }
        assert!(dict.get(&key(1)).is_none());
        // The holes do not outgrow the entries.
        assert!(
            dict.entries.len() <= 2 * dict.len() + 16,
            "{}",
            dict.entries.len()
        );
        dict.clear();
        assert_eq!(dict.len(), 0);
        assert!(dict.iter().next().is_none());
    }

    /// An update that looks for each key beside the one before it sets what setting the
    /// keys one by one sets, in every order: the dict's own (every look finds the key), a
    /// reversed one (none does), and runs of the dict's order among removed, new and
    /// repeated keys.
    #[test]
    fn an_update_in_any_order_sets_what_inserts_set() {
        let fill = || {
            let mut dict = Dict::default();
            (0..300).for_each(|i| drop(dict.insert(key(i), Bytes::from(vec![0]))));
            // Holes, which a look beside the key before finds empty.
            (0..300)
                .step_by(11)
                .for_each(|i| drop(dict.remove(&key(i))));
            dict
        };
        let orders: [Vec<u32>; 3] = [
            (0..300).collect(),
            (0..300).rev().collect(),
            (150..200)
                .chain(0..60)
                .chain(290..330)
                .chain([5, 5, 6, 7, 7])
                .collect(),
        ];
        for order in orders {
            let (mut updated, mut model) = (fill(), fill());
            let mut next = 0;
            for (n, &i) in order.iter().enumerate() {
                let value = Bytes::from(vec![n as u8, 1]);
                next = updated.set_after(next, &key(i)[..], value.clone()).unwrap() + 1;
                model.insert(key(i), value).unwrap();
            }
            assert_eq!(keys(&updated), keys(&model));
            assert_eq!(updated.len(), model.len());
            for k in keys(&model) {
                assert_eq!(updated.get(&k), model.get(&k));
            }
        }
    }

    /// Keys of every length the short comparisons cover and past them, unequal at each
    /// place in turn.
    #[test]
    fn keys_compare_by_every_byte_whatever_their_length() {
        for len in 0..40 {
            let key: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            assert!(super::same(&key, &key.clone()));
            for at in 0..len {
                let mut other = key.clone();
                other[at] ^= 0x10;
                assert!(!super::same(&key, &other), "length {len}, byte {at}");
            }
            let mut longer = key.clone();
            longer.push(0);
            assert!(!super::same(&key, &longer));
            assert!(!super::same(&longer, &key));
        }
    }

    fn batch(items: &[Vec<u8>]) -> Batch {
        let mut batch = Batch::default();
        items.iter().for_each(|item| batch.push(item));
        batch
    }

    fn contents(items: &Items) -> Vec<Vec<u8>> {
        items.to_batch().iter().map(<[u8]>::to_vec).collect()
    }

    /// A list's bulk items stay as they came until an operation needs one by its place;
    /// whatever the mix of bulk calls, splits and single changes, the list is the one a
    /// vector would be, in order.
    #[test]
    fn a_list_is_its_split_items_then_its_bulk_tail_in_order() {
        let mut items = Items::default();
        let mut model: Vec<Vec<u8>> = Vec::new();
        let mut next = 0u32;
        let mut fresh = |n: usize| -> Vec<Vec<u8>> {
            (0..n)
                .map(|_| {
                    next += 1;
                    // Inline and heap entries, and lengths of one and two LEB128 bytes.
                    vec![next as u8; [0, 3, 22, 23, 200][next as usize % 5]]
                })
                .collect()
        };
        for round in 0..40 {
            // Bulk calls onto an empty tail (which takes the batch) and onto a tail.
            for _ in 0..round % 3 {
                let bulk = fresh(round % 7);
                items.extend(batch(&bulk)).unwrap();
                model.extend(bulk);
            }
            assert_eq!(items.len(), model.len());
            assert_eq!(contents(&items), model, "round {round}");
            match round % 4 {
                0 => {
                    let item = fresh(1).remove(0);
                    items.split().push(Bytes::from(&item[..]));
                    model.push(item);
                }
                1 if !model.is_empty() => {
                    let at = round % model.len();
                    assert_eq!(items.split().remove(at)[..], model.remove(at)[..]);
                }
                2 => {
                    let item = fresh(1).remove(0);
                    items.split().insert(0, Bytes::from(&item[..]));
                    model.insert(0, item);
                }
                _ => {}
            }
            assert_eq!(contents(&items), model, "round {round}");
            if round == 25 {
                items.clear();
                model.clear();
                assert_eq!(items.len(), 0);
            }
        }
        assert!(!model.is_empty());
        let split: Vec<Vec<u8>> = items.split().iter().map(|b| b.to_vec()).collect();
        assert_eq!(split, model);
    }

    #[test]
    fn a_bulk_call_of_more_than_a_request_carries_leaves_the_list_as_it_was() {
        let mut items = Items::from_batch(batch(&[vec![1], vec![2]])).unwrap();
        let mut big = Batch::default();
        (0..=super::MAX_BATCH).for_each(|_| big.push(&[]));
        assert!(items.extend(big).is_err());
        assert_eq!(contents(&items), [vec![1], vec![2]]);
    }
}
