// A pool task is named by its function, as a process is: a capturing closure is refused.
fn main() {
    let pool = procs::Pool::new(1).unwrap();
    let base = 10;
    let _ = pool.apply(move |x: i32| x + base, 1);
}
