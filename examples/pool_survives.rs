//! One failing task does not take the pool down (the seed's complaint about Python's
//! `pool.map`), and a worker killed mid-task fails only that task: Python's `Pool` would
//! hang forever there, its executor would break whole.

use std::time::Duration;

use procs::{Error, Pool, Queue};

fn risky(x: i32) -> i32 {
    if x == 3 {
        panic!("task {x} cannot be done");
    }
    x * 10
}

/// Tells the parent which worker runs it, then works for a long time.
fn long_task(pids: Queue<u32>) -> u32 {
    pids.put(procs::getpid()).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    0
}

fn main() -> procs::Result<()> {
    procs::init();
    let pool = Pool::new(2)?;
    match pool.map(risky, 1..=5) {
        Err(e) => println!("map failed as one task did: {e}"),
        Ok(v) => unreachable!("task 3 panics, yet map gave {v:?}"),
    }
    let again = pool.map(risky, vec![1, 2, 4])?;
    println!("the same pool, used again: {again:?}");
    assert_eq!(again, [10, 20, 40]);

    let pids = Queue::new()?;
    let doomed = pool.apply_async(long_task, pids.clone())?;
    let others: Vec<_> = (0..6)
        .map(|x| pool.apply_async(risky, x * 2))
        .collect::<procs::Result<_>>()?;
    let victim = pids.get()?;
    println!("killing worker {victim} in the middle of its task");
    kill_hard(victim);
    let err = doomed.get().unwrap_err();
    println!("its task: {err}");
    assert!(matches!(err, Error::WorkerDied { .. }));
    let rest: Vec<i32> = others
        .iter()
        .map(|r| r.get())
        .collect::<procs::Result<_>>()?;
    println!("every other task completed: {rest:?}");
    assert_eq!(rest, [0, 20, 40, 60, 80, 100]);
    Ok(())
}

#[cfg(unix)]
fn kill_hard(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "kill -9 {pid}");
}

#[cfg(windows)]
fn kill_hard(pid: u32) {
    let status = std::process::Command::new("taskkill")
        .args(["/F", "/PID", &pid.to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "taskkill {pid}");
}
