//! How tasks and answers travel between a pool and its process workers: small ones through
//! shared memory (the two rings on each worker's board), large ones and ones holding handles
//! through the link, with many tasks sent ahead of the one a worker runs. Whichever way each
//! takes, results arrive whole and in order; an answer a worker gave just before it died is
//! not lost; a worker that dies loses none of the tasks it had been sent and had not started,
//! and none runs twice; garbage in a task ring ends that worker only.

use std::io::{Read, Write};
#[cfg(unix)]
use std::path::PathBuf;

use proc_core::Handle;
use proc_core::StartMethod;
use proc_pool::Pool;
use procs_testkit::each_method;

/// A pool of two workers started with `method`.
fn two_workers(method: StartMethod) -> Pool {
    Pool::builder()
        .processes(2)
        .start_method(method)
        .build()
        .unwrap()
}

/// Small for most items, then past the ring's limit (4 KiB) every 7th, so that the answers
/// of one worker, or the tasks sent to it, alternate between the ring and the link.
fn sized(i: u64) -> Vec<u8> {
    let len = if i % 7 == 3 {
        5_000 + i as usize
    } else {
        (i % 50) as usize
    };
    vec![i as u8; len]
}

#[test]
fn answers_by_the_ring_and_by_the_link_keep_their_order() {
    each_method(|method| {
        let pool = two_workers(method);
        for chunksize in [1, 3] {
            let got = pool.map_chunked(sized, 0..2_000u64, chunksize).unwrap();
            assert_eq!(got.len(), 2_000);
            for (i, value) in got.iter().enumerate() {
                assert_eq!(
                    value,
                    &sized(i as u64),
                    "item {i} with chunksize {chunksize}"
                );
            }
        }
        let mut lazy = pool.imap(sized, 0..500u64).unwrap();
        for i in 0..500u64 {
            assert_eq!(lazy.next().unwrap().unwrap(), sized(i));
        }
        assert!(lazy.next().is_none());
    });
}

/// Past the ring's limit for the first and the last chunks of a map, small between: each
/// chunk's frame is made for the size the last one took, and each worker encodes its answers
/// into the buffer its last answer used, so a small chunk after a large one (and a large
/// one after small ones) must come back whole.
fn shrinking(i: u64) -> Vec<u8> {
    let len = if !(8..400).contains(&i) {
        20_000
    } else {
        (i % 5) as usize
    };
    vec![i as u8; len]
}

fn bumped(bytes: Vec<u8>) -> Vec<u8> {
    bytes.iter().rev().map(|b| b.wrapping_add(1)).collect()
}

#[test]
fn chunks_that_shrink_below_and_grow_past_the_ring_limit_come_back_whole() {
    each_method(|method| {
        let pool = two_workers(method);
        let inputs: Vec<Vec<u8>> = (0..408u64).map(shrinking).collect();
        let expected: Vec<Vec<u8>> = inputs.iter().cloned().map(bumped).collect();
        for chunksize in [4, 50] {
            let got = pool.map_chunked(bumped, inputs.clone(), chunksize).unwrap();
            assert_eq!(got.len(), expected.len());
            for (i, (got, want)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(got, want, "item {i} with chunksize {chunksize}");
            }
        }
        let lazy: Vec<Vec<u8>> = pool
            .imap_chunked(bumped, inputs.clone(), 4)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lazy, expected);
    });
}

fn triple(x: u64) -> u64 {
    x.wrapping_mul(3)
}

/// A million items in Python's default chunks (four per worker): every chunk's frame and
/// answer are far past the ring's limit and go by the link; every value comes back, in
/// order.
#[test]
fn a_million_items_in_default_chunks_come_back_in_order() {
    each_method(|method| {
        let pool = two_workers(method);
        let got = pool.map(triple, 0..1_000_000u64).unwrap();
        assert_eq!(got.len(), 1_000_000);
        for (i, value) in got.iter().enumerate() {
            assert_eq!(*value, triple(i as u64), "item {i}");
        }
    });
}

fn unlucky(x: u64) -> u64 {
    assert_ne!(x % 1_000, 3, "three is unlucky");
    x
}

