"""Our optimizers inside other training loops: PyTorch Lightning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradwise import optim as go
from gradwise.regularization import L1


@pytest.mark.slow
def test_lightning_trains_with_our_optimizer_and_scheduler(tmp_path):
    pl = pytest.importorskip("pytorch_lightning")
    torch.manual_seed(0)
    X = torch.randn(64, 4)
    y = X @ torch.tensor([[1.0], [0.0], [-2.0], [0.0]])

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(4, 1)

        def training_step(self, batch, _):
            xb, yb = batch
            return nn.functional.mse_loss(self.net(xb), yb)

        def configure_optimizers(self):
            opt = go.sgd(self.named_parameters(), lr=0.1, prox=L1(0.05))
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=25, gamma=0.5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    module = Module()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=16)
    trainer = pl.Trainer(
        max_steps=100, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )
    trainer.fit(module, loader)
    w = module.net.weight.detach().ravel()
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**4)
    assert torch.allclose(w[[0, 2]], torch.tensor([1.0, -2.0]), atol=0.1)
    assert (w[[1, 3]] == 0).all()  # the prox zeroed the irrelevant inputs exactly
