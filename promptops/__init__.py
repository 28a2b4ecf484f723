"""promptops: prompts as code. Plan and apply prompt templates, labels and traffic splits."""
from __future__ import annotations

__version__ = "0.1.0"
