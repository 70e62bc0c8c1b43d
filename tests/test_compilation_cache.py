"""The persistent compilation cache: where it lives, how it is turned off, that it is used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bayes_scaling import compilation_cache_dir


@pytest.mark.parametrize("value", ["off", "OFF", "0", "none", "", "  "])
def test_the_cache_is_turned_off_by_the_environment(monkeypatch, value):
    monkeypatch.setenv("BAYES_SCALING_JAX_CACHE", value)
    assert compilation_cache_dir() is None


def test_the_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("BAYES_SCALING_JAX_CACHE", raising=False)
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compilation_cache_dir() == tmp_path / "bayes_scaling" / "jax"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "theirs"))
    assert compilation_cache_dir() == tmp_path / "theirs"
    monkeypatch.setenv("BAYES_SCALING_JAX_CACHE", str(tmp_path / "ours"))
    assert compilation_cache_dir() == tmp_path / "ours"


PROGRAM = (
    "import bayes_scaling, jax, jax.numpy as jnp\n"
    "print(jax.config.jax_compilation_cache_dir)\n"
    "print(float(jax.jit(lambda x: jnp.sin(x) * 3.0 + x ** 2)(jnp.float64(0.5))))\n"
)


def _run(env_value: str) -> list[str]:
    env = {**os.environ, "BAYES_SCALING_JAX_CACHE": env_value}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout.split()


def test_a_compiled_program_is_written_to_the_cache_and_reused(tmp_path):
    cache = tmp_path / "cache"
    first = _run(str(cache))
    assert first[0] == str(cache)
    entries = sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))
    assert entries, "nothing was written to the cache"
    second = _run(str(cache))
    assert second[1] == first[1]
    assert sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache")) == entries


def test_off_leaves_jax_without_a_cache_directory(tmp_path):
    assert _run("off")[0] == "None"


def test_an_unwritable_location_runs_without_the_cache(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = _run(str(blocker / "cache"))
    assert out[0] == "None" and float(out[1]) == pytest.approx(1.688276, abs=1e-5)
    assert not Path(blocker / "cache").exists()


def test_the_cache_keeps_its_cap_but_scans_only_when_it_may_be_reached(tmp_path, monkeypatch):
    lru_cache = pytest.importorskip("jax._src.lru_cache")
    cache = lru_cache.LRUCache(str(tmp_path), max_size=3000)
    scans = []
    real_glob = type(cache.path).glob

    def counting_glob(self, pattern):
        scans.append(pattern)
        return real_glob(self, pattern)

    monkeypatch.setattr(type(cache.path), "glob", counting_glob)
    for i in range(5):  # 5 x 500 bytes fit under the 3000-byte cap: one scan, at the first
        cache.put(f"small{i}", bytes(500))
    first_scans = len(scans)
    assert 1 <= first_scans <= 2  # JAX's scan, then the size this process notes
    for i in range(4):  # each would pass the cap: scan and evict the least recently used
        cache.put(f"big{i}", bytes(1000))
    assert len(scans) > first_scans
    left = {p.name.removesuffix("-cache") for p in tmp_path.glob("*-cache")}
    assert sum(p.stat().st_size for p in tmp_path.glob("*-cache")) <= 3000
    assert "big3" in left and "small0" not in left
