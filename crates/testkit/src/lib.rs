//! What the integration tests of the `procs` crates share: running a scenario under every
//! start method, scratch paths, and bounded waits for things that happen in other processes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use proc_core::{Process, StartMethod};

/// How long a test waits for something that only a bug would delay that long.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A process builder set to `method`.
pub fn builder(method: StartMethod) -> proc_core::Builder {
    let mut b = Process::builder();
    b.start_method(method);
    b
}

/// Compiles only when `T` is `Send` and `Sync`.
pub fn assert_send_sync<T: Send + Sync>() {}

/// How long the `Fork` round of [`each_method`] may take before it counts as hung.
pub const ROUND_LIMIT: Duration = Duration::from_secs(120);

/// Runs `scenario` once per start method of the platform.
///
/// The test harness runs tests on threads, and `Fork` refuses multi-threaded processes, so the
/// `Fork` round runs inside a freshly spawned child, which is single-threaded; a panic there
/// fails the calling test with the child's message.
///
/// # Panics
///
/// When the scenario panics, in this process or in the `Fork` round's child.
pub fn each_method<F: Fn(StartMethod) + Copy + Send + 'static>(scenario: F) {
    for &method in StartMethod::available() {
        if method == StartMethod::Fork {
            let mut p = Process::builder()
                .name("fork-round")
                .start_method(StartMethod::Spawn)
                .spawn(scenario, method)
                .expect("start the single-threaded process of the fork round");
            match p.join_timeout(ROUND_LIMIT) {
                Ok(()) => {}
                Err(e) if e.is_timeout() => {
                    let _ = p.kill();
                    panic!("under fork: the round did not finish within {ROUND_LIMIT:?}");
                }
                Err(e) => panic!("under fork: {e}"),
            }
        } else {
            scenario(method);
        }
    }
}

/// The prefix of the scratch folders of [`temp_path`], followed by the pid of their process.
const SCRATCH_PREFIX: &str = "procs-test-";

/// A path named `name` in a scratch folder of this test process.
///
/// The folder is named after the process (`procs-test-<pid>` in the temporary directory) and
/// outlives it, as the test harness has no hook at exit: the first call in every process
/// removes the folders of processes that are gone, so that they never pile up.
///
/// # Panics
///
/// When the folder cannot be created.
pub fn temp_path(name: &str) -> PathBuf {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(remove_dead_scratch);
    let dir = std::env::temp_dir().join(format!("{SCRATCH_PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the scratch folder");
    dir.join(name)
}

/// Removes the scratch folders of [`temp_path`] whose process has ended (a zombie counts as
/// ended). Best effort: a folder that cannot be read or removed is left.
fn remove_dead_scratch() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SCRATCH_PREFIX))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !proc_core::shared::pid_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Waits up to 20 s for `condition`: machines are slow, but not that slow.
///
/// # Panics
///
/// When the condition does not become true in time; the message names `what`.
pub fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `pid` names a live process; a zombie counts as dead.
#[cfg(unix)]
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) if std::path::Path::new("/proc/self/stat").exists() => false,
        // SAFETY: signal 0 only checks that the process exists.
        Err(_) => (unsafe { libc::kill(pid as libc::pid_t, 0) }) == 0,
    }
}

/// The state letter (`R`, `S`, `T`, ...) of every thread of process `pid`, where `/proc`
/// tells; `None` elsewhere, or when the process is gone.
#[cfg(unix)]
pub fn thread_states(pid: u32) -> Option<Vec<char>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    dir.map(|task| {
        let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .next()?
            .chars()
            .next()
    })
    .collect()
}

