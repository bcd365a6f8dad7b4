//! `Value`, `Array`, `RawValue` and `RawArray` between real processes, under every start
//! method, after CPython's `_TestValue` and `_TestArray`: increments under the lock reach the
//! exact total; a holder killed inside `with_lock` does not block the others.

use std::time::Duration;

use proc_sync::{Array, ArrayGuard, Event, RawArray, RawValue, Value, ValueGuard};
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

fn increment((counter, n): (Value<u64>, u64)) {
    for _ in 0..n {
        counter.with_lock(|c| *c += 1);
    }
}

#[test]
fn increments_under_the_lock_reach_the_exact_total() {
    each_method(|method| {
        let counter = Value::new(0u64).unwrap();
        let children: Vec<_> = (0..5)
            .map(|_| {
                builder(method)
                    .spawn(increment, (counter.clone(), 2000))
                    .unwrap()
            })
            .collect();
        for mut child in children {
            child.join().unwrap();
        }
        assert_eq!(counter.get(), 10_000);
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