/// A worker runs a chunk's items as it decodes them: an item that panics fails alone, the
/// items after it still run, in chunks of the ring and of the link alike.
#[test]
fn an_item_that_panics_in_a_chunk_fails_alone() {
    each_method(|method| {
        let pool = two_workers(method);
        // Chunks of 1,000 go through the ring; one of 300,000 is past it (the link).
        for (len, chunksize) in [(10_000u64, 1_000), (300_000, 300_000)] {
            let outcomes: Vec<_> = pool
                .imap_chunked(unlucky, 0..len, chunksize)
                .unwrap()
                .collect();
            assert_eq!(outcomes.len(), len as usize);
            for (i, outcome) in outcomes.into_iter().enumerate() {
                match outcome {
                    Err(e) if i % 1_000 == 3 => assert!(e.is_panic(), "item {i}: {e}"),
                    Ok(value) if i % 1_000 != 3 => assert_eq!(value, i as u64),
                    other => panic!("item {i}: {other:?}"),
                }
            }
            assert!(
                pool.map_chunked(unlucky, 0..len, chunksize)
                    .unwrap_err()
                    .is_panic()
            );
        }
    });
}

/// A `u64` whose `Deserialize` panics on 13: only a worker ever decodes it.
#[derive(Debug, serde::Serialize)]
struct Spooky(u64);

impl<'de> serde::Deserialize<'de> for Spooky {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(deserializer)?;
        assert_ne!(n, 13, "thirteen does not decode");
        Ok(Spooky(n))
    }
}

fn unwrap_spooky(spooky: Spooky) -> u64 {
    spooky.0
}

/// An argument whose `Deserialize` panics in the worker fails its chunk with an error
/// that says so, and the worker goes on.
#[test]
fn an_argument_whose_decoding_panics_fails_its_chunk() {
    each_method(|method| {
        let pool = two_workers(method);
        let items = || (0..100).map(Spooky);
        let error = pool.map_chunked(unwrap_spooky, items(), 10).unwrap_err();
        assert!(
            matches!(&error, proc_core::Error::Decode(m) if m.contains("thirteen")),
            "{error:?}"
        );
        let outcomes: Vec<_> = pool
            .imap_chunked(unwrap_spooky, items(), 10)
            .unwrap()
            .collect();
        for (i, outcome) in outcomes.into_iter().enumerate() {
            assert_eq!(
                outcome.is_err(),
                (10..20).contains(&i),
                "item {i}: {outcome:?}"
            );
        }
        let fine: Vec<u64> = (0..13).chain(14..100).collect();
        assert_eq!(
            pool.map(unwrap_spooky, fine.iter().copied().map(Spooky))
                .unwrap(),
            fine
        );
    });
}

/// Answers that hold a handle cannot go through shared memory: a pipe made in the worker,
/// with its number written into it, between plain answers.
fn pipe_or_number(i: u64) -> Result<Handle, u64> {
    if !i.is_multiple_of(5) {
        return Err(i);
    }
    let (reader, mut writer) = std::io::pipe().unwrap();
    std::io::Write::write_all(&mut writer, &i.to_le_bytes()).unwrap();
    Ok(Handle::from(reader))
}

#[test]
fn answers_holding_handles_come_by_the_link_between_the_others() {
    let pool = Pool::new(2).unwrap();
    let got = pool.map_chunked(pipe_or_number, 0..200u64, 1).unwrap();
    for (i, answer) in got.into_iter().enumerate() {
        match answer {
            Ok(handle) => {
                let mut bytes = [0u8; 8];
                std::io::PipeReader::from(handle)
                    .read_exact(&mut bytes)
                    .unwrap();
                assert_eq!(u64::from_le_bytes(bytes), i as u64);
            }
            Err(n) => assert_eq!(n, i as u64),
        }
    }
}

fn plus_100(i: u64) -> u64 {
    i + 100
}

fn exit_now(code: i32) {
    std::process::exit(code);
}

/// A small answer goes into the ring, and the worker's next task (sent ahead with it) ends
/// the worker at once: the pool often learns of the death with the answer still in shared
/// memory, and must deliver it before it buries the worker.
#[test]
fn an_answer_given_just_before_the_worker_died_is_delivered() {
    let pool = Pool::new(1).unwrap();
    for round in 0..20u64 {
        let answer = pool.apply_async(plus_100, round).unwrap();
        let death = pool.apply_async(exit_now, 3).unwrap();
        assert_eq!(answer.get().unwrap(), round + 100);
        let error = death.get().unwrap_err();
        assert!(
            matches!(error, proc_core::Error::WorkerDied { exitcode: 3 }),
            "{error}"
        );
    }
    assert_eq!(pool.map(plus_100, 0..3u64).unwrap(), [100, 101, 102]);
}

