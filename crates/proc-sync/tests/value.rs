//! `Value`, `Array`, `RawValue` and `RawArray` between real processes, under every start
//! method, after CPython's `_TestValue` and `_TestArray`: increments under the lock reach the
//! exact total; a holder killed inside `with_lock` does not block the others.
//!
//! Contention is forced: the incrementers start together on a `Barrier` and sleep between
//! reading the value and writing it back under the lock, so a lock that did not exclude
//! would lose increments.

use std::time::Duration;

use proc_sync::{Array, ArrayGuard, Barrier, Event, Lock, RawArray, RawValue, Value, ValueGuard};
use procs_testkit::{PATIENCE, assert_send_sync, builder, each_method};

#[test]
fn values_are_send_and_sync() {
    fn assert_sync<T: Sync>() {}
    assert_send_sync::<Value<u64>>();
    assert_send_sync::<Array<f64>>();
    assert_send_sync::<RawValue<[u8; 3]>>();
    assert_send_sync::<RawArray<i16>>();
    let _ = assert_sync::<ValueGuard<'static, u64>>;
    let _ = assert_sync::<ArrayGuard<'static, u64>>;
}

/// How long an incrementer stays between its read and its write, under the lock: the
/// others, started at the same time, would write meanwhile were the lock broken.
const INSIDE: Duration = Duration::from_micros(100);

/// Waits for the other incrementers, so that all of them go for the lock at once.
fn start_together(barrier: &Barrier) {
    barrier
        .wait_timeout(PATIENCE)
        .expect("the other incrementers came");
}

fn increment((counter, n, start): (Value<u64>, u64, Barrier)) {
    start_together(&start);
    for _ in 0..n {
        counter.with_lock(|c| {
            let seen = *c;
            std::thread::sleep(INSIDE);
            *c = seen + 1;
        });
    }
}

#[test]
fn increments_under_the_lock_reach_the_exact_total() {
    each_method(|method| {
        let counter = Value::new(0u64).unwrap();
        let start = Barrier::new(5).unwrap();
        let children: Vec<_> = (0..5)
            .map(|_| {
                builder(method)
                    .spawn(increment, (counter.clone(), 200, start.clone()))
                    .unwrap()
            })
            .collect();
        for mut child in children {
            child.join().unwrap();
        }
        assert_eq!(counter.get(), 1000);
    });
}

fn reverse_and_append(array: Array<i32>) -> usize {
    array.with_lock(|xs| xs.reverse());
    array.set(0, 100).unwrap();
    array.len()
}

#[test]
fn array_changes_in_a_child_are_seen_by_the_parent() {
    each_method(|method| {
        let array = Array::from_slice(&[1, 2, 3, 4]).unwrap();
        let len = builder(method)
            .spawn(reverse_and_append, array.clone())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(len, 4);
        assert_eq!(array.to_vec(), [100, 3, 2, 1]);
        assert_eq!(array.get(4), None);
    });
}

#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Point {
    x: f64,
    y: f64,
}

// SAFETY: `#[repr(C)]`, two `f64`s and no padding: every bit pattern is a valid `Point`.
unsafe impl proc_sync::Zeroable for Point {}
// SAFETY: as above; `Point` is `Copy` and holds no pointers.
unsafe impl proc_sync::Pod for Point {}

fn move_point((p, raw): (Value<Point>, RawArray<u32>)) {
    p.with_lock(|p| {
        p.x += 1.0;
        p.y -= 1.0;
    });
    for i in 0..raw.len() {
        raw.set(i, raw.get(i).unwrap() * 10).unwrap();
    }
}

