// A guard left unused is released on the same line: the compiler says so.
#![deny(unused_must_use)]

fn main() {
    let lock = procs::Lock::new().unwrap();
    lock.acquire();
}
