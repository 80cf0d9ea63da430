"""vaelab.checkpoints: atomic writes, weights-only reads, keyed by configuration and data."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from vaelab import checkpoints
from vaelab.checkpoints import (
    CheckpointError,
    config_key,
    data_fingerprint,
    load_checkpoint,
    save_checkpoint,
)

CONFIG = {"model": {"latent_dim": 2}, "epochs": 3, "lr": 0.01}
PAYLOAD = {"state_dict": {"w": torch.arange(4.0)}, "history": [{"loss": 1.5}]}


def test_roundtrip_and_weights_only(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "sub" / "a.pt", CONFIG, PAYLOAD)
    seen = {}
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.update(k) or real_load(*a, **k))
    state = load_checkpoint(path, dict(CONFIG))
    assert seen.get("weights_only") is True
    assert torch.equal(state["state_dict"]["w"], PAYLOAD["state_dict"]["w"])
    assert state["history"] == PAYLOAD["history"]
    assert [p.name for p in path.parent.iterdir()] == ["a.pt"]  # no temporary file left


def test_errors_name_the_file_and_the_remedy(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", CONFIG, PAYLOAD)
    with pytest.raises(CheckpointError, match="different configuration"):
        load_checkpoint(path, {**CONFIG, "lr": 0.02})
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", CONFIG)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path / "junk.pt", CONFIG)
    torch.save({"format_version": checkpoints.FORMAT_VERSION, "config": "{}",
                "history": [object()]}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path / "evil.pt", {})
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(path, {"schedule": lambda e: e}, PAYLOAD)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "a.pt", CONFIG, PAYLOAD)
    before = path.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError, match="No space left.*unchanged"):
        save_checkpoint(path, CONFIG, {"state_dict": {}})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_an_interrupted_write_leaves_no_temporary(tmp_path, monkeypatch):
    def interrupted(obj, f, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "a.pt", CONFIG, PAYLOAD)
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_the_folder_belongs_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(CheckpointError, match="cannot save the checkpoint"):
        save_checkpoint(tmp_path / "f" / "a.pt", CONFIG, PAYLOAD)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_a_read_only_folder_is_refused_for_an_ordinary_user(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(folder, 0o555)
    code = ("from vaelab.checkpoints import save_checkpoint\n"
            f"save_checkpoint({str(folder / 'a.pt')!r}, {{}}, {{}})\n")
    # Root ignores permissions: run as nobody, without root's capabilities.
    run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "HOME": str(tmp_path)})
    if "No module named" in run.stderr:
        pytest.skip("the package is not readable by the unprivileged user here")
    assert run.returncode != 0 and "cannot save the checkpoint" in run.stderr


def test_keys_and_fingerprints():
    assert config_key(CONFIG) == config_key(dict(reversed(list(CONFIG.items()))))
    assert config_key(CONFIG) != config_key({**CONFIG, "lr": 0.02})
    a = torch.arange(12, dtype=torch.uint8).view(3, 4)
    assert data_fingerprint(a) == data_fingerprint(a.clone())
    b = a.clone()
    b[2, 3] = 0
    assert data_fingerprint(a) != data_fingerprint(b)
    assert data_fingerprint(a) != data_fingerprint(a.view(4, 3))


def test_numpy_numbers_in_a_configuration_are_their_values():
    import numpy as np

    assert checkpoints.canonical({"epochs": np.int64(3), "kl_weight": np.float64(0.5)}) == \
        checkpoints.canonical({"epochs": 3, "kl_weight": 0.5})
    with pytest.raises(ValueError, match="JSON values"):
        checkpoints.canonical({"images": np.zeros(3)})
