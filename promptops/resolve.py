"""Which version a user gets under a label's traffic split: sticky consistent hashing.

The hash is part of the contract, so an application can reimplement it and agree with
``promptops resolve``:

    bucket = int.from_bytes(sha256(f"{prompt}\\x00{label}\\x00{user}".encode("utf-8")).digest()[:8], "big") % 10000

That is 10,000 buckets, so weights (integer percentages) are honoured to 0.01% granularity: a
version with weight ``w`` owns ``w * 100`` buckets. The prompt and label are part of the key, so a
user's bucket is independent across prompts and labels (being in the canary of one rollout says
nothing about another).

Versions are laid out over the buckets in remote order, oldest first, each taking a contiguous range
of its weight's size, so the newest version owns the top end ``[10000 - w*100, 10000)``.
Stickiness: raising the newest version's weight only moves users onto it, never off it — its range
grows downwards while the older versions' ranges shrink from their top end. Ramping a canary
10 -> 20 -> 50 -> 100 therefore never bounces a user back and forth. A version with weight 0 owns
no buckets and gets no users.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping, Sequence

from .errors import PromptOpsError
from .model import RemotePrompt

BUCKETS = 10_000


def bucket(prompt: str, label: str, user: str) -> int:
    """The user's bucket in ``range(BUCKETS)`` for this prompt and label (see the module docstring)."""
    key = f"{prompt}\x00{label}\x00{user}".encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % BUCKETS


def pick(weights: Mapping[str, int], order: Sequence[str], b: int) -> str:
    """The version whose bucket range holds ``b``.

    ``order`` lists version ids oldest first (versions absent from ``weights`` weigh 0); each
    version takes the next ``weight * 100`` buckets. Raises ValueError when the weights do not sum
    to 100, name a version not in ``order``, or ``b`` is out of range.
    """
    if not 0 <= b < BUCKETS:
        raise ValueError(f"bucket {b} is outside 0..{BUCKETS - 1}")
    unknown = set(weights) - set(order)
    if unknown:
        raise ValueError(f"traffic split names versions that do not exist: {', '.join(sorted(unknown))}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) != 100:
        raise ValueError(f"traffic weights must be non-negative and sum to 100, not {dict(weights)}")
    end = 0
    for version in order:
        end += weights.get(version, 0) * (BUCKETS // 100)
        if b < end:
            return version
    raise AssertionError("unreachable: weights sum to 100")  # pragma: no cover


@dataclass(frozen=True)
class Resolution:
    """The outcome of :func:`resolve`. ``weights`` is the split used, or None when the label has none."""

    prompt: str
    label: str
    user: str
    version_id: str
    bucket: int
    weights: Mapping[str, int] | None = None


def resolve(remote_prompt: RemotePrompt, label: str, user: str) -> Resolution:
    """The version ``user`` gets for ``label``: by the label's traffic split if it has one, else the
    version the label points at. Raises PromptOpsError when the prompt has no such label."""
    name = remote_prompt.name
    b = bucket(name, label, user)
    weights = remote_prompt.traffic.get(label)
    if weights is not None:
        order = [v.id for v in remote_prompt.versions]
        try:
            version_id = pick(weights, order, b)
        except ValueError as exc:
            raise PromptOpsError(f"prompt {name} label {label}: {exc}; fix the split with promptops apply") from exc
        return Resolution(name, label, user, version_id, b, dict(weights))
    if label in remote_prompt.labels:
        return Resolution(name, label, user, remote_prompt.labels[label], b, None)
    known = sorted(set(remote_prompt.labels) | set(remote_prompt.traffic))
    raise PromptOpsError(f"prompt {name} has no label {label}; labels: {', '.join(known) or 'none'}")
