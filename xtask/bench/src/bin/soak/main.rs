//! The kill -9 soak that `cargo xtask soak` runs (issue 15): processes that use one of the
//! workspace's process primitives are SIGKILLed at random points, and after every trial the
//! survivors, the items and the resources are checked against a model of what must hold.
//!
//! ```text
//! soak <primitive> [--trials N] [--budget-secs S] [--hang-secs H] [--seed X]
//! ```
//!
//! runs up to `N` trials of one primitive (fewer when `S` seconds have passed), prints every
//! trial that broke the model, and ends with one line that the xtask reads:
//!
//! ```text
//! ROW <primitive> <trials> <kills> <hangs> <lost> <torn/dup> <leaked> <inside>
//! ```
//!
//! What each trial checks:
//!
//! - hangs: every process that was not killed ends within `H` seconds (it is killed and counted
//!   otherwise), and so does every wait of this process on the primitive; where the
//!   primitive names its own bound for noticing a dead peer (a channel's transit bound, a
//!   barrier's timeout and liveness slice) the bound is that plus [`SLACK`] instead;
//! - lost and torn/dup: the primitive's model, in the module of its family (`queues.rs`,
//!   `locks.rs`, `pool.rs`);
//! - leaked: after the trial this process can take the lock or every permit within `H`
//!   seconds, and its descriptors, memfd mappings and child processes (zombies included)
//!   are back to what they were before the trial (`/dev/shm` growth is printed, not
//!   counted: other processes of the machine add entries there).
//!
//! `inside` counts the kills seen to land inside an operation (see [`Trial::inside`]).
//!
//! Which process dies and when comes from a seeded generator: the seed is printed, and
//! `--seed` replays a run (up to the timing of the processes).

mod locks;
mod pool;
mod queues;
mod resources;

use std::error::Error;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use procs::ipc::Connection;
use procs::{Process, StartMethod};

use resources::Counts;

include!("primitives.rs");

fn main() -> ExitCode {
    procs::init();
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("soak: error: {error}");
            ExitCode::from(2)
        }
    }
}

/// The command line.
struct Args {
    primitive: String,
    trials: u32,
    budget: Duration,
    hang: Duration,
    seed: u64,
}

fn parse() -> Result<Args, Box<dyn Error>> {
    let mut args = Args {
        primitive: String::new(),
        trials: 100,
        budget: Duration::from_secs(600),
        hang: Duration::from_secs(30),
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        let mut value = |flag: &str| iter.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--trials" => args.trials = value("--trials")?.parse()?,
            "--budget-secs" => args.budget = Duration::from_secs(value("--budget-secs")?.parse()?),
            "--hang-secs" => args.hang = Duration::from_secs(value("--hang-secs")?.parse()?),
            "--seed" => args.seed = value("--seed")?.parse()?,
            name if PRIMITIVES.contains(&name) && args.primitive.is_empty() => {
                args.primitive = name.to_string();
            }
            other => {
                return Err(format!(
                    "unexpected argument {other:?}; usage: soak <{}> [--trials N] \
                     [--budget-secs S] [--hang-secs H] [--seed X]",
                    PRIMITIVES.join("|")
                )
                .into());
            }
        }
    }
    if args.primitive.is_empty() {
        return Err(format!("name a primitive: {}", PRIMITIVES.join(", ")).into());
    }
    Ok(args)
}

