//! `map` gives each task one argument, `starmap` unpacks a tuple into several.
//! (Python: `pool.map(square, range(10))`, `pool.starmap(multiply, [(1, 2), (3, 4)])`.)

use procs::Pool;

fn square(x: u64) -> u64 {
    x * x
}

fn main() -> procs::Result<()> {
    procs::init();
    let pool = Pool::new(4)?;
    let squares = pool.map(square, 0..10)?;
    println!("map(square, 0..10) = {squares:?}");
    assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    let products = pool.starmap(|a: u64, b: u64| a * b, vec![(1, 2), (3, 4), (5, 6)])?;
    println!("starmap(a * b, [(1, 2), (3, 4), (5, 6)]) = {products:?}");
    assert_eq!(products, [2, 12, 30]);
    let volumes = pool.starmap(
        |a: u32, b: u32, c: u32| a * b * c,
        vec![(1, 2, 3), (2, 3, 4)],
    )?;
    println!("starmap(a * b * c, ...) = {volumes:?}");
    assert_eq!(volumes, [6, 24]);
    Ok(())
}
