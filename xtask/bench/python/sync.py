"""Python's multiprocessing synchronization, measured by `cargo xtask bench`, as
`bench-ours` measures ours.

Usage: sync.py <benchmark> [--iterations N] [--warmup N] [--budget-secs S]

Benchmarks (the time printed is per operation, `--iterations` operations timed in one
stretch):

- lock-uncontended: acquire and release a `multiprocessing.Lock` in one thread.
- semaphore-uncontended: acquire and release a `multiprocessing.BoundedSemaphore(2)` in one
  thread.
- lock-contended: two processes acquire and release one `Lock`; per acquire/release of either.
- event-roundtrip: a ping-pong of two `Event`s between two processes; per round trip.
- value-increments: two processes do `with v.get_lock(): v.value += 1`; per increment.
- value-uncontended: the same increment in one thread of one process.

Prints the line the xtask reads:

    RESULT <benchmark with _ for ->/python <mean seconds per op> <ops timed>
"""

import argparse
import multiprocessing
import time


def acquire_release(primitive, args):
    """Times `iterations` acquires and releases of `primitive`, after `warmup` of them."""
    acquire, release = primitive.acquire, primitive.release
    for _ in range(args.warmup):
        acquire()
        release()
    start = time.perf_counter()
    for _ in range(args.iterations):
        acquire()
        release()
    return time.perf_counter() - start, args.iterations


def lock_uncontended(ctx, args):
    return acquire_release(ctx.Lock(), args)


def semaphore_uncontended(ctx, args):
    return acquire_release(ctx.BoundedSemaphore(2), args)


def value_uncontended(ctx, args):
    value = ctx.Value("q", 0)
    lock = value.get_lock()
    for _ in range(args.warmup):
        with lock:
            value.value += 1
    start = time.perf_counter()
    for _ in range(args.iterations):
        with lock:
            value.value += 1
    elapsed = time.perf_counter() - start
    if value.value != args.warmup + args.iterations:
        raise SystemExit(f"lost increments: {value.value}")
    return elapsed, args.iterations


def partner(kind, lock, value, go, done, n):
    go.wait()
    if kind == "lock":
        for _ in range(n):
            lock.acquire()
            lock.release()
    else:
        for _ in range(n):
            with value.get_lock():
                value.value += 1
    done.set()


def two_processes(ctx, args, kind):
    lock = ctx.Lock()
    value = ctx.Value("q", 0)
    go, done = ctx.Event(), ctx.Event()
    n = args.iterations
    child = ctx.Process(target=partner, args=(kind, lock, value, go, done, n))
    child.start()
    start = time.perf_counter()
    go.set()
    if kind == "lock":
        for _ in range(n):
            lock.acquire()
            lock.release()
    else:
        for _ in range(n):
            with value.get_lock():
                value.value += 1
    done.wait()
    elapsed = time.perf_counter() - start
    child.join()
    if kind == "value" and value.value != 2 * n:
        raise SystemExit(f"lost increments: {value.value} of {2 * n}")
    return elapsed, 2 * n


def pong(ping, pong_event, n):
    for _ in range(n):
        ping.wait()
        ping.clear()
        pong_event.set()


def event_roundtrip(ctx, args):
    ping, pong_event = ctx.Event(), ctx.Event()
    n = args.warmup + args.iterations
    child = ctx.Process(target=pong, args=(ping, pong_event, n))
    child.start()

    def round_trip():
        ping.set()
        pong_event.wait()
        pong_event.clear()

    for _ in range(args.warmup):
        round_trip()
    start = time.perf_counter()
    for _ in range(args.iterations):
        round_trip()
    elapsed = time.perf_counter() - start
    child.join()
    return elapsed, args.iterations


BENCHMARKS = {
    "lock-uncontended": lock_uncontended,
    "semaphore-uncontended": semaphore_uncontended,
    "lock-contended": lambda ctx, args: two_processes(ctx, args, "lock"),
    "event-roundtrip": event_roundtrip,
    "value-increments": lambda ctx, args: two_processes(ctx, args, "value"),
    "value-uncontended": value_uncontended,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS))
    parser.add_argument("--iterations", type=int, default=100000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--budget-secs", type=float, default=5.0)
    args = parser.parse_args()
    # Spawn, as our benchmarks start their partner process.
    ctx = multiprocessing.get_context("spawn")
    elapsed, ops = BENCHMARKS[args.benchmark](ctx, args)
    name = args.benchmark.replace("-", "_")
    print(f"RESULT {name}/python {elapsed / ops:.12f} {ops}", flush=True)


if __name__ == "__main__":
    main()
