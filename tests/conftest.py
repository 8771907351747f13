import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# As the scripts run (--threads 1): the tests' tiny networks only lose from splitting ops across
# threads, and lose badly when the other cores are busy.
torch.set_num_threads(1)


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"
