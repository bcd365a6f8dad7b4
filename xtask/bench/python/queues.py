"""Python's multiprocessing.Queue and SimpleQueue, measured by `cargo xtask bench`, as
`bench-ours` measures ours.

(Not `queue.py`: that name would shadow the standard library's `queue`, which
`multiprocessing` imports, for this script and for its spawned children.)

Usage: queues.py <benchmark> [queue|simple] [--iterations N] [--warmup N] [--budget-secs S]

Benchmarks (a producer process puts `--iterations` items into a `Queue`, or a `SimpleQueue`
with `simple`, and this process gets them; the time printed is per item, from the
producer's go to the last item taken):

- queue-small: the items are ints, a counter.
- queue-100kb: the items are `bytes` of 100,000.

Prints the line the xtask reads:

    RESULT <benchmark with _ for ->/python/<queue|simple> <mean seconds per item> <items>
"""

import argparse
import multiprocessing
import time

ITEM = 100_000


def producer(queue, go, warm, n, large):
    # Python's `put` takes a reference, so one `bytes` serves every item.
    item = b"\x07" * ITEM
    put = queue.put
    for i in range(warm):
        put(item if large else i)
    go.wait()
    if large:
        for _ in range(n):
            put(item)
    else:
        for i in range(warm, warm + n):
            put(i)


def transfer(ctx, args):
    large = args.benchmark == "queue-100kb"
    queue = ctx.SimpleQueue() if args.parameter == "simple" else ctx.Queue()
    go = ctx.Event()
    # At least one item goes before timing, as in `bench-ours`: it shows that the producer
    # runs.
    warm = max(args.warmup, 1)
    n = args.iterations
    child = ctx.Process(target=producer, args=(queue, go, warm, n, large))
    child.start()
    get = queue.get

    def take(i):
        item = get()
        if (len(item) != ITEM) if large else (item != i):
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=["queue-small", "queue-100kb"])
    parser.add_argument("parameter", nargs="?", default="queue", choices=["queue", "simple"])
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--budget-secs", type=float, default=5.0)
    args = parser.parse_args()
    # Spawn, as our benchmarks start their partner process.
    ctx = multiprocessing.get_context("spawn")
    elapsed, ops = transfer(ctx, args)
    name = args.benchmark.replace("-", "_")
    print(f"RESULT {name}/python/{args.parameter} {elapsed / ops:.12f} {ops}", flush=True)


if __name__ == "__main__":
    main()
