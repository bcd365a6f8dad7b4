"""mpi4py.futures' MPIPoolExecutor, measured by `cargo xtask bench` as `bench-mpi` measures
ours. Run under MPI's static launch, as mpi4py documents it:

    mpirun -n 3 python3 -m mpi4py.futures mpi.py <benchmark> [<parameter>] [--iterations N] [--warmup N] [--budget-secs S]

Rank 0 runs this script; the other ranks are the executor's workers.

Benchmarks (the time printed is per task):

- executor-submit: `submit` of tiny tasks, then every `result`.
- executor-map 1|1000: `Executor.map` of tiny tasks with that chunksize.

Prints the line the xtask reads:

    RESULT mpi_<submit|map_<chunksize>>/mpi4py <mean seconds per task> <tasks>
"""

import argparse
import os
import sys

from mpi4py.futures import MPIPoolExecutor

# The tiny task and its timing are pool.py's, beside this script (the workers import it too).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pool import timed, tiny  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark")
    parser.add_argument("parameter", nargs="?", default="")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--budget-secs", type=float, default=5.0)
    args = parser.parse_args()
    n, warm = args.iterations, max(args.warmup, 1) * 10
    with MPIPoolExecutor() as ex:
        if args.benchmark == "executor-submit":
            name = "mpi_submit/mpi4py"
            elapsed = timed(lambda k: [f.result() for f in [ex.submit(tiny, i) for i in range(k)]], n, warm)
        elif args.benchmark == "executor-map":
            chunksize = int(args.parameter)
            name = f"mpi_map_{chunksize}/mpi4py"
            # `map` returns a generator at once: the results are taken inside the timing, as ours are.
            elapsed = timed(lambda k: list(ex.map(tiny, range(k), chunksize=chunksize)), n, warm)
        else:
            raise SystemExit(f"unknown benchmark {args.benchmark}")
    print(f"RESULT {name} {elapsed / n:.12f} {n}", flush=True)


if __name__ == "__main__":
    main()
