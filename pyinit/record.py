"""Immutable value objects without `dataclasses`.

`import dataclasses` costs ~11 ms at start-up (it pulls in `inspect`), more than pyinit's whole
start-up budget, so configuration and decisions are slotted classes on this small base instead:
fields are listed in `__slots__`, set once in `__init__` with `_set`, and never again.
"""

from __future__ import annotations


class Record:
    """An immutable record, compared and hashed by value, with a readable repr."""

    __slots__ = ()

    def _set(self, **fields: object) -> None:
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def _fields(self) -> tuple[str, ...]:
        return self.__slots__

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, k) for k in self._fields())

    def _changed(self, changes: dict[str, object]) -> dict[str, object]:
        """All fields as keyword arguments, with `changes` applied: for `replace` methods."""
        fields: dict[str, object] = dict(zip(self._fields(), self._values(), strict=True))
        fields.update(changes)
        return fields

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {key!r}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {key!r}")

    def __eq__(self, other: object) -> bool:
        # Exact type: a RestartRules never equals another record with the same values.
        if not isinstance(other, Record) or type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *map(repr, self._values())))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields())
        return f"{type(self).__name__}({fields})"
