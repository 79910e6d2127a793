"""`Rows`: a long listing of the evidence pack's model kept compact (one tuple a row) and read as dicts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any


class Rows(Sequence):
    """A listing of the model: one tuple a row (values in `keys` order), handed out as a fresh dict each time
    it is read (iteration, an index, a slice: a list of dicts). A dict per row costs ~5x its tuple; the pack
    holds ~200,000 rows. `nested` names keys whose value is a dict with the same keys in every row: its values
    are kept in the tuple too. Reading a row gives a copy: change a listing by building a new one."""

    __slots__ = ("keys", "data", "nested")

    def __init__(self, keys: Iterable[str], data: Iterable[tuple] = (),
                 nested: dict[str, tuple[str, ...]] | None = None):
        self.keys, self.data, self.nested = tuple(keys), list(data), nested or {}

    @classmethod
    def of(cls, rows: Iterable[dict[str, Any]], keys: Iterable[str] | None = None,
           nested: Iterable[str] = ()) -> "Rows":
        """Rows from dicts that all have the same keys (those of the first row unless given)."""
        it = iter(rows)
        first = next(it, None)
        if first is None:
            return cls(keys or ())
        keys = tuple(keys or first)
        inner = {k: tuple(first[k]) for k in nested if isinstance(first.get(k), dict)}
        out = cls(keys, (), inner)
        for row in chain((first,), it):
            out.add(row)
        return out

    def add(self, row: dict[str, Any]) -> None:
        try:
            if len(row) != len(self.keys):
                raise KeyError
            if not self.nested:
                self.data.append(tuple([row[k] for k in self.keys]))
                return
            values: list[Any] = []
            for k in self.keys:
                sub = self.nested.get(k)
                if sub is None:
                    values.append(row[k])
                elif isinstance(row[k], dict) and len(row[k]) == len(sub):
                    values += [row[k][s] for s in sub]
                else:
                    raise KeyError
            self.data.append(tuple(values))
        except KeyError:
            raise ValueError(f"a row unlike the first: {sorted(row)}, not {self.keys} "
                             f"(nested: {self.nested})") from None

    def _row(self, values: tuple) -> dict[str, Any]:
        if not self.nested:
            return dict(zip(self.keys, values))
        out, at = {}, 0
        for k in self.keys:
            sub = self.nested.get(k)
            if sub is None:
                out[k], at = values[at], at + 1
            else:
                out[k], at = dict(zip(sub, values[at:at + len(sub)])), at + len(sub)
        return out

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(self._row, self.data)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._row(v) for v in self.data[index]]
        return self._row(self.data[index])

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (Rows, list)) else NotImplemented

    def sort(self, key) -> None:
        self.data.sort(key=lambda values: key(self._row(values)))

    def __repr__(self) -> str:
        return f"Rows({len(self)} rows: {', '.join(self.keys)})"
