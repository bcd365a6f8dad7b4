//! A long job: `imap` feeds a progress bar (it is an `ExactSizeIterator`), and the pool's time
//! is printed beside one process's.

use std::time::Instant;

use indicatif::ProgressIterator;
use procs::Pool;

/// A few milliseconds of arithmetic.
fn work(seed: u32) -> u64 {
    let mut x = u64::from(seed);
    for i in 0..2_000_000u64 {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}

fn main() -> procs::Result<()> {
    procs::init();
    let jobs = 200u32;
    let start = Instant::now();
    let serial: Vec<u64> = (0..jobs).map(work).collect();
    let one = start.elapsed();

    let pool = Pool::new(procs::cpu_count())?;
    let start = Instant::now();
    let results = pool.imap(work, 0..jobs)?;
    let bar = indicatif::ProgressBar::new(results.len() as u64);
    let parallel: Vec<u64> = results.progress_with(bar).collect::<procs::Result<_>>()?;
    let many = start.elapsed();
    assert_eq!(parallel, serial);
    println!(
        "{jobs} jobs: one process {:.2} s, pool of {} {:.2} s",
        one.as_secs_f64(),
        procs::cpu_count(),
        many.as_secs_f64()
    );
    Ok(())
}
