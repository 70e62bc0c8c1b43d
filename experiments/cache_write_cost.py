"""What one write to the persistent compilation cache costs, by the entries already there.

JAX's least-recently-used eviction (``jax._src.lru_cache.LRUCache._evict_if_needed``) reads
every entry's access-time file on every write; :mod:`bayes_scaling` wraps it so that a process
scans once and then only when its writes could reach the cap (see the package docstring). This
fills a temporary cache with dummy entries (1 kB each, far below the 1 GiB cap) and times
``--writes`` further writes with JAX's scan and with the wrapped one. Prints and writes
experiments/results/cache_write_cost.md (or --out).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from jax._src import lru_cache

import bayes_scaling


def time_writes(entries: int, writes: int, *, jax_scan: bool) -> float:
    """Mean seconds per write into a cache that holds ``entries`` entries."""
    wrapped = lru_cache.LRUCache._evict_if_needed
    with tempfile.TemporaryDirectory() as tmp:
        cache = lru_cache.LRUCache(tmp, max_size=bayes_scaling.CACHE_MAX_BYTES)
        for i in range(entries):
            cache.put(f"fill{i}", bytes(1000))
        fresh = lru_cache.LRUCache(tmp, max_size=bayes_scaling.CACHE_MAX_BYTES)  # a new process
        if jax_scan:
            lru_cache.LRUCache._evict_if_needed = wrapped.jax_scan
        try:
            start = time.perf_counter()
            for i in range(writes):
                fresh.put(f"new{i}", bytes(1000))
            return (time.perf_counter() - start) / writes
        finally:
            lru_cache.LRUCache._evict_if_needed = wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[100, 1000, 4500])
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).with_name("results") / "cache_write_cost.md")
    args = parser.parse_args()
    lines = ["# Cost of one write to the persistent compilation cache", "",
             f"Mean over {args.writes} writes into a cache already holding the given number of "
             "entries (1 kB dummies; `python experiments/cache_write_cost.py`). A `fit` of the "
             "99 course API rows writes ~100-500 new programs when its shapes are new.", "",
             "| entries | JAX's scan (ms/write) | scan when full (ms/write) |", "|---|---|---|"]
    for entries in args.entries:
        jax_ms = 1e3 * time_writes(entries, args.writes, jax_scan=True)
        ours_ms = 1e3 * time_writes(entries, args.writes, jax_scan=False)
        print(f"{entries:6d} entries: JAX's scan {jax_ms:8.2f} ms/write, "
              f"scan when full {ours_ms:6.2f} ms/write")
        lines.append(f"| {entries} | {jax_ms:.2f} | {ours_ms:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