/// Waits until every thread of process `pid` sleeps (state `S` where `/proc` tells): a
/// process that set a marker right before a blocking call and then sleeps all through is
/// blocked inside that call, not on its way to it.
///
/// Where no `/proc` tells (macOS, FreeBSD, Windows), it waits 200 ms instead: a guess that a
/// process past its marker is inside the call by then, the best that those systems allow.
///
/// # Panics
///
/// When the threads do not all sleep within 20 s; the message names `what`.
pub fn wait_until_asleep(what: &str, pid: u32) {
    #[cfg(unix)]
    if thread_states(pid).is_some() {
        return eventually(what, || {
            thread_states(pid).is_some_and(|states| states.iter().all(|s| *s == 'S'))
        });
    }
    let _ = (what, pid);
    std::thread::sleep(Duration::from_millis(200));
}

/// Whether the main thread of process `pid` sleeps inside `read(2)` (Linux's
/// `/proc/<pid>/stat` and `/proc/<pid>/syscall` tell): a reader of a pipe that sleeps there
/// has not seen end of file, so a writer still holds the pipe open, as end of file wakes
/// the reader at once.
#[cfg(target_os = "linux")]
pub fn blocked_in_read(pid: u32) -> bool {
    let asleep = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            == Some("S")
    });
    let in_read = std::fs::read_to_string(format!("/proc/{pid}/syscall")).is_ok_and(|call| {
        call.split_whitespace().next() == Some(libc::SYS_read.to_string().as_str())
    });
    asleep && in_read
}

/// Stops process `pid` (SIGSTOP) and, where `/proc` tells, waits until every thread of it
/// has stopped: a frozen process holds on to whatever it had, as a very slow one would.
///
/// # Panics
///
/// When the signal cannot be sent.
#[cfg(unix)]
pub fn stop(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions.
    let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
    assert_eq!(sent, 0, "stop process {pid}");
    if thread_states(pid).is_some() {
        eventually("every thread has stopped", || {
            thread_states(pid).is_some_and(|states| states.iter().all(|s| matches!(s, 'T' | 't')))
        });
    } else {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lets a process that [`stop`] stopped go on (SIGCONT).
///
/// # Panics
///
/// When the signal cannot be sent.
#[cfg(unix)]
pub fn resume(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions.
    let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
    assert_eq!(sent, 0, "resume process {pid}");
}

/// The environment variable that moves the seeds of the seeded fuzz tests (see
/// [`fuzz_seeds`]); `cargo xtask soak` sets it to a fresh number for every round of its
/// fuzz leg and prints it.
pub const FUZZ_SEED_VAR: &str = "PROCS_FUZZ_SEED";

/// The seeds of a seeded fuzz loop of `cases` cases: `1..=cases` by default, so that a plain
/// `cargo test` is the same run every time, or `cases` seeds from the number in
/// `PROCS_FUZZ_SEED` on, so that the soak's fuzz leg tries new inputs. A failure names the
/// seed of its case; `PROCS_FUZZ_SEED=<that seed>` replays it first.
///
/// # Panics
///
/// When `PROCS_FUZZ_SEED` is set to something other than a number.
pub fn fuzz_seeds(cases: u64) -> impl Iterator<Item = u64> + Clone {
    let first = first_fuzz_seed();
    (0..cases).map(move |i| first.wrapping_add(i))
}

/// The seed of a fuzz test that draws one stream from one fixed seed: `fixed` by default, or
/// `fixed` moved by `PROCS_FUZZ_SEED` (see [`fuzz_seeds`]); never 0, where a xorshift would
/// stay.
///
/// # Panics
///
/// When `PROCS_FUZZ_SEED` is set to something other than a number.
pub fn fuzz_seed(fixed: u64) -> u64 {
    let moved = fixed
        ^ first_fuzz_seed()
            .wrapping_sub(1)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    if moved == 0 { fixed } else { moved }
}

fn first_fuzz_seed() -> u64 {
    match std::env::var(FUZZ_SEED_VAR) {
        Ok(value) => value.trim().parse::<u64>().unwrap_or_else(|_| {
            panic!("{FUZZ_SEED_VAR}={value:?}: the first seed must be a number (u64)")
        }),
        Err(_) => 1,
    }
}

/// A xorshift64 generator for the seeded fuzz tests: small and deterministic, so that a
/// failure replays from the seed its message names.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (0 is replaced, as xorshift would stay at 0).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True once in `n` times on average.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// Between 0 and `max` random bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max as u64 + 1) as usize;
        (0..len).map(|_| self.byte()).collect()
    }

    /// Changes a few bytes of `bytes` at random (flips, random values, 0 and 0xff).
    pub fn mutate(&mut self, bytes: &mut [u8]) {
        if bytes.is_empty() {
            return;
        }
        for _ in 0..=self.below(3) {
            let at = self.below(bytes.len() as u64) as usize;
            bytes[at] = match self.below(4) {
                0 => bytes[at] ^ (1 << self.below(8)),
                1 => 0,
                2 => 0xff,
                _ => self.byte(),
            };
        }
    }
}

