import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from bayes_scaling.law import LawParams, optimal_allocation, optimal_loss, predict_loss

EPOCH = LawParams(E=1.82, A=482.0, B=2085.4, alpha=0.3478, beta=0.3658)
OTHER = LawParams(E=2.1, A=120.0, B=900.0, alpha=0.25, beta=0.42)


def _numerical_optimum(law, flops):
    """Minimise L(N, C/(6N)) over log N with scipy, independent of the closed form."""

    def loss_of_log_n(log_n):
        n = np.exp(log_n)
        return float(law.E + law.A * n ** -law.alpha + law.B * (flops / (6 * n)) ** -law.beta)

    result = minimize_scalar(loss_of_log_n, bounds=(np.log(1e3), np.log(flops / 6) - np.log(1e3)),
                             method="bounded", options={"xatol": 1e-10})
    return np.exp(result.x), result.fun


@pytest.mark.parametrize("law", [EPOCH, OTHER])
@pytest.mark.parametrize("flops", [1e15, 1e18, 1e19, 1e23])
def test_closed_form_optimum_matches_numerical_minimisation(law, flops):
    n_opt, d_opt = optimal_allocation(law, flops)
    n_num, loss_num = _numerical_optimum(law, flops)
    assert float(n_opt) == pytest.approx(n_num, rel=1e-4)
    assert float(6 * n_opt * d_opt) == pytest.approx(flops, rel=1e-12)
    assert float(optimal_loss(law, flops)) == pytest.approx(loss_num, rel=1e-10)
    # It is a minimum along C = 6ND: moving either way costs loss.
    for factor in (0.9, 1.1):
        n = n_opt * factor
        assert float(predict_loss(law, n, flops / (6 * n))) > float(optimal_loss(law, flops))


def test_predict_loss_formula():
    assert float(predict_loss(EPOCH, 1e8, 2e9)) == pytest.approx(
        1.82 + 482.0 * 1e8**-0.3478 + 2085.4 * 2e9**-0.3658
    )


def _draws(size=7, seed=0):
    rng = np.random.default_rng(seed)
    return LawParams(
        E=jnp.asarray(rng.uniform(1.5, 2.5, size)),
        A=jnp.asarray(rng.uniform(100, 800, size)),
        B=jnp.asarray(rng.uniform(300, 3000, size)),
        alpha=jnp.asarray(rng.uniform(0.25, 0.45, size)),
        beta=jnp.asarray(rng.uniform(0.25, 0.45, size)),
    )


def test_vectorised_over_draws_matches_per_draw_and_vmap():
    draws = _draws()
    n_opt, d_opt = optimal_allocation(draws, 1e19)
    loss = optimal_loss(draws, 1e19)
    assert n_opt.shape == d_opt.shape == loss.shape == (7,)
    vmapped = jax.vmap(lambda law: optimal_loss(law, 1e19))(draws)
    np.testing.assert_allclose(vmapped, loss, rtol=1e-12)
    vmapped_n, _ = jax.vmap(lambda law: optimal_allocation(law, 1e19))(draws)
    np.testing.assert_allclose(vmapped_n, n_opt, rtol=1e-12)
    for s in range(7):
        one = LawParams(*(float(field[s]) for field in draws))
        assert float(optimal_loss(one, 1e19)) == pytest.approx(float(loss[s]), rel=1e-12)
        n_num, _ = _numerical_optimum(one, 1e19)
        assert float(n_opt[s]) == pytest.approx(n_num, rel=1e-4)


def test_draws_broadcast_against_budgets_and_jit():
    draws = _draws(5, seed=1)
    column = LawParams(*(field[:, None] for field in draws))
    budgets = jnp.asarray([1e17, 1e18, 1e19])
    n_opt, _ = optimal_allocation(column, budgets)
    assert n_opt.shape == (5, 3)
    assert bool(jnp.all(jnp.diff(n_opt, axis=1) > 0))
    jitted = jax.jit(optimal_loss)(column, budgets)
    np.testing.assert_allclose(jitted, optimal_loss(column, budgets), rtol=1e-12)
    assert jitted.dtype == jnp.float64


@pytest.mark.parametrize("a_eta,b_eta,omega,d_eta", [(0.33, 0.0, 0.0, 1e9), (0.7, 0.2, 0.5, 3e9),
                                                     (0.3, -0.2, 0.2, 1e8)])
