"""bayes_scaling: Bayesian experiment design for language-model scaling laws.

The law is fitted and extrapolated in float64, so importing the package turns on JAX's x64 mode.

It also turns on JAX's persistent compilation cache. A loop compiles a few hundred small XLA
programs (the sampler, the posterior's queries, eager array operations), and on this package's
2-core target machine compiling them took over half of a default run's CPU time; with the cache a
second process reuses them (a small loop needs about a third of the CPU time,
``experiments/results/compilation_cache.md``). The cache lives in
``$BAYES_SCALING_JAX_CACHE`` (default ``$XDG_CACHE_HOME/bayes_scaling/jax``, else
``~/.cache/bayes_scaling/jax``), is capped at :data:`CACHE_MAX_BYTES` with least-recently-used
eviction under a file lock (so concurrent processes share it safely), and is keyed by JAX on the
program, its shapes, the JAX version and the flags, so a stale entry is never used. Set
``BAYES_SCALING_JAX_CACHE=off`` to turn it off; a ``JAX_COMPILATION_CACHE_DIR`` set by the user
wins over the default location.

JAX's eviction reads every entry's access time on every write (``LRUCache._evict_if_needed``), so
a write costs time in proportion to the entries already there: with the ~4,500 entries a few
days of use (or one test session) leave, a write took 0.13 s
(``experiments/results/cache_write_cost.md``), and under cProfile a ``fit`` of the 99 course API
rows that compiled 108 new programs spent 36 s in that scan. :func:`_scan_only_when_full` keeps
JAX's locking and its least-recently-used order but scans once per process and then only when
the entries this process has added could take the cache past its cap.
"""

import logging
import os
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"

#: Size cap of the persistent compilation cache (least recently used entries go first).
CACHE_MAX_BYTES = 1 << 30
_OFF = {"off", "0", "false", "no", "none"}


def compilation_cache_dir() -> Path | None:
    """Where the persistent compilation cache lives (None: off), from the environment."""
    chosen = os.environ.get("BAYES_SCALING_JAX_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in _OFF or not chosen.strip() else Path(chosen)
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bayes_scaling" / "jax"


def _entries_size(path: Path, suffix: str) -> int:
    """Bytes of the cache entries in ``path`` (an entry another process removes counts 0)."""
    total = 0
    for entry in path.glob(f"*{suffix}"):
        try:
            total += entry.stat().st_size
        except FileNotFoundError:
            pass
    return total


def _scan_only_when_full() -> None:
    """Make JAX's cache eviction scan the directory only when the cap may be reached.

    Wraps ``jax._src.lru_cache.LRUCache._evict_if_needed`` (private: if a JAX release renames it,
    JAX's own per-write scan stays). The first write of a process scans (and evicts) as JAX
    does and notes the directory's size; later writes add their own sizes to that note and scan
    again only when it would pass the cap. Entries other processes write meanwhile are counted
    at their next scan, so the cap can be passed by what they wrote since ours.
    """
    try:
        from jax._src import lru_cache
    except ImportError:  # pragma: no cover - a JAX without this module
        return
    scan = getattr(lru_cache.LRUCache, "_evict_if_needed", None)
    if scan is None or getattr(scan, "_bayes_scaling", False):
        return

    def evict_if_needed(self, *, additional_size: int = 0) -> None:
        known = getattr(self, "_bayes_scaling_size", None)
        if known is None or known + additional_size > self.max_size:
            scan(self, additional_size=additional_size)
            known = _entries_size(self.path, getattr(lru_cache, "_CACHE_SUFFIX", "-cache"))
        self._bayes_scaling_size = known + additional_size

    evict_if_needed._bayes_scaling = True
    evict_if_needed.jax_scan = scan  # JAX's own, for experiments/cache_write_cost.py
    lru_cache.LRUCache._evict_if_needed = evict_if_needed


def _enable_compilation_cache() -> None:
    path = compilation_cache_dir()
    if path is None:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a read-only home: run without the cache
        logging.getLogger(__name__).debug("no compilation cache at %s: %s", path, err)
        return
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", CACHE_MAX_BYTES)
    _scan_only_when_full()


_enable_compilation_cache()