/// More handles than a frame may carry (64): the answer is marked in the ring, then cannot
/// be sent; its task fails by the link in the marked place, and the tasks around it keep
/// their answers and order.
fn many_pipes(i: u64) -> Vec<Handle> {
    let count = if i == 3 { 70 } else { 1 };
    (0..count)
        .map(|_| Handle::from(std::io::pipe().unwrap().0))
        .collect()
}

#[test]
fn an_answer_that_cannot_be_sent_fails_in_its_place() {
    let pool = Pool::new(1).unwrap();
    let pending: Vec<_> = (0..8u64)
        .map(|i| pool.apply_async(many_pipes, i).unwrap())
        .collect();
    for (i, result) in pending.into_iter().enumerate() {
        match result.into_result() {
            Ok(handles) => {
                assert_ne!(i, 3);
                assert_eq!(handles.len(), 1);
            }
            Err(error) => {
                assert_eq!(i, 3, "{error}");
                assert!(
                    error.to_string().contains("cannot send the result"),
                    "{error}"
                );
            }
        }
    }
    assert_eq!(pool.map(|x: u64| x + 1, 0..5u64).unwrap(), [1, 2, 3, 4, 5]);
}

/// What a task makes of its argument: its length and its first byte.
fn length_and_first(bytes: Vec<u8>) -> (usize, Option<u8>) {
    (bytes.len(), bytes.first().copied())
}

// CPython's `_TestPool.test_map` with chunksize 1 and 20, on arguments of mixed sizes.
#[test]
fn tasks_by_the_ring_and_by_the_link_keep_their_order() {
    each_method(|method| {
        let pool = two_workers(method);
        let inputs: Vec<Vec<u8>> = (0..1_000u64).map(sized).collect();
        let expected: Vec<_> = inputs
            .iter()
            .map(|b| (b.len(), b.first().copied()))
            .collect();
        for chunksize in [1, 20] {
            let got = pool
                .map_chunked(length_and_first, inputs.clone(), chunksize)
                .unwrap();
            assert_eq!(got, expected, "chunksize {chunksize}");
        }
        let mut lazy = pool.imap(length_and_first, inputs.clone()).unwrap();
        for want in &expected {
            assert_eq!(&lazy.next().unwrap().unwrap(), want);
        }
        assert!(lazy.next().is_none());
    });
}

/// Reads the number written into a pipe passed as the argument, or returns the number.
fn read_pipe_or_number(arg: Result<Handle, u64>) -> u64 {
    match arg {
        Ok(handle) => {
            let mut bytes = [0u8; 8];
            std::io::PipeReader::from(handle)
                .read_exact(&mut bytes)
                .unwrap();
            u64::from_le_bytes(bytes)
        }
        Err(n) => n,
    }
}

/// Tasks holding a handle cannot go through shared memory: every fifth task carries a pipe
/// with its number in it, between plain tasks.
#[test]
fn tasks_holding_handles_go_by_the_link_between_the_others() {
    let pool = Pool::new(2).unwrap();
    let args: Vec<Result<Handle, u64>> = (0..200u64)
        .map(|i| {
            if !i.is_multiple_of(5) {
                return Err(i);
            }
            let (reader, mut writer) = std::io::pipe().unwrap();
            writer.write_all(&i.to_le_bytes()).unwrap();
            Ok(Handle::from(reader))
        })
        .collect();
    let got = pool.map_chunked(read_pipe_or_number, args, 1).unwrap();
    assert_eq!(got, (0..200u64).collect::<Vec<_>>());
}

/// Appends `i` to the file at `path`, one line a run, and returns `i` doubled.
#[cfg(target_os = "linux")]
fn note_and_double((path, i): (PathBuf, u64)) -> u64 {
    note_and_double_padded((path, i, Vec::new()))
}

/// `note_and_double` with padding that makes its task as large as one likes.
#[cfg(unix)]
fn note_and_double_padded((path, i, _padding): (PathBuf, u64, Vec<u8>)) -> u64 {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    // One write of a short line with O_APPEND: runs in two workers never interleave.
    file.write_all(format!("{i}\n").as_bytes()).unwrap();
    i * 2
}

/// The numbers `note_and_double` wrote to `path`, one a run, in increasing order.
#[cfg(unix)]
fn runs(path: &std::path::Path) -> Vec<u64> {
    let mut runs: Vec<u64> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect();
    runs.sort_unstable();
    runs
}

