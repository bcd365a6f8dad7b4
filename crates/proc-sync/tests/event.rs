//! `Event` between real processes, under every start method, after CPython's `_TestEvent`
//! and the traffic-light scenario of issue 4: a light switches red and green, cars pass only
//! on green.

use std::time::Duration;

use proc_sync::{Event, Lock, Semaphore, Value};
use procs_testkit::{PATIENCE, assert_send_sync, builder, each_method};

#[test]
fn event_is_send_and_sync() {
    assert_send_sync::<Event>();
}

fn wait_for(event: Event) -> bool {
    event.wait_timeout(PATIENCE)
}

fn set(event: Event) {
    event.set();
}

#[test]
fn set_in_one_process_wakes_waiters_in_others() {
    each_method(|method| {
        let event = Event::new().unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|_| builder(method).spawn(wait_for, event.clone()).unwrap())
            .collect();
        builder(method)
            .spawn(set, event.clone())
            .unwrap()
            .join()
            .unwrap();
        for mut waiter in waiters {
            assert!(waiter.join().unwrap());
        }
        assert!(event.is_set());
        event.clear();
        assert!(!event.is_set());
        assert!(!event.wait_timeout(Duration::from_millis(10)));
    });
}

const GREEN: u32 = 1;
const RED: u32 = 0;

/// What cars and the light share. `crossing` makes "the light is green" and "a car passes"
/// one step, so that a car that saw green cannot pass after the light turned red.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Road {
    green: Event,
    crossing: Lock,
    /// The light as the light process last set it.
    light: Value<u32>,
    /// [passes, passes on red, cars done].
    counts: Value<[u32; 3]>,
    passed: Semaphore,
    closed: Event,
}

fn light((road, cycles): (Road, u32)) {
    for _ in 0..cycles {
        {
            let _crossing = road.crossing.acquire();
            road.light.set(GREEN);
            road.green.set();
        }
        // Green lasts until a car has passed.
        road.passed.acquire_timeout(PATIENCE).unwrap().forget();
        {
            let _crossing = road.crossing.acquire();
            road.green.clear();
            road.light.set(RED);
        }
    }
    road.closed.set();
    road.green.set();
}

fn car(road: Road) -> u32 {
    let mut passes = 0;
    loop {
        assert!(
            road.green.wait_timeout(PATIENCE),
            "the light never turned green"
        );
        let _crossing = road.crossing.acquire();
        if road.closed.is_set() {
            break;
        }
        if road.green.is_set() {
            road.counts.with_lock(|[passes, on_red, _]| {
                *passes += 1;
                if road.light.get() != GREEN {
                    *on_red += 1;
                }
            });
            passes += 1;
            road.passed.release().unwrap();
        }
    }
    road.counts.with_lock(|[_, _, done]| *done += 1);
    passes
}

#[test]
fn traffic_light_cars_pass_only_on_green() {
    each_method(|method| {
        let road = Road {
            green: Event::new().unwrap(),
            crossing: Lock::new().unwrap(),
            light: Value::new(RED).unwrap(),
            counts: Value::new([0u32; 3]).unwrap(),
            passed: Semaphore::new(0).unwrap(),
            closed: Event::new().unwrap(),
        };
        let cars: Vec<_> = (0..3)
            .map(|_| builder(method).spawn(car, road.clone()).unwrap())
            .collect();
        let mut light = builder(method).spawn(light, (road.clone(), 10)).unwrap();
        light.join().unwrap();
        let by_cars: u32 = cars.into_iter().map(|mut c| c.join().unwrap()).sum();
        let [passes, on_red, done] = road.counts.get();
        assert_eq!(on_red, 0, "a car passed on red");
        assert_eq!(done, 3);
        assert_eq!(passes, by_cars);
        assert!(passes >= 10, "each green let at least one car through");
    });
}
