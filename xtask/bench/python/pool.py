"""Python's pools and executors (multiprocessing.Pool, concurrent.futures, loky), measured by
`cargo xtask bench` as `bench-ours` measures ours.

Usage: pool.py <benchmark> <peer> [<parameter>] [--iterations N] [--warmup N] [--budget-secs S]

Benchmarks (2 worker processes unless said; the time printed is per task):

- pool-map default|chunk1 (peer: python): `Pool(2).map` over `--iterations` tiny tasks, with
  Python's default chunks or chunksize 1.
- pool-apply-async (python): `apply_async` of tiny tasks, then every `get`.
- executor-submit (python|loky): `submit` of tiny tasks to `ProcessPoolExecutor(2)` (or
  loky's reusable executor), then every `result`.
- executor-map 1|1000 (python|loky): `Executor.map` with that chunksize.
- thread-executor-submit (python): `ThreadPoolExecutor(4)`, submit and result of tiny tasks.

Prints the line the xtask reads:

    RESULT <benchmark with _ for ->[_<parameter>]/<peer> <mean seconds per task> <tasks>
"""

import argparse
import concurrent.futures
import multiprocessing
import time


def tiny(x):
    return (x * 3) & 0xFFFFFFFFFFFFFFFF


def check(results, n):
    results = list(results)
    if len(results) != n or any(r != tiny(i) for i, r in enumerate(results)):
        raise SystemExit("wrong results")


def timed(run, n, warm):
    check(run(warm), warm)
    start = time.perf_counter()
    results = run(n)
    elapsed = time.perf_counter() - start
    check(results, n)
    return elapsed


def loky_executor(workers):
    import loky

    return loky.get_reusable_executor(max_workers=workers)


def measure(args, ctx):
    n, warm = args.iterations, max(args.warmup, 1) * 10
    if args.benchmark == "pool-map":
        chunksize = 1 if args.parameter == "chunk1" else None
        with ctx.Pool(2) as pool:
            return timed(lambda k: pool.map(tiny, range(k), chunksize), n, warm)
    if args.benchmark == "pool-apply-async":
        with ctx.Pool(2) as pool:
            return timed(lambda k: [r.get() for r in [pool.apply_async(tiny, (i,)) for i in range(k)]], n, warm)
    if args.benchmark == "thread-executor-submit":
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            return timed(lambda k: [f.result() for f in [ex.submit(tiny, i) for i in range(k)]], n, warm)
    if args.peer == "loky":
        ex = loky_executor(2)
    else:
        ex = concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx)
    try:
        if args.benchmark == "executor-submit":
            return timed(lambda k: [f.result() for f in [ex.submit(tiny, i) for i in range(k)]], n, warm)
        if args.benchmark == "executor-map":
            chunksize = int(args.parameter)
            # `map` returns a generator once every task is queued: the results are taken inside
            # the timing, as ours are (without `list`, only the queueing was timed).
            return timed(lambda k: list(ex.map(tiny, range(k), chunksize=chunksize)), n, warm)
    finally:
        ex.shutdown(wait=True)
    raise SystemExit(f"unknown benchmark {args.benchmark}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "benchmark",
        choices=["pool-map", "pool-apply-async", "executor-submit", "executor-map", "thread-executor-submit"],
    )
    parser.add_argument("peer", choices=["python", "loky"])
    parser.add_argument("parameter", nargs="?", default="")
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--budget-secs", type=float, default=5.0)
    args = parser.parse_args()
    # The default start method of this platform: forkserver on Linux since 3.14, fork before.
    ctx = multiprocessing.get_context()
    elapsed = measure(args, ctx)
    name = args.benchmark.replace("-", "_")
    if args.parameter:
        name += "_" + args.parameter
    print(f"RESULT {name}/{args.peer} {elapsed / args.iterations:.12f} {args.iterations}", flush=True)


if __name__ == "__main__":
    main()
