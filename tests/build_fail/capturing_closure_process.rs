// A closure that captures its environment cannot run in a child: refused at compile time.
fn main() {
    let base = 10;
    let _p = procs::Process::new(move |x: i32| x + base, 1);
}