/// Runs `f` on a thread of its own and returns what it returns, failing the test if it has
/// not returned within `limit` (a hang: the thread is left behind) or if it panicked.
///
/// # Panics
///
/// When `f` hangs or panics; the message names `what`.
pub fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, result) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = done.send(outcome);
    });
    match result.recv_timeout(limit) {
        Ok(Ok(value)) => {
            let _ = thread.join();
            value
        }
        Ok(Err(panic)) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic without a message");
            panic!("{what}: panicked: {message}")
        }
        Err(_) => panic!("{what}: still running after {limit:?} (a hang)"),
    }
}

/// The number of file descriptors open in this process (Unix, where `/dev/fd` lists them).
///
/// # Panics
///
/// When `/dev/fd` cannot be read.
#[cfg(unix)]
pub fn open_fds() -> usize {
    // The listing's own descriptor is counted once, the same way every time.
    std::fs::read_dir("/dev/fd").expect("list /dev/fd").count()
}

/// What the shared state of a `proc-sync` primitive is on the wire (a `Semaphore`, the
/// `Lock` and state of a `Condition`, the state of a `Barrier`): the header of its kind with
/// the size and alignment of its state, the wire form of the `SharedMemory` that holds it
/// (header, handle, mapping length, size, name, tracker), and its parkers.
pub type StateWire = (
    (u32, u64, u64),
    (
        (u32, u64, u64),
        proc_core::Handle,
        u64,
        u64,
        Option<String>,
        Option<proc_core::Handle>,
    ),
    proc_core::shared::Parkers,
);

/// A second mapping of a primitive's shared state, for tests that write what a process
/// killed at some point (or a recycled pid) leaves there, as a hostile or dying peer would.
#[derive(Debug)]
pub struct StateMap {
    segment: proc_core::shared::Segment,
    size: usize,
}

impl StateMap {
    /// Maps the state that `wire` names.
    ///
    /// # Panics
    ///
    /// When the segment cannot be mapped or is smaller than its state.
    pub fn new(wire: StateWire) -> StateMap {
        let ((_, size, _), (_, handle, len, _, _, _), _) = wire;
        let (size, len) = (size as usize, len as usize);
        assert!(size <= len, "a state larger than its segment");
        let segment = proc_core::shared::Segment::from_handle(handle, len).expect("map the state");
        StateMap { segment, size }
    }

    /// Maps the state of `primitive`, a primitive of `proc-sync` whose wire form is a
    /// [`StateWire`] (a `Lock`, an `RLock`, a `BoundedSemaphore`...), as a second process
    /// would that received it.
    ///
    /// # Panics
    ///
    /// When the primitive does not travel as a `StateWire`, or its state cannot be mapped.
    pub fn of(primitive: &impl serde::Serialize) -> StateMap {
        let (a, b) = proc_core::Link::pair().expect("a link to send the primitive through");
        a.send(primitive).expect("send the primitive");
        StateMap::new(
            b.recv::<StateWire>()
                .expect("the primitive travels as a state"),
        )
    }