def test_lr_star_represents_the_truth_family(a_eta, b_eta, omega, d_eta):
    # DESIGN §3: eta* = eta0 (body/1e8)^-a_eta (D/D_eta)^-b_eta; the model's power law in N, D
    # and the batch must reproduce it exactly at matching parameters, for every shape and budget
    from bayes_scaling.law import ModelData, log_optimal_learning_rate, log_tokens
    from bayes_scaling.params import block_params
    from bayes_scaling.simulator.truth import Truth
    from bayes_scaling.simulator.truth import optimal_learning_rate as truth_lr

    truth = Truth.from_mapping({"eta0": 8e-4, "a_eta": a_eta, "b_eta": b_eta, "omega": omega,
                                "D_eta": d_eta})
    d, layers = np.meshgrid([64.0, 256.0, 1024.0, 4096.0], [2.0, 8.0, 24.0])
    d, layers = d.ravel(), layers.ravel()
    for flops in (1e15, 1e18, 1e21):
        data = ModelData(*(np.zeros(d.shape),) * 5, d_model=d, num_layers=layers,
                         batch_size=np.full(d.shape, 256.0), log_lr=np.zeros(d.shape),
                         log_flops=np.full(d.shape, np.log(flops)), mask=np.ones(d.shape))
        params = {"l0": np.log(8e-4) + a_eta * np.log(10.0) - b_eta * np.log(1e9 / d_eta),
                  "a_lr": a_eta, "b_lr": b_eta, "c_bs": 0.0, "omega": omega}
        log_star = log_optimal_learning_rate(params, block_params(d, layers),
                                             log_tokens(params, data), data.batch_size)
        np.testing.assert_allclose(np.exp(log_star), truth_lr(truth, d, layers, flops),
                                   rtol=1e-10)


def test_lr_star_moves_with_tokens_and_batch_as_its_exponents_say():
    from bayes_scaling.law import log_optimal_learning_rate

    params = {"l0": np.log(1e-3), "a_lr": 0.5, "b_lr": -0.3, "c_bs": 0.5}
    base = log_optimal_learning_rate(params, 1e7, np.log(1e9), 128.0)
    assert float(base) == pytest.approx(np.log(1e-3))
    more_tokens = log_optimal_learning_rate(params, 1e7, np.log(1e10), 128.0)
    bigger_batch = log_optimal_learning_rate(params, 1e7, np.log(1e9), 512.0)
    bigger_model = log_optimal_learning_rate(params, 1e8, np.log(1e9), 128.0)
    assert float(more_tokens - base) == pytest.approx(0.3 * np.log(10.0))
    assert float(bigger_batch - base) == pytest.approx(0.5 * np.log(4.0))
    assert float(bigger_model - base) == pytest.approx(-0.5 * np.log(10.0))


def _epoch_sites(flops, ratios):
    """Epoch's law as the model's sites, and model sizes ``ratios`` x its ``N_opt(flops)``.

    Returns ``(prior, params, sizes, n_opt)``; checks that ``core_law`` inverts the centring.
    """
    from bayes_scaling.law import core_law
    from bayes_scaling.model import PriorConfig

    prior, law = PriorConfig(), EPOCH
    params = {"e": np.log(law.E), "alpha": law.alpha, "beta": law.beta,
              "a_c": np.log(law.A) - law.alpha * np.log(prior.n_ref),
              "b_c": np.log(law.B) - law.beta * np.log(prior.d_ref)}
    back = core_law(params, prior=prior)
    np.testing.assert_allclose([float(v) for v in back], list(law), rtol=1e-12)
    n_opt = float(optimal_allocation(law, flops)[0])
    return prior, params, np.asarray(ratios, np.float64) * n_opt, n_opt


def test_frontier_gap_is_zero_on_the_frontier_and_grows_off_it():
    from bayes_scaling.law import frontier_gap

    flops = 1e20
    prior, params, sizes, _ = _epoch_sites(flops, [1.0, 4.0, 16.0])
    mu = predict_loss(EPOCH, sizes, flops / (6 * sizes))
    gap = np.asarray(frontier_gap(params, np.full(3, np.log(flops)), mu, prior=prior))
    assert gap[0] == pytest.approx(0.0, abs=1e-9)
    assert 0 < gap[1] < gap[2]
    np.testing.assert_allclose(gap, np.log(mu / optimal_loss(EPOCH, flops)), atol=1e-9)


def test_isoflop_distance_is_the_size_ratio_to_the_optimum():
    from bayes_scaling.law import isoflop_distance

    flops = 1e20
    prior, params, sizes, n_opt = _epoch_sites(flops, [1.0, 4.0, 0.25, 16.0])
    dist = np.asarray(isoflop_distance(params, np.log(sizes), np.full(4, np.log(flops)),
                                       prior=prior))
    # symmetric in ln N, whatever the loss curvature on either side
    np.testing.assert_allclose(dist, np.abs(np.log(sizes / n_opt)), atol=1e-9)
