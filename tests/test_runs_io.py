import json

import numpy as np
import pytest

from bayes_scaling.errors import DataFormatError
from bayes_scaling.oracle import Observation
from bayes_scaling.params import non_embedding_params
from bayes_scaling.runs_io import read_runs, runs_from_observations, write_runs_csv
from bayes_scaling.space import RunConfig

HEADER = "d_model,num_layers,num_heads,batch_size,learning_rate,train_flops,loss\n"


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_api_csv_counts_and_tokens(tmp_path):
    path = _write(tmp_path, "runs.csv", "source_repo," + HEADER
                  + "x,256,4,4,128,0.001,1000000000000000,4.5\n"
                  + "x,512,8,8,256,0.0005,1e16,3.9\n")
    runs = read_runs(path)
    assert runs.kind == "api" and len(runs) == 2
    n = non_embedding_params(256, 4)
    assert runs.n_params[0] == n
    assert runs.n_tokens[0] == pytest.approx(1e15 / (6 * n))
    assert runs.configs[1].train_flops == 10**16
    np.testing.assert_allclose(runs.loss, [4.5, 3.9])
    assert len(runs.features()) == 2


def test_previous_runs_dump_and_duplicates(tmp_path):
    row = {"d_model": 128, "num_layers": 2, "num_heads": 2, "batch_size": 128,
           "learning_rate": 1e-3, "train_flops": 1e15, "loss": 5.0}
    path = _write(tmp_path, "prev.json", json.dumps({"previous_runs": [row, row]}))
    runs = read_runs(path)
    assert runs.kind == "api" and len(runs) == 1
    assert any("repeated" in w for w in runs.warnings)


def test_generic_rows_with_flops_and_aliases(tmp_path):
    path = _write(tmp_path, "g.csv", "n_params,flops,loss\n1e8,6e17,3.0\n2e8,6e17,2.9\n")
    runs = read_runs(path)
    assert runs.kind == "generic"
    np.testing.assert_allclose(runs.n_tokens, [1e9, 5e8])
    path = _write(tmp_path, "g.json", json.dumps(
        [{"parameters": 1e8, "compute_budget": 6e17, "final_loss": 3.0}]))
    assert read_runs(path).n_tokens[0] == pytest.approx(1e9)
    path = _write(tmp_path, "t.csv", "n_params,n_tokens,loss\n1e8,2e9,3.0\n")
    assert read_runs(path).flops[0] == pytest.approx(6 * 1e8 * 2e9)


def test_shared_data_files(shared_data):
    runs = read_runs(shared_data / "cs336_api_runs.csv", source="brandon")
    assert runs.kind == "api" and len(runs) == 99
    pooled = read_runs(shared_data / "cs336_api_runs.csv")
    assert any("pooled" in w for w in pooled.warnings)
    epoch = read_runs(shared_data / "epoch_chinchilla.csv")
    assert epoch.kind == "generic" and len(epoch) == 245


@pytest.mark.parametrize(
    ("text", "row", "column"),
    [
        (HEADER + "256,4,4,128,0.001,1e15,4.5\n256,4,4,128,0.001,1e15,abc\n", "row 3", "'loss'"),
        (HEADER + "256,4,3,128,0.001,1e15,4.5\n", "row 2", "'num_heads'"),
        (HEADER + "256.5,4,4,128,0.001,1e15,4.5\n", "row 2", "'d_model'"),
        (HEADER + "256,4,4,128,,1e15,4.5\n", "row 2", "'learning_rate'"),
        (HEADER + "256,4,4,128,0.001\n", "row 2", "'train_flops'"),
        ("n_params,loss\n1e8,3\n", "row 1", "'d_model'"),
    ],
)
def test_malformed_csv_one_line_message(tmp_path, text, row, column):
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(DataFormatError) as info:
        read_runs(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and row in message and column in message


def test_malformed_json_names_row_and_column(tmp_path):
    rows = [{"n_params": 1e8, "flops": 6e17, "loss": 3.0},
            {"n_params": -1, "flops": 6e17, "loss": 3.0}]
    path = _write(tmp_path, "bad.json", json.dumps(rows))
    with pytest.raises(DataFormatError, match=r"bad\.json: row 2, column 'n_params'"):
        read_runs(path)
    path = _write(tmp_path, "broken.json", "[{")
    with pytest.raises(DataFormatError, match="broken.json: row 1"):
        read_runs(path)


def test_write_runs_csv_round_trip(tmp_path):
    obs = [Observation(config=RunConfig(d_model=128, num_layers=2, num_heads=2, batch_size=128,
                                        learning_rate=3e-4, train_flops=10**15), loss=5.25)]
    path = write_runs_csv(tmp_path / "out" / "runs.csv", obs)
    back = read_runs(path)
    assert back.configs == [obs[0].config] and back.loss[0] == 5.25
    assert "non_embedding_params" in path.read_text().splitlines()[0]
    generic = read_runs(_write(tmp_path, "g.csv", "n_params,n_tokens,loss\n1e8,2e9,3.0\n"))
    again = read_runs(write_runs_csv(tmp_path / "g2.csv", generic))
    np.testing.assert_allclose(again.n_tokens, generic.n_tokens)
    assert len(runs_from_observations(obs)) == 1