/// Runs the trials; `Ok(false)` when the model was broken at least once.
fn run() -> Result<bool, Box<dyn Error>> {
    let args = parse()?;
    if !cfg!(target_os = "linux") {
        println!("SKIPPED: the soak counts resources through /proc and runs on Linux only");
        return Ok(true);
    }
    println!(
        "soak {}: up to {} trials in {}s, hang bound {}s, seed {}",
        args.primitive,
        args.trials,
        args.budget.as_secs(),
        args.hang.as_secs(),
        args.seed
    );
    let mut rng = Rng::new(args.seed);
    let mut total = Tally::default();
    let start = Instant::now();
    // How long a trial takes when nobody is killed: the kills land anywhere in that span.
    // The first trial measures it, and every later one that ran its course without a kill
    // (its kill came after its end) moves it a fifth of the way, so that a first trial
    // slowed by the other jobs' start does not leave most kills landing after the end.
    let mut span = Duration::from_millis(50);
    let mut trials = 0;
    let first = Counts::now();
    while trials < args.trials && start.elapsed() < args.budget {
        let before = Counts::now();
        let kill_at = if trials == 0 {
            None
        } else {
            Some(span.mul_f64(rng.unit() * 1.2))
        };
        let mut trial = Trial::new(args.hang, kill_at, rng.next());
        let began = Instant::now();
        match args.primitive.as_str() {
            "queue" => queues::trial(&mut trial, queues::Kind::Queue)?,
            "joinable-queue" => queues::trial(&mut trial, queues::Kind::Joinable)?,
            "channel" => queues::trial(&mut trial, queues::Kind::Channel)?,
            "lock" => locks::trial(&mut trial, locks::Kind::Lock)?,
            "rlock" => locks::trial(&mut trial, locks::Kind::RLock)?,
            "value" => locks::trial(&mut trial, locks::Kind::Value)?,
            "semaphore" => locks::trial(&mut trial, locks::Kind::Semaphore)?,
            "barrier" => locks::trial(&mut trial, locks::Kind::Barrier)?,
            "pool" => pool::trial(&mut trial)?,
            _ => unreachable!("parse accepts only PRIMITIVES"),
        }
        if trial.kills == 0 {
            let took = began.elapsed().max(Duration::from_millis(5));
            span = if trials == 0 {
                took
            } else {
                span.mul_f64(0.8) + took.mul_f64(0.2)
            };
        }
        if trial.stuck {
            trial.fail("leak check skipped: a thread of the soak is still stuck in the primitive");
        } else if let Some(leak) = before.leaked_since(locks::HELD_BOUND) {
            trial.leaked += 1;
            trial.fail(&format!("leaked: {leak}"));
        } else if before.shm_grew() {
            println!(
                "note: /dev/shm grew during trial {} (not counted: shared with the machine)",
                trials + 1
            );
        }
        trials += 1;
        if !trial.failures.is_empty() {
            println!(
                "trial {trials} (seed {}, kill at {:?}):",
                trial.seed, trial.kill_at
            );
            for failure in &trial.failures {
                println!("  {failure}");
            }
        }
        total.add(&trial.tally());
    }
    println!(
        "{} trials in {:.1}s; resources at the start {first}, at the end {}",
        trials,
        start.elapsed().as_secs_f64(),
        Counts::now()
    );
    println!(
        "ROW {} {trials} {} {} {} {} {} {}",
        args.primitive, total.kills, total.hangs, total.lost, total.bad, total.leaked, total.inside
    );
    Ok(total.hangs + total.lost + total.bad + total.leaked == 0)
}

/// What the survivors may take beyond a primitive's own bound for noticing a dead peer (the
/// barrier's timeout, the channel's transit bound) to notice it, end and be joined: the
/// scheduling of a loaded machine, generously.
pub(crate) const SLACK: Duration = Duration::from_secs(5);

/// What trials count.
#[derive(Default, Clone, Copy)]
struct Tally {
    kills: u64,
    hangs: u64,
    lost: u64,
    bad: u64,
    leaked: u64,
    inside: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.kills += other.kills;
        self.hangs += other.hangs;
        self.lost += other.lost;
        self.bad += other.bad;
        self.leaked += other.leaked;
        self.inside += other.inside;
    }
}

/// One trial: its bound, when it kills, what it saw.
pub(crate) struct Trial {
    /// How long a survivor, or a wait of this process, may take.
    pub(crate) hang: Duration,
    /// When, after the processes start, the victim is killed; `None` for a trial without a
    /// kill (the first, which also measures how long a trial takes).
    pub(crate) kill_at: Option<Duration>,
    pub(crate) seed: u64,
    pub(crate) rng: Rng,
    pub(crate) kills: u64,
    pub(crate) hangs: u64,
    /// Items or updates that the model says must be there and are not.
    pub(crate) lost: u64,
    /// Torn or duplicated items, updates seen outside mutual exclusion, wrong results.
    pub(crate) bad: u64,
    pub(crate) leaked: u64,
    /// Kills seen to land inside an operation: a lock taken over from its dead owner, an
    /// item a killed consumer took with it, a barrier broken, a task failed with
    /// `WorkerDied`. Not a failure: evidence that the kills hit where they should.
    pub(crate) inside: u64,
    /// A thread of this process is still blocked in the primitive: the resources it holds
    /// make a leak check meaningless.
    pub(crate) stuck: bool,
    pub(crate) failures: Vec<String>,
}

