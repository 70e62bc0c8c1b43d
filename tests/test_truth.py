import json
import math

import numpy as np
import pytest

from bayes_scaling.errors import InvalidTruthError
from bayes_scaling.simulator import truth as truth_module
from bayes_scaling.simulator.truth import (
    Truth,
    load_truth,
    mean_loss,
    noise_sd,
    observed_loss,
    optimal_learning_rate,
    truth_tokens,
)
from bayes_scaling.space import RunConfig

# DESIGN.md section 3's defaults, typed here again on purpose (not read from the module).
DEFAULTS = dict(
    E=1.8, delta_data=0.15, A=358.3, alpha=0.3478, B=558.0, beta=0.3658, lam=0.237, K=11.66,
    gamma=0.271, eta0=6.15e-4, a_eta=0.330, b_eta=0.0, D_eta=1e9, p=0.894, chi=0.78,
    S_chi=400.0, kappa=0.8, AR0=100.0, c_deep=0.004, c_wide=0.008, c_head=0.003, omega=0.0,
    L_init=10.45, sigma_seed=0.02, sigma_mb=0.03, seed=0,
)


def hand_mean(c, d, L, h, bs, lr, C):
    """DESIGN section 3 written out step by step with the math module."""
    V, ctx = 32000, 512
    body = L * (12 * d * d + 7 * d) + d
    emb = 2 * V * d + ctx * d
    D = C / (6 * (body + c["omega"] * emb))
    S = D / (bs * ctx)
    eta_star = c["eta0"] * (body / 1e8) ** (-c["a_eta"]) * (D / c["D_eta"]) ** (-c["b_eta"])
    x = math.log(lr / eta_star)
    S_eff = S * math.exp(c["p"] * min(x, 0.0))
    base = (
        c["E"] + c["delta_data"]
        + c["A"] * (body + c["lam"] * emb) ** (-c["alpha"])
        + c["B"] * D ** (-c["beta"])
        + c["K"] * S_eff ** (-c["gamma"])
        + c["chi"] * min((S / c["S_chi"]) ** (-c["kappa"]), 2.0) * max(x, 0.0) ** 2
    )
    AR = d / L
    c_ar = c["c_deep"] if AR < c["AR0"] else c["c_wide"]
    shape = 1 + c_ar * math.log(AR / c["AR0"]) ** 2 + c["c_head"] * math.log((d / h) / 64) ** 2
    raw = base * shape
    z = 3 * (c["L_init"] - raw)
    softplus = max(z, 0.0) + math.log1p(math.exp(-abs(z)))
    return c["L_init"] - softplus / 3, dict(eta_star=eta_star, x=x, AR=AR, raw=raw, D=D)


# (d_model, num_layers, num_heads, batch_size, learning_rate, flops)
CASES = [
    (512, 8, 8, 128, 1e-4, 1e17),      # lr far below eta*, AR 64 < AR0, head dim 64
    (1024, 24, 16, 256, 1e-3, 1e18),   # lr above eta*, deep (AR 43), bs 256
    (1024, 2, 4, 128, 1e-3, 3e16),     # wide (AR 512 > AR0), head dim 256
    (96, 3, 2, 256, 6e-4, 1e15),       # head dim 48, small model
    (768, 4, 16, 128, 1e-3, 6e17),     # head dim 48, AR 192 > AR0, lr above eta*
    (256, 4, 2, 128, 3e-4, 1e19),      # large compute beyond the API
    (64, 2, 2, 128, 1e-4, 1e13),       # near L_init: the softplus cap matters
    (1024, 24, 16, 128, 1e-3, 1e13),   # near L_init, raw far above L_init
    (64, 2, 2, 256, 1e-4, 1e14),       # raw just below L_init: the cap bends it
]


@pytest.mark.parametrize("case", CASES)
def test_noise_free_truth_equals_design_formula(case):
    zero_noise = Truth(sigma_seed=0.0, sigma_mb=0.0)
    expected, _ = hand_mean(DEFAULTS, *case)
    assert float(mean_loss(zero_noise, *case)) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    config = RunConfig(d_model=case[0], num_layers=case[1], num_heads=case[2],
                       batch_size=case[3], learning_rate=case[4], train_flops=int(case[5]))
    assert observed_loss(zero_noise, config) == pytest.approx(expected, rel=1e-12)


def test_cases_cover_the_regimes_they_claim():
    info = [hand_mean(DEFAULTS, *case)[1] for case in CASES]
    assert any(i["x"] < -1 for i in info) and any(i["x"] > 0.3 for i in info)
    assert any(i["AR"] < 100 for i in info) and any(i["AR"] > 100 for i in info)
    near_init = [hand_mean(DEFAULTS, *case) for case in CASES[-3:]]
    for mean, i in near_init:
        assert abs(mean - i["raw"]) > 0.05  # the cap changes the answer
        assert mean <= 10.45
    assert near_init[1][1]["raw"] > 10.45 > near_init[2][1]["raw"]


