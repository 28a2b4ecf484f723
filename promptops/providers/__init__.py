"""Provider adapters, one module each, and the registry that opens a target."""
from __future__ import annotations