    /// The size of the state's type, as its header says.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The state as 64-bit words (the last partial word left out).
    pub fn words(&self) -> &[std::sync::atomic::AtomicU64] {
        // SAFETY: the segment is page-aligned and at least `size` bytes long; every process
        // that maps it reads and writes the state with atomics, so atomic views of its
        // aligned words are fine while they change, and they live as long as `self`.
        unsafe {
            std::slice::from_raw_parts(
                self.segment.as_ptr().cast::<std::sync::atomic::AtomicU64>(),
                self.size / 8,
            )
        }
    }

    /// The 32-bit word at byte `offset` of the state.
    ///
    /// # Panics
    ///
    /// When `offset` is not a 4-byte aligned place inside the state.
    pub fn word32(&self, offset: usize) -> &std::sync::atomic::AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.size);
        // SAFETY: as in `words`, for an aligned 32-bit word inside the state.
        unsafe {
            &*self
                .segment
                .as_ptr()
                .add(offset)
                .cast::<std::sync::atomic::AtomicU32>()
        }
    }

    /// The index in [`words`](StateMap::words) of the holder slot that records `count`
    /// holds of the process `pid` that started at `start`, as `proc-sync`'s table of holders
    /// lays a slot out: the pid in the high half of a word and the count in the low half,
    /// then the start time in the next word. `None` when no slot says that.
    pub fn holder_slot(&self, pid: u32, count: u32, start: u64) -> Option<usize> {
        use std::sync::atomic::Ordering;
        let hold = (u64::from(pid) << 32) | u64::from(count);
        let words = self.words();
        (0..words.len().saturating_sub(1)).find(|&i| {
            words[i].load(Ordering::SeqCst) == hold && words[i + 1].load(Ordering::SeqCst) == start
        })
    }

    /// Kills `victim`, which holds `count` in a slot of this state, and makes its slot name
    /// a live [`Stranger`] (started with `method`) instead, keeping its count and start
    /// time: what the record says once the holder died and the system gave its pid to
    /// another process before anyone looked (a test cannot make the system recycle a pid).
    /// Returns the stranger, which must outlive the test's checks; `None`, with the victim
    /// killed, where the platform cannot tell processes of one pid apart.
    ///
    /// # Panics
    ///
    /// When no slot records `victim`'s pid, `count` and start time, or the victim does not
    /// end by the signal.
    pub fn kill_and_give_pid_away<R: serde::Serialize + serde::de::DeserializeOwned + 'static>(
        &self,
        victim: &mut Process<R>,
        count: u32,
        method: StartMethod,
    ) -> Option<Stranger> {
        let pid = victim.pid().expect("a started victim");
        let Some(start) = proc_core::shared::start_time_of(pid) else {
            let _ = victim.kill();
            let _ = victim.join_timeout(PATIENCE);
            return None;
        };
        let slot = self
            .holder_slot(pid, count, start)
            .expect("the victim's slot names its pid, its count and its start time");
        let stranger = Stranger::new(method, start);
        victim.kill().expect("kill the victim");
        let ended = victim.join_timeout(PATIENCE);
        assert!(
            ended.as_ref().err().and_then(|e| e.signal()).is_some(),
            "the victim did not end by the signal"
        );
        self.give_pid_to(slot, stranger.pid());
        Some(stranger)
    }

    /// Makes the lock word at byte `offset` of this state, which names the live `victim` as
    /// its owner, name a live [`Stranger`] (started with `method`) with the victim's start
    /// time instead, then kills the victim: what the word says once its owner died and the
    /// system gave the owner's pid to another process before anyone looked (a test cannot
    /// make the system recycle a pid). The word is rewritten before the kill, so that it
    /// never names a dead pid: only the hash of the start time that it holds beside the pid
    /// can tell a waiter that the owner is gone. Returns the stranger, which must outlive
    /// the test's checks; `None`, with the victim killed, where a lock's word cannot tell
    /// processes of one pid apart (Windows).
    ///
    /// # Panics
    ///
    /// When the word does not hold `victim`'s identity (its pid and start time), or the
    /// victim does not end by the signal.
    pub fn give_lock_away_and_kill<R: serde::Serialize + serde::de::DeserializeOwned + 'static>(
        &self,
        victim: &mut Process<R>,
        offset: usize,
        method: StartMethod,
    ) -> Option<Stranger> {
        use proc_core::shared::identity_of;
        use std::sync::atomic::Ordering;
        let pid = victim.pid().expect("a started victim");
        let start = proc_core::shared::start_time_of(pid);
        let owner = identity_of(pid, start.unwrap_or(0));
        let word = self.word32(offset);
        assert_eq!(
            word.load(Ordering::SeqCst),
            owner,
            "the lock's word does not name the victim by its identity"
        );
        let stranger = match start {
            Some(start) if owner != pid => Some(Stranger::unlike(method, |p, s| {
                identity_of(p, s) != identity_of(p, start)
            })),
            _ => None,
        };
        if let Some(stranger) = &stranger {
            word.store(
                identity_of(stranger.pid(), start.unwrap_or(0)),
                Ordering::SeqCst,
            );
        }
        victim.kill().expect("kill the victim");
        let ended = victim.join_timeout(PATIENCE);
        assert!(
            ended.as_ref().err().and_then(|e| e.signal()).is_some() || cfg!(windows),
            "the victim did not end by the signal"
        );
        stranger
    }

    /// Makes the slot at word `index` name process `pid` instead, keeping its count and
    /// start time.
    fn give_pid_to(&self, index: usize, pid: u32) {
        use std::sync::atomic::Ordering;
        let word = &self.words()[index];
        let count = word.load(Ordering::SeqCst) & u64::from(u32::MAX);
        word.store((u64::from(pid) << 32) | count, Ordering::SeqCst);
    }
}

