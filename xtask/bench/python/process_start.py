"""Python's multiprocessing, measured by `cargo xtask bench`: start and join of a process
that runs an empty function.

Usage: process_start.py <spawn|fork|forkserver> [--iterations N] [--warmup N] [--budget-secs S]

Prints the line the xtask reads, as the Rust benchmark programs do:

    RESULT process_start/python/<method> <mean seconds per start+join> <iterations timed>
"""

import argparse
import multiprocessing
import time


def empty():
    """The child's work: nothing, so that only starting and joining is measured."""


def start_join(ctx):
    process = ctx.Process(target=empty)
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"child ended with exit code {process.exitcode}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=["spawn", "fork", "forkserver"])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--budget-secs", type=float, default=5.0)
    args = parser.parse_args()

    ctx = multiprocessing.get_context(args.method)
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
    mean = (time.perf_counter() - start) / iterations
    print(f"RESULT process_start/python/{args.method} {mean:.9f} {iterations}", flush=True)


if __name__ == "__main__":
    main()
