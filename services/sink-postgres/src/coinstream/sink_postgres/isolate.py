"""Isolating rejected rows by splitting a batch (pure algorithm over an ``attempt`` callable)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


async def isolate(
    items: Sequence[T],
    attempt: Callable[[Sequence[T]], Awaitable[None]],
    is_rejection: Callable[[BaseException], bool],
) -> list[tuple[T, BaseException]]:
    """Write ``items`` with ``attempt``; when it raises a rejection, split in halves and retry
    each half until every rejected item stands alone. Return the rejected items with their
    errors; everything else has been written. Any other exception propagates unchanged.

    ``attempt`` must be atomic (all or nothing), e.g. a savepoint. With ``k`` bad items among
    ``n`` it makes about ``2k log2(n)`` attempts.
    """
    rejected: list[tuple[T, BaseException]] = []

    async def go(chunk: Sequence[T]) -> None:
        if not chunk:
            return
        try:
            await attempt(chunk)
        except Exception as exc:
            if not is_rejection(exc):
                raise
            if len(chunk) == 1:
                rejected.append((chunk[0], exc))
                return
            mid = len(chunk) // 2
            await go(chunk[:mid])
            await go(chunk[mid:])

    await go(items)
    return rejected
