
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own trained-weight cache folder (no state shared with the user's cache)."""
    monkeypatch.setenv("LINKSIM_CACHE", str(tmp_path / "cache"))
    yield


def write(tmp_path, text: str, name: str = "s.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)
