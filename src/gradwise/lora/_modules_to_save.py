"""`ModulesToSave`: a module that trains fully, one copy per adapter (e.g. a new head)."""

from __future__ import annotations

import copy
from typing import Any

from torch import nn


class ModulesToSave(nn.Module):
    """Keeps the ``original_module`` frozen and a trainable copy per adapter.

    The forward runs the active adapter's copy, or the original when the adapter
    has no copy here or adapters are disabled. Names follow PEFT
    (``original_module``, ``modules_to_save.<adapter>``), and a copy is saved under
    the module's own path (``classifier.weight``), as PEFT writes it.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.original_module = module
        self.modules_to_save = nn.ModuleDict()
        self.active_adapter: str | None = None
        self.adapters_disabled = False

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            modules = self.__dict__.get("_modules", {})
            if name in ("original_module", "modules_to_save") or "original_module" not in modules:
                raise
            return getattr(self.current(), name)

    @property
    def adapters(self) -> list[str]:
        return list(self.modules_to_save)

    def add_adapter(self, name: str) -> None:
        trained = copy.deepcopy(self._modules["original_module"])
        trained.requires_grad_(True)
        self.modules_to_save[name] = trained

    def delete_adapter(self, name: str) -> None:
        if name in self.modules_to_save:
            del self.modules_to_save[name]
        if self.active_adapter == name:
            self.active_adapter = None

    def set_active(self, name: str | None) -> None:
        self.active_adapter = name

    def set_disabled(self, disabled: bool) -> None:
        self.adapters_disabled = disabled

    def adapter_parameters(self, name: str) -> list[nn.Parameter]:
        return list(self.modules_to_save[name].parameters()) if name in self.modules_to_save else []

    def current(self) -> nn.Module:
        """The module the forward runs now."""
        copies = self._modules["modules_to_save"]
        name = self.active_adapter
        if not self.adapters_disabled and name is not None and name in copies:
            return copies[name]
        return self._modules["original_module"]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.current()(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"adapters={self.adapters}, active={self.active_adapter!r}"
