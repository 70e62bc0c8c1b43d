import numpy as np
import pytest
import torch

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.params import (
    ParamCounts,
    count_params,
    non_embedding_params,
    tokens_for_flops,
    total_params,
)
from bayes_scaling.reference_model import TransformerConfig, TransformerLM


def test_exact_values_smallest_and_largest_api_shapes():
    assert count_params(64, 2, 2) == ParamCounts(
        non_embedding=2_147_264, embedding=2_080_768, total=4_228_032
    )
    counts = count_params(1024, 24, 16)
    assert counts.non_embedding == 334_930_944
    assert counts.total == 368_223_232
    assert counts.embedding == 32000 * 1024 + 512 * 1024
    assert non_embedding_params(64, 2) == 2_147_264
    assert total_params(64, 2) == 4_228_032
    assert non_embedding_params(1024, 24) == 334_930_944
    assert total_params(1024, 24) == 368_223_232


def _valid_heads(d_model):
    return [h for h in range(2, 17) if d_model % h == 0]


def _api_grid_sample():
    """Every multiple of 64 x every layer count (heads rotated), plus off-grid widths x all heads,
    plus every corner of the API box with every head count dividing d_model."""
    shapes = set()
    for i, d in enumerate(range(64, 1025, 64)):
        heads = _valid_heads(d)
        for j, layers in enumerate(range(2, 25)):
            shapes.add((d, layers, heads[(i + j) % len(heads)]))
    for d in (64, 1024):
        for layers in (2, 24):
            for h in _valid_heads(d):
                shapes.add((d, layers, h))
    for d in (66, 90, 96, 100, 160, 192, 200, 210, 360, 480, 720, 840, 1000, 1020):
        for layers in (2, 7, 24):
            for h in _valid_heads(d):
                shapes.add((d, layers, h))
    return sorted(shapes)


def test_closed_forms_equal_model_over_api_grid():
    shapes = _api_grid_sample()
    assert len(shapes) > 450
    model = np.array([count_params(*s) for s in shapes], dtype=np.int64)
    d = np.array([s[0] for s in shapes])
    layers = np.array([s[1] for s in shapes])
    np.testing.assert_array_equal(non_embedding_params(d, layers), model[:, 0])
    np.testing.assert_array_equal(total_params(d, layers), model[:, 2])
    np.testing.assert_array_equal(model[:, 0] + model[:, 1], model[:, 2])


def test_closed_forms_broadcast_and_do_not_overflow():
    d = np.array([64, 4096], dtype=np.int32)
    layers = np.array([[2], [96]], dtype=np.int32)
    out = non_embedding_params(d, layers)
    assert out.shape == (2, 2)
    assert out.dtype == np.int64
    assert out[1, 1] == 96 * (12 * 4096**2 + 7 * 4096) + 4096 + 32000 * 4096
    assert count_params(4096, 96, 64).non_embedding == out[1, 1]
    assert total_params([64, 128], 2).tolist() == [total_params(64, 2), total_params(128, 2)]


def test_tokens_for_flops_is_six_nd():
    n = non_embedding_params(512, 8)
    assert tokens_for_flops(1e18, n) == pytest.approx(1e18 / (6 * n))
    out = tokens_for_flops(np.array([1e17, 1e18]), np.array([[1e6], [1e7]]))
    assert out.shape == (2, 2)
    assert out[1, 0] == pytest.approx(1e17 / 6e7)


@pytest.mark.parametrize(
    "args, needle",
    [
        ((100, 2, 3), "d_model must be divisible by num_heads"),
        ((0, 2, 2), "d_model: expected a positive integer, got 0"),
        ((64, -1, 2), "num_layers: expected a positive integer, got -1"),
        ((64, 2, 0), "num_heads: expected a positive integer, got 0"),
        ((64.0, 2, 2), "d_model: expected a positive integer, got 64.0"),
        ((64, True, 2), "num_layers: expected a positive integer, got True"),
    ],
)
def test_count_params_rejects_invalid_shapes(args, needle):
    with pytest.raises(InvalidConfigError, match=needle) as info:
        count_params(*args)
    assert "\n" not in str(info.value)


def test_count_params_is_cached():
    assert count_params(128, 3, 4) is count_params(128, 3, 4)


def test_forward_pass_shapes_and_causality():
    torch.manual_seed(0)
    config = TransformerConfig(d_model=32, num_layers=2, num_heads=4, vocab_size=50,
                               context_length=16)
    model = TransformerLM(config).eval()
    ids = torch.randint(0, 50, (3, 10))
    logits = model(ids)
    assert logits.shape == (3, 10, 50)
    assert torch.isfinite(logits).all()
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 50
    # Causal: changing the last token leaves earlier positions' logits unchanged.
    torch.testing.assert_close(model(changed)[:, :-1], logits[:, :-1])
    with pytest.raises(InvalidConfigError, match="sequence length"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_full_size_model_runs_on_cpu_with_dropout():
    model = TransformerLM(TransformerConfig(d_model=64, num_layers=2, num_heads=2))
    model.train()
    assert model.config.dropout == 0.1
    out = model(torch.randint(0, 32000, (2, 8)))
    assert out.shape == (2, 8, 32000)
    assert sum(p.numel() for p in model.parameters()) == count_params(64, 2, 2).total


def test_reference_model_has_no_biases_where_the_design_says():
    model = TransformerLM(TransformerConfig(d_model=64, num_layers=1, num_heads=2), device="meta")
    names = {name for name, _ in model.named_parameters()}
    biases = sorted(n for n in names if n.endswith("bias"))
    assert biases == ["layers.0.ffn.w1.bias", "layers.0.ffn.w2.bias"]
