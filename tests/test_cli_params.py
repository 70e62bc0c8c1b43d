import json

import pytest

from bayes_scaling.cli import main


def test_params_prints_labelled_counts_with_separators(capsys):
    assert main(["params", "--d-model", "1024", "--num-layers", "24", "--num-heads", "16"]) == 0
    out = capsys.readouterr().out
    assert "non-embedding params:" in out and "334,930,944" in out
    assert "total params:" in out and "368,223,232" in out
    assert "embedding params:" in out and "33,292,288" in out
    assert "tokens" not in out


def test_params_with_train_flops_states_the_token_convention(capsys):
    argv = ["params", "--d-model", "64", "--num-layers", "2", "--num-heads", "2",
            "--train-flops", "1e18"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2,147,264" in out
    assert f"{round(1e18 / (6 * 2_147_264)):,}" in out
    assert "flops / (6 * non-embedding params)" in out


def test_params_json(capsys):
    argv = ["params", "--d-model", "64", "--num-layers", "2", "--num-heads", "2",
            "--train-flops", "6e17", "--json"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["non_embedding_params"] == 2_147_264
    assert record["total_params"] == 4_228_032
    assert record["embedding_params"] == 4_228_032 - 2_147_264
    assert record["param_count"] == "non_embedding"
    assert record["tokens"] == pytest.approx(6e17 / (6 * 2_147_264))
    assert "non-embedding" in record["tokens_convention"]


@pytest.mark.parametrize(
    "shape, needle",
    [
        (["100", "2", "3"], "d_model must be divisible by num_heads"),
        (["64", "0", "2"], "num_layers: expected a positive integer, got 0"),
        (["-64", "2", "2"], "d_model: expected a positive integer, got -64"),
    ],
)
def test_params_invalid_shape_is_one_line_exit_2(capsys, shape, needle):
    argv = ["params", "--d-model", shape[0], "--num-layers", shape[1], "--num-heads", shape[2]]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert needle in lines[0]


def test_params_rejects_non_positive_flops(capsys):
    argv = ["params", "--d-model", "64", "--num-layers", "2", "--num-heads", "2",
            "--train-flops", "0"]
    assert main(argv) == 2
    assert "--train-flops: expected a positive number" in capsys.readouterr().err
