//! What `join` changes: without it the parent runs on while the child works; with it, the
//! parent waits for the child (and gets its result).

use std::time::{Duration, Instant};

use procs::Process;

fn work(ms: u64) -> String {
    std::thread::sleep(Duration::from_millis(ms));
    println!(
        "  [{}] finished after {ms} ms",
        procs::current_process().name()
    );
    format!("{ms} ms of work")
}

fn main() -> procs::Result<()> {
    procs::init();
    let start = Instant::now();

    println!("without join:");
    let mut p = Process::builder().name("unjoined").spawn(work, 300)?;
    println!(
        "  [main] moves on at {} ms while the child still runs: alive = {}",
        start.elapsed().as_millis(),
        p.is_alive()
    );

    println!("with join:");
    let mut q = Process::builder().name("joined").spawn(work, 100)?;
    let result = q.join()?;
    println!(
        "  [main] joined at {} ms and got {result:?}",
        start.elapsed().as_millis()
    );

    // A process that is not joined is still waited for when the program exits, as in Python;
    // joining it here keeps the output in order.
    p.join()?;
    println!(
        "  [main] the unjoined child ended at {} ms",
        start.elapsed().as_millis()
    );
    Ok(())
}