/// A fresh file name for one test under one start method.
#[cfg(unix)]
fn scratch_file(name: &str, method: StartMethod) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "procs-answers-{name}-{method:?}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// Mechanism 6 with tasks sent ahead: a worker killed while it runs one task has others
/// waiting on its board. The one it ran fails with `WorkerDied`; each of the others runs
/// exactly once, on the worker that replaces it. The others are small tasks, then tasks
/// past the ring's 4 KiB limit for small records, which are sent ahead in the ring while it
/// has room for them.
#[cfg(unix)]
#[test]
fn a_worker_killed_with_tasks_sent_ahead_loses_none_and_runs_none_twice() {
    use proc_core::Error;
    use proc_ipc::Queue;
    use procs_testkit::PATIENCE;

    fn report_and_sleep(pids: Queue<u32>) -> u32 {
        pids.put(std::process::id()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(60));
        0
    }

    each_method(|method| {
        let pool = Pool::builder()
            .processes(1)
            .start_method(method)
            .build()
            .unwrap();
        for padding in [0, 20_000] {
            let path = scratch_file(&format!("killed-{padding}"), method);
            let pids = Queue::new().unwrap();
            let doomed = pool.apply_async(report_and_sleep, pids.clone()).unwrap();
            let others: Vec<_> = (0..40u64)
                .map(|i| {
                    let task = (path.clone(), i, vec![7u8; padding]);
                    pool.apply_async(note_and_double_padded, task).unwrap()
                })
                .collect();
            let victim = pids.get_timeout(PATIENCE).unwrap();
            // Gives the pool a moment to send the others ahead to the sleeping worker; the
            // assertions hold either way.
            std::thread::sleep(std::time::Duration::from_millis(200));
            // SAFETY: kill has no memory-safety preconditions.
            let killed = unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) };
            assert_eq!(killed, 0);
            let err = doomed.get_timeout(PATIENCE).unwrap_err();
            assert!(matches!(err, Error::WorkerDied { exitcode: -9 }), "{err}");
            for (i, r) in others.iter().enumerate() {
                assert_eq!(r.get_timeout(PATIENCE).unwrap(), i as u64 * 2);
            }
            assert_eq!(runs(&path), (0..40u64).collect::<Vec<_>>());
            let _ = std::fs::remove_file(&path);
        }
        pool.close();
        pool.join().unwrap();
    });
}

/// Writes a pattern over the first page of every shared memory segment of this process, but
/// for its first 256 bytes: in a worker, the board it shares with its pool, whose first page
/// holds the places' words (those bytes, left alone so that the pool can still tell which
/// tasks the worker started) and then the positions of the task ring.
#[cfg(target_os = "linux")]
fn scribble_on_the_board((): ()) -> u32 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for line in maps.lines().filter(|l| l.contains("/memfd:procs-shm")) {
        let range = line.split_whitespace().next().unwrap();
        let (start, _) = range.split_once('-').unwrap();
        let start = usize::from_str_radix(start, 16).unwrap();
        for offset in 256..4096usize {
            // SAFETY: the page is mapped shared and writable by this process (its line in
            // /proc/self/maps); the bytes are plain, and the point is to break the board.
            unsafe { ((start + offset) as *mut u8).write_volatile(offset as u8) };
        }
    }
    std::process::id()
}

/// A worker's task ring that holds garbage ends that worker: it takes no task from it, the
/// pool replaces it, and the tasks it had been sent run on the new worker, each once.
#[cfg(target_os = "linux")]
#[test]
fn garbage_in_a_task_ring_ends_that_worker_only() {
    let pool = Pool::new(1).unwrap();
    let path = scratch_file("garbage", StartMethod::Spawn);
    let broken = pool.apply_async(scribble_on_the_board, ()).unwrap();
    let others: Vec<_> = (0..30u64)
        .map(|i| {
            pool.apply_async(note_and_double, (path.clone(), i))
                .unwrap()
        })
        .collect();
    let first = broken.get();
    for (i, r) in others.iter().enumerate() {
        assert_eq!(r.get().unwrap(), i as u64 * 2);
    }
    assert_eq!(runs(&path), (0..30u64).collect::<Vec<_>>());
    let _ = std::fs::remove_file(&path);
    let now: u32 = pool.apply(|(): ()| std::process::id(), ()).unwrap();
    if let Ok(pid) = first {
        assert_ne!(pid, now, "the worker with the broken board kept working");
    }
}
