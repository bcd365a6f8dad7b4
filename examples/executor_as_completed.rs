//! Futures from a process executor, taken as they complete, and the first one to finish.
//! (Python: `ProcessPoolExecutor`, `as_completed`, `wait(return_when=FIRST_COMPLETED)`.)

use std::time::Duration;

use procs::{ProcessPoolExecutor, ReturnWhen, as_completed, pool::wait};

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(50 * (5 - x)));
    x * x
}

fn main() -> procs::Result<()> {
    procs::init();
    let executor = ProcessPoolExecutor::new(4)?;
    let futures = (1..=4)
        .map(|x| executor.submit(slow_square, x))
        .collect::<procs::Result<Vec<_>>>()?;
    let (done, not_done) = wait(&futures, None, ReturnWhen::FirstCompleted);
    println!(
        "first completed: {} future(s), {} still running",
        done.len(),
        not_done.len()
    );
    assert!(!done.is_empty());
    let mut total = 0;
    for future in as_completed(&futures, Some(Duration::from_secs(60))) {
        let value = future?.result()?;
        println!("completed: {value}");
        total += value;
    }
    assert_eq!(total, 1 + 4 + 9 + 16);
    executor.shutdown(true, false);
    Ok(())
}
