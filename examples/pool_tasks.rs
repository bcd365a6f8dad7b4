//! A pool of three workers runs five tasks of random length; callbacks in the parent collect
//! the results. (Python: `Pool(3)`, `apply_async(task, callback=...)`, `close()`, `join()`.)

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use procs::Pool;

/// Sleeps for a length of time that depends on the task, like the seed's `random()`, and
/// says which worker ran it.
fn task(number: u32) -> (u32, u32, f64) {
    let seconds = f64::from((number * 37 + 11) % 10) / 10.0 + 0.2;
    println!(
        "Task {number} runs {seconds:.2} seconds (pid {})",
        procs::getpid()
    );
    std::thread::sleep(Duration::from_secs_f64(seconds));
    (number, procs::getpid(), seconds)
}

fn main() -> procs::Result<()> {
    procs::init();
    println!("Parent process {}", procs::getpid());
    let pool = Pool::new(3)?;
    let done = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let results = (1..=5)
        .map(|number| {
            let done = done.clone();
            pool.apply_async_with(
                task,
                number,
                move |(n, pid, secs): &(u32, u32, f64)| {
                    println!("Callback: task {n} done in worker {pid} after {secs:.2} s");
                    done.lock().unwrap().push(*n);
                },
                |e| println!("Callback: a task failed: {e}"),
            )
        })
        .collect::<procs::Result<Vec<_>>>()?;
    println!("Waiting for all subprocesses done...");
    pool.close();
    pool.join()?;
    println!(
        "All subprocesses done in {:.2} s.",
        start.elapsed().as_secs_f64()
    );
    let pids: BTreeSet<u32> = results
        .iter()
        .map(|r| r.get().map(|(_, pid, _)| pid))
        .collect::<procs::Result<_>>()?;
    println!("{} distinct workers ran the 5 tasks", pids.len());
    assert!(pids.len() <= 3);
    assert_eq!(done.lock().unwrap().len(), 5);
    Ok(())
}
