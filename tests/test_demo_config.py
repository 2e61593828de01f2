"""The demo's daemon config names the model and state the demo wrote, wherever ``--out`` points."""

from __future__ import annotations

from pathlib import Path

import pytest

from logwarden.daemon.config import load_config
from logwarden.demo import write_config


def test_demo_config_with_a_relative_out_dir_finds_the_model_and_state_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make demo`` runs with ``--out demo-out``; the daemon reads relative paths from the config
    file's directory, so a config naming ``demo-out/model`` inside ``demo-out/`` missed the model."""
    monkeypatch.chdir(tmp_path)
    out = Path("demo-out")
    out.mkdir()
    write_config(out / "config.yaml", "127.0.0.1:9092", out / "model", out / "state", json_events=False)
    config = load_config(out / "config.yaml")
    assert config.model.path == tmp_path / "demo-out" / "model"
    assert config.state.dir == tmp_path / "demo-out" / "state"
