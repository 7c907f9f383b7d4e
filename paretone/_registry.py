"""A registry of named things (model families, tasks, operators, importance criteria, kernel kinds).

One small type so that every registry refuses a duplicate the same way and answers an unknown
name with the same one-line error, naming what it knows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from paretone.errors import ConfigError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping, in registration order unless ``order`` sorts it, plus ``register``."""

    def __init__(self, what: str, *, order: Callable[[T], object] | None = None) -> None:
        self.what, self._order, self._items = what, order, dict[str, T]()

    def register(self, name: str, item: T) -> T:
        """Add ``item`` as ``name``; ValueError for a name already taken by something else."""
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._items[name] = item
        if self._order is not None:
            self._items = dict(sorted(self._items.items(), key=lambda kv: self._order(kv[1])))  # type: ignore[misc]
        return item

    def named(self, name: str) -> T:
        """The item ``name``; ConfigError naming the known ones otherwise."""
        item = self._items.get(name)
        if item is None:
            raise ConfigError(f"unknown {self.what} {name!r}: paretone knows {', '.join(self._items)}")
        return item

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
