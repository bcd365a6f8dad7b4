"""Python's multiprocessing, measured by `cargo xtask bench`: start and join of a process
that runs an empty function.

Usage: process_start.py <spawn|fork|forkserver> [--parent idle|load|10mb|1gb]
                        [--iterations N] [--warmup N] [--budget-secs S]

`--parent` says what the measuring process holds while it starts and joins, as `bench-ours`'s
`process-start`, `process-start-load`, `process-start-10mb` and `process-start-1gb` do:
nothing (the default), three busy-loop processes that keep the CPUs busy, or a heap of
10 MiB (1 GiB) of written memory.

Prints the line the xtask reads, as the Rust benchmark programs do:

    RESULT process_start[_load|_10mb|_1gb]/python/<method> <mean seconds per start+join>
        <iterations timed>
"""

import argparse
import multiprocessing
import subprocess
import sys
import time

# As `procs_bench::LOAD_PROCESSES`.
LOAD_PROCESSES = 3

# A busy process spins until its parent is gone (it is then another process's child), so
# that a measuring process that is killed leaves no spinning process behind.
BUSY_LOOP = """
import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(100_000):
        pass
"""

HEAP_BYTES = {"10mb": 10 << 20, "1gb": 1 << 30}


def empty():
    """The child's work: nothing, so that only starting and joining is measured."""


def start_join(ctx):
    process = ctx.Process(target=empty)
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"child ended with exit code {process.exitcode}")


def timed(ctx, args):
    # The warm-up also starts the fork server, which Python does on first use, as we do.
    for _ in range(args.warmup):
        start_join(ctx)
    start = time.perf_counter()
    iterations = 0
    while iterations < args.iterations:
        start_join(ctx)
        iterations += 1
        if time.perf_counter() - start >= args.budget_secs:
            break
    return (time.perf_counter() - start) / iterations, iterations


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=["spawn", "fork", "forkserver"])
    parser.add_argument("--parent", choices=["idle", "load", "10mb", "1gb"], default="idle")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--budget-secs", type=float, default=5.0)
    args = parser.parse_args()

    ctx = multiprocessing.get_context(args.method)
    load = []
    # Every byte written (a repeated byte is a memset), as a program's data would be.
    heap = bytearray(b"\x01") * HEAP_BYTES.get(args.parent, 0)
    try:
        if args.parent == "load":
            for _ in range(LOAD_PROCESSES):
                load.append(subprocess.Popen([sys.executable, "-c", BUSY_LOOP]))
        mean, iterations = timed(ctx, args)
    finally:
        for process in load:
            process.kill()
            process.wait()
    del heap
    kind = "process_start" if args.parent == "idle" else f"process_start_{args.parent}"
    print(f"RESULT {kind}/python/{args.method} {mean:.9f} {iterations}", flush=True)


if __name__ == "__main__":
    main()
