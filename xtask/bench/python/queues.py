"""Python's multiprocessing.Queue and SimpleQueue, measured by `cargo xtask bench`, as
`bench-ours` measures ours.

(Not `queue.py`: that name would shadow the standard library's `queue`, which
`multiprocessing` imports, for this script and for its spawned children.)

Usage: queues.py <benchmark> [<parameter>] [--iterations N] [--warmup N] [--budget-secs S]

Benchmarks (the time printed is per item):

- queue-small [queue|simple]: a producer process puts `--iterations` ints, a counter, into a
  `Queue` (or a `SimpleQueue`), and this process gets them; from the producer's go to the
  last item taken.
- queue-100kb [queue|simple]: the same with `bytes` of 100,000.
- queue-producers <P>to<C>: P producer processes put `--iterations` ints in all into one
  `Queue`, and C consumers (this process and C - 1 children) get them; from the go (a
  barrier of all of them) until every consumer is done.
- thread-queue: a thread puts `--iterations` ints into a `queue.Queue` (the thread queue),
  this thread gets them.

Prints the line the xtask reads:

    RESULT <benchmark with _ for ->/python[/<parameter>] <mean seconds per item> <items>
"""

import argparse
import multiprocessing
from queue import Queue as ThreadQueue
import re
import threading
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


# How long the processes of queue-producers wait at their barrier for the others to start.
START_TIMEOUT = 60

# The mark a producer puts after its items, once per consumer: a consumer stops at its Pth.
# Every producer's items come before its marks, so that once every mark is taken, every item
# is.
END = -1


def fan_producer(queue, go, lo, hi, consumers):
    go.wait()
    put = queue.put
    for i in range(lo, hi):
        put(i)
    for _ in range(consumers):
        put(END)


def fan_consume(queue, producers):
    ends = count = total = 0
    get = queue.get
    while ends < producers:
        item = get()
        if item == END:
            ends += 1
        else:
            count += 1
            total += item
    return count, total


def fan_consumer(queue, go, done, results, producers):
    go.wait()
    taken = fan_consume(queue, producers)
    done.set()
    results.put(taken)


def fan(ctx, args):
    match = re.fullmatch(r"([1-9][0-9]*)to([1-9][0-9]*)", args.parameter)
    if match is None:
        raise SystemExit(f"queue-producers takes <P>to<C>, such as 2to1, not {args.parameter!r}")
    producers, consumers = int(match[1]), int(match[2])
    n = args.iterations // producers * producers
    share = n // producers
    queue = ctx.Queue()
    results = ctx.SimpleQueue()
    # A child that cannot start leaves the others at the barrier: they give up after a while.
    go = ctx.Barrier(producers + consumers, timeout=START_TIMEOUT)
    children = []
    for p in range(producers):
        args_p = (queue, go, p * share, (p + 1) * share, consumers)
        children.append(ctx.Process(target=fan_producer, args=args_p))
    dones = [ctx.Event() for _ in range(consumers - 1)]
    for done in dones:
        children.append(
            ctx.Process(target=fan_consumer, args=(queue, go, done, results, producers))
        )
    for child in children:
        child.start()
    go.wait()
    start = time.perf_counter()
    count, total = fan_consume(queue, producers)
    for done in dones:
        done.wait()
    elapsed = time.perf_counter() - start
    for _ in dones:
        c, t = results.get()
        count += c
        total += t
    for child in children:
        child.join()
    if (count, total) != (n, n * (n - 1) // 2):
        raise SystemExit(f"took {count} items summing to {total}, not {n}")
    return elapsed, n


def thread_queue(args):
    q = ThreadQueue()
    warm = max(args.warmup, 1)
    n = args.iterations
    go = threading.Barrier(2)
    # A daemon, so that an error here cannot leave the program waiting for it at the barrier.
    producer_thread = threading.Thread(
        target=producer, args=(q, go, warm, n, False), daemon=True
    )
    producer_thread.start()
    get = q.get
    for i in range(warm):
        if get() != i:
            raise SystemExit(f"item {i} came out of order")
    go.wait()
    start = time.perf_counter()
    for i in range(warm, warm + n):
        if get() != i:
            raise SystemExit(f"item {i} came out of order")
    elapsed = time.perf_counter() - start
    producer_thread.join()
    return elapsed, n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "benchmark", choices=["queue-small", "queue-100kb", "queue-producers", "thread-queue"]
    )
    parser.add_argument("parameter", nargs="?", default="")
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--budget-secs", type=float, default=5.0)
    args = parser.parse_args()
    name = args.benchmark.replace("-", "_")
    if args.benchmark == "thread-queue":
        elapsed, ops = thread_queue(args)
        print(f"RESULT {name}/python {elapsed / ops:.12f} {ops}", flush=True)
        return
    # Spawn, as our benchmarks start their partner processes.
    ctx = multiprocessing.get_context("spawn")
    if args.benchmark == "queue-producers":
        elapsed, ops = fan(ctx, args)
    else:
        args.parameter = args.parameter or "queue"
        if args.parameter not in ("queue", "simple"):
            raise SystemExit(f"{args.benchmark} takes queue or simple, not {args.parameter!r}")
        elapsed, ops = transfer(ctx, args)
    print(f"RESULT {name}/python/{args.parameter} {elapsed / ops:.12f} {ops}", flush=True)


if __name__ == "__main__":
    main()