impl Trial {
    fn new(hang: Duration, kill_at: Option<Duration>, seed: u64) -> Trial {
        Trial {
            hang,
            kill_at,
            seed,
            rng: Rng::new(seed),
            kills: 0,
            hangs: 0,
            lost: 0,
            bad: 0,
            leaked: 0,
            inside: 0,
            stuck: false,
            failures: Vec::new(),
        }
    }

    pub(crate) fn fail(&mut self, what: &str) {
        self.failures.push(what.to_string());
    }

    fn tally(&self) -> Tally {
        Tally {
            kills: self.kills,
            hangs: self.hangs,
            lost: self.lost,
            bad: self.bad,
            leaked: self.leaked,
            inside: self.inside,
        }
    }

    /// Waits for every child within `bound` (measured from `since`), kills those that do not
    /// end as hangs, and says of each whether it completed (`Some` of its value), was killed
    /// by us (`None`), or hung or failed (`None`, with a failure recorded).
    pub(crate) fn join_all<R: serde::Serialize + serde::de::DeserializeOwned + 'static>(
        &mut self,
        (since, bound): (Instant, Duration),
        children: &mut [Child<R>],
        victim: Option<usize>,
    ) -> Vec<Option<R>> {
        let mut results = Vec::new();
        for (i, child) in children.iter_mut().enumerate() {
            let left = bound.saturating_sub(since.elapsed());
            let outcome = child.process.join_timeout(left);
            results.push(match outcome {
                Ok(value) => Some(value),
                Err(procs::Error::Died { exitcode: -9 }) if victim == Some(i) => {
                    self.kills += 1;
                    None
                }
                Err(error) if error.is_timeout() => {
                    self.hangs += 1;
                    self.fail(&format!(
                        "hang: {} did not end within {:?}; killed",
                        child.role, bound
                    ));
                    let _ = child.process.kill();
                    let _ = child.process.join_timeout(self.hang);
                    None
                }
                Err(error) => {
                    self.bad += 1;
                    self.fail(&format!("{} failed: {error}", child.role));
                    None
                }
            });
        }
        results
    }
}

/// A process that the trial may kill, whatever it returns.
pub(crate) trait Kill {
    /// SIGKILLs the process if it still runs; whether it did. A process that already ended
    /// is not killed and not counted.
    fn kill_alive(&self) -> bool;
}

impl<R> Kill for Process<R> {
    fn kill_alive(&self) -> bool {
        self.is_alive() && self.kill().is_ok()
    }
}

/// A child of a trial, with what it is called in failure messages.
pub(crate) struct Child<R> {
    pub(crate) process: Process<R>,
    pub(crate) role: String,
}

/// Starts `f(args)` in a new process with the spawn start method, which works whatever
/// threads this process runs.
pub(crate) fn spawn<F, A, R>(role: String, f: F, args: A) -> procs::Result<Child<R>>
where
    F: Fn(A) -> R + Copy + Send + 'static,
    A: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    R: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let process = Process::builder()
        .start_method(StartMethod::Spawn)
        .spawn(f, args)?;
    Ok(Child { process, role })
}

/// The reports of a child, read by a thread of their own as they come: a child must never
/// block on a full pipe, which would look like a hang of the primitive.
pub(crate) struct Reports<const N: usize> {
    done: mpsc::Receiver<Vec<[u8; N]>>,
}

impl<const N: usize> Reports<N> {
    /// Reads messages of `N` bytes from `reader` until its writer is gone; a message cut
    /// short by a kill ends the reading.
    pub(crate) fn read(reader: Connection) -> Reports<N> {
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            while let Ok(bytes) = reader.recv_bytes() {
                match <[u8; N]>::try_from(bytes.as_slice()) {
                    Ok(message) => out.push(message),
                    Err(_) => break,
                }
            }
            let _ = tx.send(out);
        });
        Reports { done }
    }

    /// Everything read, once the writer has ended (call it after the child was joined).
    pub(crate) fn take(self, t: &mut Trial) -> Vec<[u8; N]> {
        match self.done.recv_timeout(Duration::from_secs(5)) {
            Ok(reports) => reports,
            Err(_) => {
                t.stuck = true;
                t.bad += 1;
                t.fail("a report pipe stayed open after its writer ended");
                Vec::new()
            }
        }
    }
}

/// A small generator (splitmix64), so that a run is replayed from its seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Spins for about `micros` microseconds without a system call, so that a kill lands inside
/// the caller's critical section rather than in a sleep.
pub(crate) fn spin(micros: u64) {
    let until = Instant::now() + Duration::from_micros(micros);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}
