"""Batched records: frozen dataclasses of arrays sharing a leading batch axis B (frames, samples, a batch).

A record's fields are all numpy arrays or all torch tensors. Iterating yields them in declaration
order, which is the argument order of the model that consumes the record (``hand(*pose)``,
``obj.pose(*pose)``). ``hogsa.hand.HandPose`` and ``hogsa.articulated.ObjectPose`` are such records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Iterator, TypeVar

import numpy as np
import torch
from torch import Tensor

Record = TypeVar("Record", bound="BatchedRecord")


@dataclass(frozen=True, eq=False)
class BatchedRecord:
    """Base of the batched records; a subclass declares its fields and ``TRAILING`` (field → shape after B)."""

    TRAILING: ClassVar[dict[str, tuple[int, ...]]]

    def __post_init__(self) -> None:
        first = dataclasses.fields(self)[0].name
        value = getattr(self, first)
        batch = value.shape[0] if value.ndim == 1 + len(self.TRAILING[first]) else None
        for name, trailing in self.TRAILING.items():
            shape = tuple(getattr(self, name).shape)
            if shape != (batch, *trailing):
                expected = ", ".join(str(d) for d in (batch or "B", *trailing)) + ("" if trailing else ",")
                raise ValueError(f"{type(self).__name__}: field {name!r} has shape {shape}, expected ({expected})")

    def __len__(self) -> int:
        return getattr(self, dataclasses.fields(self)[0].name).shape[0]

    def __iter__(self) -> Iterator[np.ndarray | Tensor]:
        return iter([getattr(self, field.name) for field in dataclasses.fields(self)])

    def take(self: Record, index) -> Record:
        """The rows at ``index`` (a slice, an int array or a bool mask; an int keeps the batch axis)."""
        index = [index] if isinstance(index, (int, np.integer)) else index
        return type(self)(*(field[index] for field in self))

    def torch(self: Record, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Record:
        """The same rows as tensors (a copy from numpy; a cast otherwise)."""
        return type(self)(*(torch.as_tensor(field, dtype=dtype, device=device) for field in self))

    def numpy(self: Record) -> Record:
        """The same rows as float64 numpy arrays (detached from any graph)."""
        return type(self)(*(np.asarray(f.detach().cpu().double().numpy() if isinstance(f, Tensor) else f,
                                       dtype=np.float64) for f in self))

    @classmethod
    def concatenate(cls: type[Record], records: list[Record]) -> Record:
        """One record of every row of ``records``, in order (numpy)."""
        return cls(*(np.concatenate([np.asarray(field) for field in fields]) for fields in zip(*records)))
