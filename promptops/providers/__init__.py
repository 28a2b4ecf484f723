"""Provider adapters, one module each, and the registry that opens a target.

The registry maps a provider kind to a function that opens a connection for a target; the core
never branches on provider names anywhere else.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .. import __version__
from ..errors import ConfigError
from .base import Provider

if TYPE_CHECKING:  # config imports providers.base, so a runtime import here would be circular
    from ..config import Target


def _open_local(target: Target, root: Path) -> Provider:
    from .local import LocalProvider  # imported lazily: sqlite3 is only needed for local targets

    return LocalProvider(root / target.path)


def _open_langfuse(target: Target, root: Path) -> Provider:
    from .langfuse import LangfuseProvider

    return LangfuseProvider(target)


def _open_promptlab(target: Target, root: Path) -> Provider:
    from .promptlab import PromptLabProvider

    return PromptLabProvider(target)


def _open_promptlayer(target: Target, root: Path) -> Provider:
    from .promptlayer import PromptLayerProvider

    return PromptLayerProvider(target)


def _open_promptrails(target: Target, root: Path) -> Provider:
    from .promptrails import PromptRailsProvider

    return PromptRailsProvider(target)


OPENERS: dict[str, Callable[[Target, Path], Provider]] = {
    "local": _open_local, "langfuse": _open_langfuse, "promptlab": _open_promptlab,
    "promptlayer": _open_promptlayer, "promptrails": _open_promptrails}


def open_provider(target: Target, root: Path) -> Provider:
    """Open a connection to ``target``; ``root`` is the project directory (for relative paths)."""
    opener = OPENERS.get(target.provider)
    if opener is None:
        raise ConfigError(f"target {target.name!r}: provider {target.provider!r} is not available in "
                          f"promptops {__version__} (available: {', '.join(sorted(OPENERS))})")
    return opener(target, root)
