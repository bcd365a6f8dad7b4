"""Python's multiprocessing.Pipe, measured by `cargo xtask bench`, as `bench-ours` measures
ours.

Usage: pipe.py <benchmark> [<parameter>] [--iterations N] [--warmup N] [--budget-secs S]

Benchmarks:

- pipe-roundtrip object: `(1, "hello")` to a child through a `Pipe` and back; per round trip.
- pipe-roundtrip bytes: 64 bytes with `send_bytes`/`recv_bytes`, there and back.
- pipe-bandwidth: 1 MB messages one way with `send_bytes`; per message, until the child has
  received them all.
- codec: the pickling of `pipe-roundtrip object`, in one process: `(1, "hello")` through the
  `ForkingPickler.dumps` and `loads` that `Connection.send` and `recv` use; per dumps+loads.

Prints the line the xtask reads:

    RESULT <name>/python <mean seconds per op> <ops timed>
"""

import argparse
import multiprocessing
import time
from multiprocessing.reduction import ForkingPickler

SMALL = 64
LARGE = 1 << 20


def partner(mode, conn):
    if mode == "object":
        while True:
            n, text = conn.recv()
            if not text:
                return
            conn.send((n, text))
    elif mode == "bytes":
        while True:
            message = conn.recv_bytes()
            if not message:
                return
            conn.send_bytes(message)
    else:
        while conn.recv_bytes():
            pass
        conn.send_bytes(b"done")


def start(ctx, mode):
    here, there = ctx.Pipe()
    child = ctx.Process(target=partner, args=(mode, there))
    child.start()
    there.close()
    return child, here


def timed(args, op):
    for _ in range(args.warmup):
        op()
    start_time = time.perf_counter()
    done = 0
    while done < args.iterations:
        op()
        done += 1
        if time.perf_counter() - start_time >= args.budget_secs:
            break
    return time.perf_counter() - start_time, done


def roundtrip(ctx, args):
    if args.parameter == "object":
        child, conn = start(ctx, "object")
        obj = (1, "hello")

        def op():
            conn.send(obj)
            conn.recv()

        elapsed, ops = timed(args, op)
        conn.send((0, ""))
        name = "pipe_rt_object"
    else:
        child, conn = start(ctx, "bytes")
        message = b"\x07" * SMALL
        buf = bytearray(SMALL)

        def op():
            conn.send_bytes(message)
            conn.recv_bytes_into(buf)

        elapsed, ops = timed(args, op)
        conn.send_bytes(b"")
        name = "pipe_rt_bytes"
    child.join()
    return name, elapsed, ops


def bandwidth(ctx, args):
    child, conn = start(ctx, "bandwidth")
    message = b"\x07" * LARGE
    for _ in range(args.warmup):
        conn.send_bytes(message)
    start_time = time.perf_counter()
    for _ in range(args.iterations):
        conn.send_bytes(message)
    conn.send_bytes(b"")
    # Timed until the child has taken every message, not only until they are written.
    conn.recv_bytes()
    elapsed = time.perf_counter() - start_time
    child.join()
    return "pipe_1mb", elapsed, args.iterations


def codec(args):
    value = (1, "hello")
    dumps, loads = ForkingPickler.dumps, ForkingPickler.loads
    for _ in range(args.warmup):
        loads(dumps(value))
    start_time = time.perf_counter()
    for _ in range(args.iterations):
        loads(dumps(value))
    elapsed = time.perf_counter() - start_time
    return "codec", elapsed, args.iterations


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=["pipe-roundtrip", "pipe-bandwidth", "codec"])
    parser.add_argument("parameter", nargs="?", default="")
    parser.add_argument("--iterations", type=int, default=10000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--budget-secs", type=float, default=5.0)
    args = parser.parse_args()
    # Spawn, as our benchmarks start their partner process.
    ctx = multiprocessing.get_context("spawn")
    if args.benchmark == "pipe-roundtrip":
        name, elapsed, ops = roundtrip(ctx, args)
    elif args.benchmark == "codec":
        name, elapsed, ops = codec(args)
    else:
        name, elapsed, ops = bandwidth(ctx, args)
    print(f"RESULT {name}/python {elapsed / ops:.12f} {ops}", flush=True)


if __name__ == "__main__":
    main()