def test_non_default_truth_uses_omega_and_b_eta():
    values = dict(DEFAULTS, omega=0.5, b_eta=0.1, D_eta=2e9, chi=1.3, c_head=0.01)
    truth = Truth(**values)
    for case in CASES[:6]:
        expected, i = hand_mean(values, *case)
        assert float(mean_loss(truth, *case)) == pytest.approx(expected, rel=1e-12)
        d, L, _, _, _, C = case
        assert float(optimal_learning_rate(truth, d, L, C)) == pytest.approx(i["eta_star"])
        assert float(truth_tokens(truth, d, L, C)) == pytest.approx(i["D"])


def test_mean_loss_broadcasts():
    d = np.array([256, 512, 1024])[:, None]
    lr = np.array([1e-4, 5e-4, 1e-3])[None, :]
    out = np.asarray(mean_loss(Truth(), d, 8, 4, 128, lr, 1e17))
    assert out.shape == (3, 3)
    assert out[1, 2] == pytest.approx(hand_mean(DEFAULTS, 512, 8, 4, 128, 1e-3, 1e17)[0])


def _config(**overrides):
    values = dict(d_model=512, num_layers=8, num_heads=8, batch_size=128,
                  learning_rate=5e-4, train_flops=10**17)
    values.update(overrides)
    return RunConfig(**values)


def test_noise_is_fixed_by_seed_and_configuration():
    truth = Truth()
    config = _config()
    first = observed_loss(truth, config)
    assert observed_loss(truth, _config()) == first
    assert observed_loss(Truth(), config) == first
    assert observed_loss(Truth(seed=1), config) != first
    assert observed_loss(truth, _config(learning_rate=5.0001e-4)) != first
    assert observed_loss(truth, _config(num_heads=4)) != first
    mean = float(mean_loss(truth, 512, 8, 8, 128, 5e-4, 1e17))
    assert first != mean
    assert abs(first - mean) < 5 * float(noise_sd(truth, 128))


def test_noise_sd_formula():
    truth = Truth()
    assert float(noise_sd(truth, 128)) == pytest.approx(math.sqrt(0.02**2 + 0.03**2))
    assert float(noise_sd(truth, 256)) == pytest.approx(math.sqrt(0.02**2 + 0.03**2 / 2))
    assert float(noise_sd(Truth(sigma_seed=0.0, sigma_mb=0.0), 256)) == 0.0


def test_noise_draws_are_standard_normal_over_many_configs():
    configs = [
        _config(learning_rate=float(lr), num_layers=int(layers))
        for lr in np.linspace(1e-4, 1e-3, 500)
        for layers in (2, 5, 9, 17)
    ]
    z = np.array([truth_module._standard_normal(7, c) for c in configs])
    assert len(set(z.tolist())) == len(z)
    assert abs(z.mean()) < 4 / math.sqrt(len(z))
    assert z.std() == pytest.approx(1.0, abs=0.06)
    # The simulator's noise is that draw times noise_sd, so its sd is right by construction.
    truth = Truth(seed=7)
    for config in configs[:3] + [c for c in configs[3:6]]:
        for bs in (128, 256):
            cfg = _config(learning_rate=config.learning_rate, num_layers=config.num_layers,
                          batch_size=bs)
            mean = float(mean_loss(truth, *cfg.key()[:5], cfg.train_flops))
            expected = mean + truth_module._standard_normal(7, cfg) * float(noise_sd(truth, bs))
            assert observed_loss(truth, cfg) == pytest.approx(expected, abs=1e-12)


def test_from_mapping_defaults_and_values():
    assert Truth.from_mapping({}) == Truth()
    truth = Truth.from_mapping({"E": 2, "seed": 3.0, "sigma_mb": 0.0})
    assert truth.E == 2 and truth.seed == 3 and isinstance(truth.seed, int)
    assert Truth.from_mapping(Truth().to_dict()) == Truth()
    for key, value in DEFAULTS.items():
        assert getattr(Truth(), key) == pytest.approx(value), key


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"E": 1.0, "foo": 2}, "unknown key(s) foo; known keys: E, "),
        ({"A": "big"}, "A must be a number, got 'big'"),
        ({"chi": True}, "chi must be a number, got True"),
        ({"B": None}, "B must be a number, got None"),
        ({"beta": float("nan")}, "beta must be finite"),
        ({"seed": 1.5}, "seed must be an integer, got 1.5"),
        ([1, 2], "expected a JSON object, got list"),
    ],
)
def test_from_mapping_rejects_unknown_and_mistyped(values, needle):
    with pytest.raises(InvalidTruthError) as info:
        Truth.from_mapping(values, source="my.json")
    message = str(info.value)
    assert message.startswith("my.json: ")
    assert needle in message


def test_load_truth_file(tmp_path):
    path = tmp_path / "truth.json"
    path.write_text(json.dumps({"E": 1.7, "seed": 11}))
    truth = load_truth(path)
    assert truth.E == 1.7 and truth.seed == 11 and truth.A == Truth().A
    assert load_truth(str(path)) == truth
    assert load_truth(None) == Truth()
    with pytest.raises(InvalidTruthError, match="no such truth file"):
        load_truth(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{E: 1")
    with pytest.raises(InvalidTruthError, match="not valid JSON"):
        load_truth(bad)
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"Eee": 1}')
    with pytest.raises(InvalidTruthError, match=r"unknown\.json: unknown key\(s\) Eee"):
        load_truth(unknown)
