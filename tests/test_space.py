import pytest

from bayes_scaling.errors import InvalidConfigError
from bayes_scaling.space import TRAIN_FLOPS, RunConfig, iter_shapes, parse_config, validate_config


def make(**overrides):
    values = dict(
        d_model=256, num_layers=4, num_heads=4, batch_size=128, learning_rate=1e-3,
        train_flops=int(1e15),
    )
    values.update(overrides)
    return RunConfig(**values)


def test_train_flops_are_the_api_grid():
    assert len(TRAIN_FLOPS) == 16
    assert TRAIN_FLOPS[0] == 10**13 and TRAIN_FLOPS[-1] == 10**18
    assert 6 * 10**16 in TRAIN_FLOPS


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"d_model": 9999}, "d_model must be in range [64, 1024], got 9999"),
        ({"num_layers": 1}, "num_layers must be in range [2, 24], got 1"),
        ({"num_heads": 32}, "num_heads must be in range [2, 16], got 32"),
        ({"batch_size": 64}, "batch_size must be one of [128, 256], got 64"),
        ({"learning_rate": 2e-3}, "learning_rate must be in range [0.0001, 0.001], got 0.002"),
        ({"train_flops": 2 * 10**15}, "train_flops must be one of"),
        ({"d_model": 100, "num_heads": 8}, "d_model must be divisible by num_heads"),
    ],
)
def test_validation_messages(overrides, message):
    with pytest.raises(InvalidConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_config(make(**overrides))


def test_valid_config_passes_and_parses_from_strings():
    raw = dict(d_model="256", num_layers="4", num_heads="4", batch_size="128",
               learning_rate="0.001", train_flops="1e15")
    config = parse_config(raw)
    assert config == make()
    assert validate_config(config) is config


def test_parse_rejects_non_integers_and_missing():
    with pytest.raises(InvalidConfigError, match="d_model must be an integer"):
        parse_config(dict(make().to_query(), d_model="12.5"))
    with pytest.raises(InvalidConfigError, match="missing parameter"):
        parse_config({"d_model": 64})


def test_iter_shapes_only_valid():
    shapes = list(iter_shapes())
    assert (64, 2, 2) in shapes and (1024, 24, 16) in shapes
    for d_model, num_layers, num_heads in shapes:
        validate_config(make(d_model=d_model, num_layers=num_layers, num_heads=num_heads))
