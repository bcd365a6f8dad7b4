// An RLock belongs to the thread that holds it: its guard cannot move to another thread.
fn send<T: Send>(_: T) {}

fn main() {
    let rlock = procs::RLock::new().unwrap();
    send(rlock.acquire());
}
