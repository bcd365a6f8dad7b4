"""Python's multiprocessing.Manager, measured by `cargo xtask bench`, as `bench-ours`
measures ours.

Usage: manager.py <benchmark> [--iterations N] [--warmup N] [--budget-secs S]

Benchmarks (the manager's server is a process of its own, as `Manager()` starts it):

- manager-dict: a child process sets and gets keys of a `Manager().dict()`
  (`d[k] = i`, then `d[k]`), `--iterations` times each, after `--warmup` untimed pairs; the
  time is per call, a set or a get, each one round trip to the server.
- manager-queue: a producer process puts `--iterations` ints into a `Manager().Queue()` and
  this process gets them; the time is per item, from the producer's go to the last item
  taken.
- manager-update: `d.update(...)` of a dict of 100,000 ints on a `Manager().dict()`,
  `--iterations` calls; the time is per item.
- manager-extend: `l.extend(...)` of a list of 100,000 ints on a `Manager().list()`,
  `--iterations` calls, the list cleared between them (untimed); the time is per item.

The proxies of the bulk benchmarks are used from this process, a client of the server as
a child would be.

Prints the line the xtask reads:

    RESULT <benchmark with _ for ->/python <mean seconds per call or item> <calls or items>
"""

import argparse
import multiprocessing
import time

# The keys that `manager-dict` cycles through, so that the dict stays small.
KEYS = 1024
# The items of one bulk call.
BULK = 100_000


def dict_child(d, warm, n, results):
    for i in range(warm):
        d[i % KEYS] = i
        d[i % KEYS]
    start = time.perf_counter()
    for i in range(n):
        k = i % KEYS
        d[k] = i
        if d[k] != i:
            raise SystemExit(f"key {k} lost its value {i}")
    results.put(time.perf_counter() - start)


def dict_calls(ctx, manager, args):
    d = manager.dict()
    results = ctx.SimpleQueue()
    child = ctx.Process(target=dict_child, args=(d, args.warmup, args.iterations, results))
    child.start()
    elapsed = results.get()
    child.join()
    return elapsed, 2 * args.iterations


def producer(queue, go, warm, n):
    put = queue.put
    for i in range(warm):
        put(i)
    go.wait()
    for i in range(warm, warm + n):
        put(i)


def queue_transfer(ctx, manager, args):
    queue = manager.Queue()
    go = ctx.Event()
    # At least one item goes before timing, as in `bench-ours`: it shows that the producer
    # runs.
    warm = max(args.warmup, 1)
    n = args.iterations
    child = ctx.Process(target=producer, args=(queue, go, warm, n))
    child.start()
    get = queue.get

    def take(i):
        if get() != i:
            raise SystemExit(f"item {i} came out of order")

    for i in range(warm):
        take(i)
    start = time.perf_counter()
    go.set()
    for i in range(warm, warm + n):
        take(i)
    elapsed = time.perf_counter() - start
    child.join()
    return elapsed, n


def bulk(manager, args):
    items = list(range(BULK))
    if args.benchmark == "manager-update":
        target = manager.dict()
        entries = dict(zip(items, items))

        def call():
            target.update(entries)
    else:
        target = manager.list()

        def call():
            target.extend(items)

    elapsed = 0.0
    for round_ in range(args.warmup + args.iterations):
        start = time.perf_counter()
        call()
        if round_ >= args.warmup:
            elapsed += time.perf_counter() - start
        if len(target) != BULK:
            raise SystemExit(f"{len(target)} items after a call of {BULK}")
        if args.benchmark == "manager-extend":
            # Every call extends an empty list, as ours does.
            del target[:]
    return elapsed, BULK * args.iterations


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "benchmark",
        choices=["manager-dict", "manager-queue", "manager-update", "manager-extend"],
    )
    parser.add_argument("--iterations", type=int, default=5_000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--budget-secs", type=float, default=5.0)
    args = parser.parse_args()
    # Spawn, as our benchmarks start their partner process and our manager's server.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        if args.benchmark == "manager-dict":
            elapsed, ops = dict_calls(ctx, manager, args)
        elif args.benchmark == "manager-queue":
            elapsed, ops = queue_transfer(ctx, manager, args)
        else:
            elapsed, ops = bulk(manager, args)
    name = args.benchmark.replace("-", "_")
    print(f"RESULT {name}/python {elapsed / ops:.12f} {ops}", flush=True)


if __name__ == "__main__":
    main()
