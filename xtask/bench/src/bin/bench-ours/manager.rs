//! The manager benchmarks (issue 12): a `Manager`'s server in a process of its own, used
//! through its proxies, as `python/manager.py` uses Python's `Manager()`.

use std::error::Error;
use std::time::{Duration, Instant};

use procs::{DictProxy, Manager, Process, QueueProxy, StartMethod};
use procs_bench::Args;

use super::{BenchQueue, Item, queue_transfer, report};

/// The keys that `manager-dict` cycles through, so that the dict stays small.
const KEYS: u64 = 1024;

/// The items of one bulk call.
const BULK: u64 = 100_000;

impl<T: Item> BenchQueue<T> for QueueProxy<T> {
    fn put_item(&self, item: T) -> procs::Result<()> {
        self.put(item).map_err(procs::Error::from)
    }

    fn get_item(&self) -> procs::Result<T> {
        self.get().map_err(procs::Error::from)
    }
}

pub(crate) fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let manager = Manager::start()?;
    match args.benchmark.as_str() {
        "manager-dict" => dict_calls(&manager, args),
        "manager-queue" => queue_transfer::<_, u64>("manager_queue/ours", args, manager.queue()?),
        "manager-update" => bulk_update(&manager, args),
        _ => bulk_extend(&manager, args),
    }
}

/// The child of `manager-dict`: `warm` untimed set+get pairs, then `n` timed ones.
fn dict_child((d, warm, n): (DictProxy<u64, u64>, u64, u64)) -> Duration {
    let pair = |i: u64| {
        let k = i % KEYS;
        d.insert(k, i).unwrap();
        assert_eq!(d.get(&k).unwrap(), Some(i), "key {k} lost its value");
    };
    (0..warm).for_each(pair);
    let start = Instant::now();
    (0..n).for_each(pair);
    start.elapsed()
}

/// A child process sets and gets keys of a manager's dict; the time is per call.
fn dict_calls(manager: &Manager, args: &Args) -> Result<(), Box<dyn Error>> {
    let n = u64::from(args.iterations);
    let mut child = Process::builder()
        .start_method(StartMethod::Spawn)
        .spawn(dict_child, (manager.dict()?, u64::from(args.warmup), n))?;
    let elapsed = child.join()?;
    report("manager_dict/ours", elapsed, 2 * n);
    Ok(())
}

/// Runs `call` `--warmup` times, then `--iterations` times, each timed alone so that
/// `reset` runs untimed after every call; the time is per item of the timed calls.
fn bulk(
    name: &str,
    args: &Args,
    mut call: impl FnMut() -> procs::Result<()>,
    mut reset: impl FnMut() -> Result<(), Box<dyn Error>>,
) -> Result<(), Box<dyn Error>> {
    let mut elapsed = Duration::ZERO;
    for round in 0..args.warmup + args.iterations {
        let start = Instant::now();
        call()?;
        if round >= args.warmup {
            elapsed += start.elapsed();
        }
        reset()?;
    }
    report(name, elapsed, BULK * u64::from(args.iterations));
    Ok(())
}

fn bulk_update(manager: &Manager, args: &Args) -> Result<(), Box<dyn Error>> {
    let d = manager.dict::<u64, u64>()?;
    bulk(
        "manager_update/ours",
        args,
        || d.update((0..BULK).map(|i| (i, i))),
        || match d.len()? as u64 {
            BULK => Ok(()),
            len => Err(format!("{len} entries after an update of {BULK}").into()),
        },
    )
}

fn bulk_extend(manager: &Manager, args: &Args) -> Result<(), Box<dyn Error>> {
    let l = manager.list::<u64>()?;
    bulk(
        "manager_extend/ours",
        args,
        || l.extend(0..BULK),
        // Every call extends an empty list, as Python's does.
        || match l.len()? as u64 {
            BULK => Ok(l.clear()?),
            len => Err(format!("{len} items after an extend of {BULK}").into()),
        },
    )
}
