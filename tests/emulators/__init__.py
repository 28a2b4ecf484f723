"""Faithful emulators of the prompt platforms' HTTP APIs, for tests (see base.py).

``EMULATORS`` maps a provider kind to "module:Class"; :func:`create` builds one. Run one as a
server with ``python -m tests.emulators NAME --port N`` from the repository root.
"""
from __future__ import annotations

import importlib
from typing import Any

EMULATORS = {
    "github": "github:GitHubEmulator",
    "langfuse": "langfuse:LangfuseEmulator",
    "promptlab": "promptlab:PromptLabEmulator",
    "promptlayer": "promptlayer:PromptLayerEmulator",
    "promptrails": "promptrails:PromptRailsEmulator",
}


def create(kind: str, **options: Any) -> Any:
    """A new emulator of ``kind`` (options go to its constructor)."""
    module, cls = EMULATORS[kind].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(**options)