#[test]
fn structs_and_raw_arrays_travel() {
    each_method(|method| {
        let p = Value::new(Point { x: 1.0, y: 2.0 }).unwrap();
        let raw = RawArray::from_slice(&[1u32, 2, 3]).unwrap();
        builder(method)
            .spawn(move_point, (p.clone(), raw.clone()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(p.get(), Point { x: 2.0, y: 1.0 });
        assert_eq!(raw.to_vec(), [10, 20, 30]);
    });
}

fn publish((v, bytes): (RawValue<u64>, RawValue<[u8; 5]>)) {
    v.set(u64::MAX - 1);
    bytes.set(*b"hello");
}

#[test]
fn raw_values_travel_without_a_lock() {
    each_method(|method| {
        let v = RawValue::new(0u64).unwrap();
        let bytes = RawValue::new([0u8; 5]).unwrap();
        builder(method)
            .spawn(publish, (v.clone(), bytes.clone()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(v.get(), u64::MAX - 1);
        assert_eq!(&bytes.get(), b"hello");
    });
}

/// Takes the value's lock, half-updates the value, and waits to be killed.
fn die_inside_with_lock((v, holding): (Value<[u32; 2]>, Event)) {
    v.with_lock(|pair| {
        pair[0] = 1;
        holding.set();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

#[test]
fn a_holder_killed_inside_with_lock_does_not_block_the_value() {
    each_method(|method| {
        let v = Value::new([0u32; 2]).unwrap();
        let holding = Event::new().unwrap();
        let mut holder = builder(method)
            .spawn(die_inside_with_lock, (v.clone(), holding.clone()))
            .unwrap();
        assert!(holding.wait_timeout(PATIENCE));
        holder.kill().unwrap();
        let guard = v.lock_timeout(PATIENCE).unwrap();
        assert!(guard.owner_died());
        assert_eq!(*guard, [1, 0], "the half-update is visible");
        drop(guard);
        let _ = holder.join();
    });
}

/// Aligned beyond a page, which shared memory does not promise.
#[derive(Clone, Copy)]
#[repr(C, align(8192))]
struct OverAligned([u8; 8192]);

// SAFETY: bytes only and no padding (the size equals the alignment): any bytes are valid.
unsafe impl proc_sync::Zeroable for OverAligned {}
// SAFETY: as above; `Copy`, no pointers.
unsafe impl proc_sync::Pod for OverAligned {}

/// Aligned to a page, the most shared memory promises.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct PageAligned([u8; 4096]);

// SAFETY: as for `OverAligned`.
unsafe impl proc_sync::Zeroable for PageAligned {}
// SAFETY: as for `OverAligned`.
unsafe impl proc_sync::Pod for PageAligned {}

#[test]
fn a_type_aligned_beyond_a_page_is_refused() {
    let refused = |e: proc_core::Error| matches!(e, proc_core::Error::Unsupported(_));
    assert!(refused(Value::new(OverAligned([0; 8192])).unwrap_err()));
    assert!(refused(Array::<OverAligned>::new(1).unwrap_err()));
    assert!(refused(Array::<OverAligned>::new(0).unwrap_err()));
}

/// Where the child finds the value and the array, and whether it is aligned there.
fn page_aligned_addresses((v, a): (Value<PageAligned>, Array<PageAligned>)) -> bool {
    let value_at = std::ptr::from_ref(&*v.lock()).addr();
    let array_at = a.lock().as_ptr().addr();
    v.with_lock(|p| p.0[0] = 1);
    value_at.is_multiple_of(4096) && array_at.is_multiple_of(4096)
}

#[test]
fn a_page_aligned_type_is_aligned_in_every_process() {
    each_method(|method| {
        let v = Value::new(PageAligned([0; 4096])).unwrap();
        let a = Array::<PageAligned>::new(2).unwrap();
        assert!(std::ptr::from_ref(&*v.lock()).addr().is_multiple_of(4096));
        assert!(
            builder(method)
                .spawn(page_aligned_addresses, (v.clone(), a.clone()))
                .unwrap()
                .join()
                .unwrap()
        );
        assert_eq!(v.get().0[0], 1);
    });
}

/// Sends `value` and receives it as a `T`; `true` when the receiver refuses it.
fn refused_as<T: serde::de::DeserializeOwned>(value: &impl serde::Serialize) -> bool {
    let (a, b) = proc_core::Link::pair().unwrap();
    a.send(value).unwrap();
    matches!(b.recv::<T>(), Err(proc_core::Error::Decode(_)))
}

#[test]
fn a_value_taken_for_another_type_is_refused() {
    use proc_sync::{Lock, Semaphore, SharedMemory};

    let value = Value::new(7u64).unwrap();
    assert!(!refused_as::<Value<u64>>(&value));
    assert!(refused_as::<Value<u32>>(&value));
    assert!(
        refused_as::<Value<[u32; 2]>>(&value),
        "same size, other alignment"
    );
    assert!(refused_as::<RawValue<u64>>(&value));
    assert!(refused_as::<Lock>(&value));
    assert!(refused_as::<SharedMemory>(&value));
    assert!(refused_as::<Array<u64>>(&value));

    let raw = RawValue::new(7u64).unwrap();
    assert!(!refused_as::<RawValue<u64>>(&raw));
    assert!(refused_as::<Value<u64>>(&raw));
    assert!(refused_as::<SharedMemory>(&raw));
    assert!(refused_as::<RawValue<u16>>(&raw));

    let shm = SharedMemory::create(64).unwrap();
    assert!(!refused_as::<SharedMemory>(&shm));
    assert!(refused_as::<RawValue<u64>>(&shm));
    assert!(refused_as::<Lock>(&shm));

    let lock = Lock::new().unwrap();
    assert!(!refused_as::<Lock>(&lock));
    assert!(refused_as::<Value<u64>>(&lock));
    assert!(refused_as::<Semaphore>(&lock));
    assert!(refused_as::<Event>(&lock));

    let array = Array::from_slice(&[1u32, 2]).unwrap();
    assert!(!refused_as::<Array<u32>>(&array));
    assert!(refused_as::<Array<u64>>(&array));
    assert!(refused_as::<RawArray<u32>>(&array));
    let raw_array = RawArray::from_slice(&[1u8, 2]).unwrap();
    assert!(!refused_as::<RawArray<u8>>(&raw_array));
    assert!(refused_as::<RawArray<u16>>(&raw_array));
    assert!(refused_as::<Array<u8>>(&raw_array));
}

/// Receives what the parent sends as a `RawValue<u64>`; whether it was refused.
fn receive_as_raw_value(link: proc_core::Link) -> bool {
    matches!(
        link.recv::<RawValue<u64>>(),
        Err(proc_core::Error::Decode(_))
    )
}

#[test]
fn a_process_that_takes_a_value_for_a_raw_value_refuses_it() {
    each_method(|method| {
        let (mine, theirs) = proc_core::Link::pair().unwrap();
        let mut child = builder(method).spawn(receive_as_raw_value, theirs).unwrap();
        mine.send(&Value::new(1u64).unwrap()).unwrap();
        assert!(child.join().unwrap());
    });
}

/// Python's documented idiom, `with v.get_lock(): v.value += 1`, written as a Python user
/// writes it: the lock held across a `get` and a `set` that take it again.
fn increment_under_get_lock((counter, n, start): (Value<u64>, u64, Barrier)) {
    start_together(&start);
    for _ in 0..n {
        let _held = counter.get_lock().acquire();
        let seen = counter.get();
        std::thread::sleep(INSIDE);
        counter.set(seen + 1);
    }
}

#[test]
fn python_get_lock_idiom_does_not_deadlock_and_counts_exactly() {
    each_method(|method| {
        let counter = Value::new(0u64).unwrap();
        // Four processes and this one, all started at once.
        let start = Barrier::new(5).unwrap();
        let children: Vec<_> = (0..4)
            .map(|_| {
                builder(method)
                    .spawn(
                        increment_under_get_lock,
                        (counter.clone(), 200, start.clone()),
                    )
                    .unwrap()
            })
            .collect();
        increment_under_get_lock((counter.clone(), 200, start));
        for mut child in children {
            child.join().unwrap();
        }
        assert_eq!(counter.get(), 5 * 200);
        assert!(!counter.get_lock().is_locked());
    });
}

/// Adds one to both values under the lock they share, as Python's `lock=` lets them.
fn add_to_both((lock, a, b, n, start): (Lock, Value<u32, Lock>, Array<u32, Lock>, u32, Barrier)) {
    start_together(&start);
    for _ in 0..n {
        let _held = lock.acquire();
        // Both change under one hold: no process sees one changed without the other.
        // SAFETY: this process holds the lock that guards both, and no guard of either.
        unsafe {
            let seen = (*a.get_obj(), (*b.get_obj())[0]);
            std::thread::sleep(INSIDE);
            *a.get_obj() = seen.0 + 1;
            (*b.get_obj())[0] = seen.1 + 1;
        }
    }
}

// Port of CPython `_TestValue.test_getobj_getlock` and `_TestArray.test_getobj_getlock_obj`:
// a value made with the caller's lock has that lock, and `get_obj` reaches what it guards.
#[test]
fn values_with_a_given_lock_share_it_and_get_obj_reaches_the_data() {
    each_method(|method| {
        let lock = Lock::new().unwrap();
        let a = Value::new_with_lock(5u32, lock.clone()).unwrap();
        let b = Array::from_slice(&[5u32, 0]).unwrap();
        let b_locked = Array::<u32, Lock>::new_with_lock(2, lock.clone()).unwrap();
        b_locked.set(0, b.get(0).unwrap()).unwrap();
        {
            let _held = lock.acquire();
            assert!(a.get_lock().is_locked());
            assert!(b_locked.get_lock().is_locked());
            // SAFETY: the shared lock is held and no guard of `a` lives.
            assert_eq!(unsafe { *a.get_obj() }, 5);
        }
        let start = Barrier::new(3).unwrap();
        let children: Vec<_> = (0..3)
            .map(|_| {
                builder(method)
                    .spawn(
                        add_to_both,
                        (
                            lock.clone(),
                            a.clone(),
                            b_locked.clone(),
                            200,
                            start.clone(),
                        ),
                    )
                    .unwrap()
            })
            .collect();
        for mut child in children {
            child.join().unwrap();
        }
        assert_eq!(a.get(), 5 + 600);
        assert_eq!(b_locked.to_vec(), [5 + 600, 0]);
    });
}

#[test]
fn reaching_a_value_while_this_thread_holds_its_guard_panics_instead_of_hanging() {
    let v = Value::new(1u32).unwrap();
    let a = Array::from_slice(&[1u8, 2]).unwrap();
    std::thread::scope(|s| {
        let panicked = s
            .spawn(|| {
                let mut guard = v.lock();
                *guard = 2;
                v.get()
            })
            .join();
        assert!(
            panicked.is_err(),
            "a get under a guard of the same thread went through"
        );
        assert!(s.spawn(|| a.with_lock(|_| a.to_vec())).join().is_err());
    });
    // The unwinding dropped the guards: the lock is free, the write done.
    assert!(!v.get_lock().is_locked());
    assert_eq!(v.get(), 2);
    assert_eq!(a.to_vec(), [1, 2]);
}

/// Releases the lock of a value that a `Lock` guards, which another process keeps.
fn release_value_lock(v: Value<u32, Lock>) {
    v.get_lock().release().unwrap();
}

#[test]
fn a_forgotten_value_guard_keeps_the_lock_for_another_process_to_release() {
    each_method(|method| {
        let v = Value::new_with_lock(0u32, Lock::new().unwrap()).unwrap();
        let mut guard = v.lock();
        *guard += 1;
        guard.forget();
        assert!(v.get_lock().is_locked());
        let blocked = std::thread::scope(|s| {
            s.spawn(|| v.lock_timeout(Duration::ZERO).is_err())
                .join()
                .unwrap()
        });
        assert!(blocked);
        builder(method)
            .spawn(release_value_lock, v.clone())
            .unwrap()
            .join()
            .unwrap();
        assert!(!v.get_lock().is_locked());
        assert_eq!(v.get(), 1);
    });
}

#[test]
fn a_value_with_a_plain_lock_travels_as_one_and_not_as_the_other() {
    let plain = Value::new_with_lock(1u8, Lock::new().unwrap()).unwrap();
    assert!(refused_as::<Value<u8>>(&plain));
    assert!(!refused_as::<Value<u8, Lock>>(&plain));
    assert!(refused_as::<Value<u8, Lock>>(&Value::new(1u8).unwrap()));
}
