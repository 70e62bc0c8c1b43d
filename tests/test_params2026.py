"""Counts and FLOPs of the 2026 model: the spec's values; closed forms equal the PyTorch model."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from bayes_scaling.cli import main
from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.params2026 import (
    architecture_2026,
    count_params_2026,
    eval_flops_per_token_2026,
    flops_per_token,
    matmul_params,
    matmul_params_2026,
    measured_flops_per_token_2026,
    non_embedding_params_2026,
    total_params_2026,
    train_flops_per_token_2026,
)
from bayes_scaling.reference_model_2026 import CausalLM2026

SPEC_COUNTS = [
    ((448, 9, 7, 1280), {}, 51_389_888),
    ((448, 9, 7, 1280), {"tie_word_embeddings": True}, 37_053_888),
    ((448, 9, 7, 1280), {"attention_bias": True}, 51_406_016),
    ((256, 3, 4, 704), {}, 18_794_624),
]


@pytest.mark.parametrize(("shape", "flags", "total"), SPEC_COUNTS)
def test_the_specs_counts(shape, flags, total):
    arch = architecture_2026(*shape, **flags)
    counts = count_params_2026(arch)
    assert counts.total == total
    d, layers, _, f = shape
    assert total_params_2026(d, layers, f, 64, **flags) == total
    assert counts.embedding == 32000 * d
    assert counts.non_embedding + counts.embedding + counts.lm_head == total


def test_spec_non_embedding_and_matmul_values():
    counts = count_params_2026(architecture_2026(448, 9, 7, 1280))
    # spec section 4: layers alone 22,717,440; matmul weights of the layers 22,708,224.
    assert counts.non_embedding == 22_717_440 + 448
    assert counts.matmul == 22_708_224 + 448 * 32000


def _dense_sample():
    """Widths x heads (head_dim even, from 2 to 256) x depths x intermediate sizes x flags."""
    shapes = []
    combos = itertools.product(
        [(64, 1), (64, 2), (96, 3), (128, 4), (128, 64), (256, 4), (320, 5), (384, 6),
         (448, 7), (512, 2), (768, 12), (1024, 16), (1536, 12), (2048, 16)],
        [1, 2, 3, 9, 24],
        [1.0, 8 / 3, 4.0],
        [(False, False), (True, False), (False, True), (True, True)],
    )
    for (d, heads), layers, ratio, (tie, bias) in combos:
        f = max(d, int(round(ratio * d / 64)) * 64)
        shapes.append((d, layers, heads, f, tie, bias))
    return shapes


def test_closed_forms_equal_the_pytorch_model_over_a_dense_sample():
    shapes = _dense_sample()
    assert len(shapes) >= 800
    got = []
    for d, layers, heads, f, tie, bias in shapes:
        c = count_params_2026(
            architecture_2026(d, layers, heads, f, tie_word_embeddings=tie, attention_bias=bias)
        )
        got.append((c.total, c.non_embedding, c.matmul))
    got = np.array(got, dtype=np.int64)
    for i, (d, layers, heads, f, tie, bias) in enumerate(shapes):
        hd = d // heads
        assert total_params_2026(
            d, layers, f, hd, tie_word_embeddings=tie, attention_bias=bias
        ) == got[i, 0]
        assert non_embedding_params_2026(d, layers, f, hd, attention_bias=bias) == got[i, 1]
        assert matmul_params_2026(d, layers, f) == got[i, 2]
    d = np.array([s[0] for s in shapes])
    layers = np.array([s[1] for s in shapes])
    f = np.array([s[3] for s in shapes])
    np.testing.assert_array_equal(matmul_params_2026(d, layers, f), got[:, 2])


def test_vocab_size_enters_as_tables():
    arch = architecture_2026(128, 2, 2, 384, vocab_size=1000)
    assert count_params_2026(arch).total == total_params_2026(128, 2, 384, 64, vocab_size=1000)


@pytest.mark.parametrize("training", [True, False])
def test_flop_closed_forms_equal_torchs_flop_counter(training):
    closed = train_flops_per_token_2026 if training else eval_flops_per_token_2026
    cases = [
        (64, 1, 1, 64, 8, 100, False),
        (64, 2, 2, 192, 16, 1000, True),
        (96, 3, 3, 256, 32, 500, False),
        (128, 2, 4, 512, 24, 32000, True),
        (256, 3, 4, 704, 64, 32000, False),
        (448, 9, 7, 1280, 512, 32000, False),
    ]
    for d, layers, heads, f, seq, vocab, tie in cases:
        arch = architecture_2026(d, layers, heads, f, vocab_size=vocab, tie_word_embeddings=tie)
        measured = measured_flops_per_token_2026(arch, seq_len=seq, training=training)
        assert measured == closed(d, layers, f, vocab_size=vocab, seq_len=seq)


def test_the_model_runs_and_is_causal():
    torch.manual_seed(0)
    arch = architecture_2026(32, 2, 4, 64, vocab_size=50, dtype="float32")
    model = CausalLM2026(arch)
    ids = torch.randint(0, 50, (1, 10))
    changed = ids.clone()
    changed[0, 7] = (ids[0, 7] + 1) % 50
    a, b = model(ids), model(changed)
    assert a.shape == (1, 10, 50)
    assert torch.allclose(a[0, :7], b[0, :7])
    assert not torch.allclose(a[0, 7:], b[0, 7:])
    tied = CausalLM2026(architecture_2026(32, 2, 4, 64, vocab_size=50, tie_word_embeddings=True))
    assert tied.lm_head is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((448, 9, 7, 447), "intermediate_size should usually >= hidden_size"),
        ((441, 9, 7, 1280), "head_dim must be even for RoPE"),
        ((448, 9, 5, 1280), "hidden_size must be divisible by num_heads"),
    ],
)
def test_invalid_shapes_raise_the_apis_message(args, message):
    with pytest.raises(InvalidConfigError, match=message):
        architecture_2026(*args)


def _cli(capsys, *args):
    status = main(["params", "--api", "2026", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_prints_the_specs_counts_and_flops(capsys):
    base = ["--hidden-size", "448", "--num-layers", "9", "--num-heads", "7",
            "--intermediate-size", "1280"]
    status, out, _ = _cli(capsys, *base)
    assert status == 0 and "51,389,888" in out and "22,717,888" in out
    assert f"{train_flops_per_token_2026(448, 9, 1280):,}" in out
    assert "37,053,888" in _cli(capsys, *base, "--tie-word-embeddings")[1]
    assert "51,406,016" in _cli(capsys, *base, "--attention-bias")[1]
    small = ["--hidden-size", "256", "--num-layers", "3", "--num-heads", "4",
             "--intermediate-size", "704", "--head-dim", "64", "--json"]
    record = json.loads(_cli(capsys, *small)[1])
    assert record["total_params"] == 18_794_624
    assert record["train_flops_per_token"] == train_flops_per_token_2026(256, 3, 704)
    status, _, err = _cli(capsys, "--hidden-size", "448", "--num-layers", "9", "--num-heads",
                          "7", "--intermediate-size", "100")
    assert status == 2 and "intermediate_size should usually >= hidden_size" in err


def test_architecture_wrappers_agree_with_the_model():
    arch = architecture_2026(448, 9, 7, 1280, tie_word_embeddings=True)
    assert matmul_params(arch) == count_params_2026(arch).matmul
    train, val = flops_per_token(arch)
    assert train == measured_flops_per_token_2026(arch)
    assert val == measured_flops_per_token_2026(arch, training=False)