/// A second mapping of a table of owner slots in a segment of `proc-ipc` (a queue's
/// backlogs, a channel's ends), for tests that write what a recycled pid leaves there. A slot
/// starts with its owner as `proc-ipc` lays it out: a word with the pid in its low half (the
/// low bits of the start time above it), then the start time.
#[derive(Debug)]
pub struct OwnerTable {
    segment: proc_core::shared::Segment,
    at: usize,
    slots: usize,
    slot: usize,
}

impl OwnerTable {
    /// Maps the segment that `handle` and `len` name, whose table has `slots` slots of
    /// `slot` bytes from byte `at` on.
    ///
    /// # Panics
    ///
    /// When the segment cannot be mapped or the table does not fit in it, or a slot is not
    /// made of aligned 64-bit words.
    pub fn new(
        handle: proc_core::Handle,
        len: usize,
        at: usize,
        slots: usize,
        slot: usize,
    ) -> OwnerTable {
        assert!(at.is_multiple_of(8) && slot.is_multiple_of(8) && slot >= 16);
        assert!(at + slots * slot <= len, "a table larger than its segment");
        let segment = proc_core::shared::Segment::from_handle(handle, len).expect("map the table");
        OwnerTable {
            segment,
            at,
            slots,
            slot,
        }
    }

    /// The 64-bit word at byte `offset` of slot `index`.
    ///
    /// # Panics
    ///
    /// When `index` or `offset` is out of the table or `offset` is not 8-byte aligned.
    pub fn word(&self, index: usize, offset: usize) -> &std::sync::atomic::AtomicU64 {
        assert!(index < self.slots && offset + 8 <= self.slot && offset.is_multiple_of(8));
        // SAFETY: the segment is page-aligned and holds the whole table (checked in `new`),
        // so the offset is an aligned `u64` inside it; every process reads and writes the
        // table with atomics, and the view lives as long as `self`.
        unsafe {
            &*self
                .segment
                .as_ptr()
                .add(self.at + index * self.slot + offset)
                .cast::<std::sync::atomic::AtomicU64>()
        }
    }

