import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # The models here are tiny: intra-op threads only add spin-wait overhead,
    # which becomes seconds per test when the machine's cores are busy.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
