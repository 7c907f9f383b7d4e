from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from paretone.errors import CheckpointError
from paretone.models import ASTConfig, CNNConfig, build_model, load_model, save_model

CONFIG = ASTConfig.uniform(num_classes=3, dim=32, depth=1, heads=2)
LABELS = ("a", "b", "c")


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(1)
    model = build_model(CONFIG).eval()
    save_model(tmp_path / "ckpt", model, labels=LABELS, metadata={"note": "x"})
    return tmp_path / "ckpt", model


def test_round_trip_gives_identical_outputs(checkpoint):
    path, model = checkpoint
    loaded = load_model(path)
    waves = torch.randn(2, 8000) * 0.1
    assert loaded.labels == LABELS and loaded.config == CONFIG
    assert loaded.metadata == {"note": "x"}
    assert torch.equal(loaded.model(waves), model(waves))
    header = json.loads((path / "config.json").read_text())
    assert header["format"] == "paretone.model/1" and "paretone_version" in header
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "weights.safetensors"]
    assert header["task"] == "classification"


class _Exploit:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (str(self.sentinel), "w"))


def test_pickle_posing_as_weights_is_refused_and_never_executed(checkpoint, tmp_path):
    path, _ = checkpoint
    sentinel = tmp_path / "pwned"
    (path / "weights.safetensors").write_bytes(pickle.dumps(_Exploit(sentinel)))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(path)
    assert not sentinel.exists()


def test_folder_with_only_a_torch_pickle_is_refused(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(CheckpointError, match=r"pickled \.pt/\.pth files are never loaded"):
        load_model(tmp_path)


def test_truncated_safetensors_is_refused(checkpoint):
    path, _ = checkpoint
    weights = path / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(path)


def test_weights_of_another_architecture_are_refused(checkpoint):
    path, _ = checkpoint
    other = build_model(ASTConfig.uniform(num_classes=3, dim=32, depth=1, heads=2, mlp_ratio=1.0))
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(path / "weights.safetensors"))
    with pytest.raises(CheckpointError, match=r"wrong shape: blocks\.0\.ffn\.fc1\.weight"):
        load_model(path)


def test_weights_of_another_family_are_refused(checkpoint):
    path, _ = checkpoint
    other = build_model(CNNConfig.uniform(num_classes=3, channels=(4,)))
    save_file(other.state_dict(), str(path / "weights.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing: .*unexpected: "):
        load_model(path)


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: "not json{",
        lambda h: json.dumps({**h, "format": "other/9"}),
        lambda h: json.dumps({**h, "model": {**h["model"], "dim": -4}}),
        lambda h: json.dumps({**h, "labels": ["a"]}),
    ],
)
def test_bad_config_json_is_refused(checkpoint, edit):
    path, _ = checkpoint
    header = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(edit(header))
    with pytest.raises(CheckpointError):
        load_model(path)


def test_a_config_naming_absurd_sizes_is_refused_before_anything_is_allocated(checkpoint):
    path, _ = checkpoint
    header = json.loads((path / "config.json").read_text())
    # 10^6 x 10^6 float32 weights would need 4 TB: the header check refuses it on shapes alone
    header["model"]["dim"] = 1_000_000
    header["model"]["blocks"][0]["ffn_dim"] = 1_000_000
    (path / "config.json").write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match=r"weights do not match config\.json \(.*wrong shape"):
        load_model(path)


def test_a_checkpoint_of_paretone_0_1_0_still_loads(checkpoint):
    path, model = checkpoint
    header = json.loads((path / "config.json").read_text())
    header.pop("task")  # written before tasks were named
    (path / "config.json").write_text(json.dumps(header))
    loaded = load_model(path)
    assert loaded.task == "classification"
    assert torch.equal(loaded.model(torch.zeros(1, 8000)), model(torch.zeros(1, 8000)))


def test_a_deeply_nested_config_is_one_error(checkpoint):
    path, _ = checkpoint
    (path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_model(path)