    /// The slot that names process `pid`, started at `start`, with a count above 0 in the
    /// low half of its word at byte `count_at`.
    pub fn slot_of(&self, pid: u32, start: u64, count_at: usize) -> Option<usize> {
        use std::sync::atomic::Ordering::SeqCst;
        (0..self.slots).find(|&i| {
            self.word(i, 0).load(SeqCst) as u32 == pid
                && self.word(i, 8).load(SeqCst) == start
                && self.word(i, count_at).load(SeqCst) as u32 > 0
        })
    }

    /// Makes the slot of the live `victim` (whose count at byte `count_at` is above 0) name a
    /// live [`Stranger`] (started with `method`) with the victim's start time instead, then
    /// kills the victim: what the slot says once its owner died and the system gave the
    /// owner's pid to another process before anyone looked (a test cannot make the system
    /// recycle a pid). The slot is rewritten before the kill, so that it never names a dead
    /// pid: only the start time can tell a reader that the owner is gone. Returns the
    /// stranger, which must outlive the test's checks.
    ///
    /// # Panics
    ///
    /// When the victim's start time cannot be read, no slot names it by its pid and start
    /// time, or it does not end.
    pub fn give_away_and_kill<R: serde::Serialize + serde::de::DeserializeOwned + 'static>(
        &self,
        victim: &mut Process<R>,
        count_at: usize,
        method: StartMethod,
    ) -> Stranger {
        let pid = victim.pid().expect("a started victim");
        let start = proc_core::shared::start_time_of(pid).expect("the victim's start time");
        let slot = self
            .slot_of(pid, start, count_at)
            .expect("the victim's slot names its pid and start time and counts something");
        let stranger = Stranger::new(method, start);
        self.give_to(slot, stranger.pid());
        victim.kill().expect("kill the victim");
        assert!(
            victim.join_timeout(PATIENCE).is_err(),
            "the victim did not end by the signal"
        );
        stranger
    }

    /// Makes slot `index` name `pid` instead, keeping the rest of what it says (the start
    /// time and the counts): what it reads once its owner died and the system gave the pid
    /// to another process.
    pub fn give_to(&self, index: usize, pid: u32) {
        use std::sync::atomic::Ordering::SeqCst;
        let word = self.word(index, 0);
        word.store(
            (word.load(SeqCst) & !u64::from(u32::MAX)) | u64::from(pid),
            SeqCst,
        );
    }
}

/// Sleeps until killed.
fn idle((): ()) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A live process that started at another time than `start` (a start time of
/// `proc_core::shared::start_time_of`), to stand for the process that the system gave a dead
/// holder's pid to; killed when dropped.
///
/// Start times are clock ticks on Linux (10 ms), and a child started within the tick of the
/// dead holder would pass for it, which no recycled pid can do (the system goes through the
/// whole range of pids first): such a child is replaced.
#[derive(Debug)]
pub struct Stranger(Process<()>);

impl Stranger {
    /// Starts one with `method`.
    ///
    /// # Panics
    ///
    /// When no process can be started, or none starts at another time than `start`.
    pub fn new(method: StartMethod, start: u64) -> Stranger {
        Stranger::unlike(method, |_, s| s != start)
    }

    /// Starts one with `method` whose pid and start time pass `differs`: the start time
    /// differs from the dead process's in what the record at hand keeps of it. A child that
    /// does not pass is replaced (one started within the tick of the dead process, or whose
    /// start time has the same hash).
    ///
    /// # Panics
    ///
    /// When no process can be started, or none of a hundred passes.
    pub fn unlike(method: StartMethod, differs: impl Fn(u32, u64) -> bool) -> Stranger {
        for _ in 0..100 {
            let stranger = Stranger(builder(method).spawn(idle, ()).expect("start a stranger"));
            let pid = stranger.pid();
            if proc_core::shared::start_time_of(pid).is_some_and(|s| differs(pid, s)) {
                return stranger;
            }
            drop(stranger);
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no process started that differs from the dead one");
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.0.pid().expect("a started process has a pid")
    }

    /// Whether it still runs.
    pub fn is_alive(&self) -> bool {
        self.0.is_alive()
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.join_timeout(PATIENCE);
    }
}
