"""Restricted unpickling of model and annotation files.

Official MANO files and ARCTIC's ``.mano.npy`` / ``.egocam.dist.npy`` are Python pickles. A plain
``pickle.load`` executes whatever the file names, so hogsa reads them with an unpickler that admits
only the classes such files hold: numpy arrays, dtypes and scalars, scipy.sparse matrices, and
chumpy's ``Ch`` (mapped to a numpy array, so chumpy need not be installed). Anything else raises
``UnpicklingError`` naming the file and the refused class; so does a truncated or corrupt file.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse


class _Rejected(pickle.UnpicklingError):
    """A refusal raised while unpickling; ``load`` adds the file's name."""


class _SparseState:
    """Stand-in for a pickled scipy.sparse matrix: collects its state, converted after loading.

    Pickles rebuild objects with ``cls.__new__`` (no ``__init__``), so the format is a class attribute.
    """

    fmt = ""
    state: dict = {}

    def __setstate__(self, state: dict) -> None:
        self.state = state

    def to_scipy(self) -> scipy.sparse.spmatrix:
        s = self.state
        shape = tuple(s.get("_shape", s.get("shape")))
        if self.fmt == "coo":
            return scipy.sparse.coo_matrix((s["data"], (s["row"], s["col"])), shape=shape)
        cls = {"csc": scipy.sparse.csc_matrix, "csr": scipy.sparse.csr_matrix}[self.fmt]
        return cls((s["data"], s["indices"], s["indptr"]), shape=shape)


class _ChumpyState:
    """Stand-in for a pickled ``chumpy.ch.Ch``: its value is the array in the ``x`` field."""

    state: dict = {}

    def __setstate__(self, state: dict) -> None:
        self.state = state

    def to_numpy(self) -> np.ndarray:
        if "x" not in self.state:
            raise _Rejected("chumpy object without an 'x' array (only plain Ch is supported)")
        return np.asarray(self.state["x"])


_SPARSE = {fmt: type(f"_Sparse_{fmt}", (_SparseState,), {"fmt": fmt}) for fmt in ("csc", "csr", "coo")}

_NUMPY_CLASSES = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy.core.numeric", "_frombuffer"): np._core.numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): np._core.numeric._frombuffer,
}


_BUILTINS = {"object": object, "set": set, "frozenset": frozenset}  # chumpy's state holds sets


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes (latin1 only)."""
    if encoding not in ("latin1", "latin-1"):
        raise _Rejected(f"refused codec {encoding!r}")
    return text.encode("latin1")


def _reconstructor(cls, base, state):
    """``copyreg._reconstructor`` for admitted classes only (base must be ``object``)."""
    if base is not object:
        raise _Rejected(f"refused reconstruction of {cls!r} on base {base!r}")
    return object.__new__(cls)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler admitting numpy (and, optionally, scipy.sparse and chumpy stand-ins) only."""

    def __init__(self, file, allow_sparse: bool, allow_chumpy: bool):
        super().__init__(file, encoding="latin1")
        self.allow_sparse = allow_sparse
        self.allow_chumpy = allow_chumpy

    def find_class(self, module: str, name: str):
        if (module, name) in _NUMPY_CLASSES:
            return _NUMPY_CLASSES[(module, name)]
        if (module, name) in {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor")}:
            return _reconstructor
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if module in ("__builtin__", "builtins") and name in _BUILTINS:
            return _BUILTINS[name]
        if self.allow_sparse and module.startswith("scipy.sparse"):
            fmt = name.split("_")[0]
            if name.endswith(("_matrix", "_array")) and fmt in _SPARSE:
                return _SPARSE[fmt]
        if self.allow_chumpy and module.startswith("chumpy") and name == "Ch":
            return _ChumpyState
        raise _Rejected(
            f"refused to load class {module}.{name}; only numpy"
            + (", scipy.sparse" if self.allow_sparse else "")
            + (" and chumpy.Ch" if self.allow_chumpy else "")
            + " objects are admitted in this file"
        )


def _convert(obj: Any) -> Any:
    """Replace stand-ins by numpy / scipy objects, recursing into containers."""
    if isinstance(obj, _ChumpyState):
        return obj.to_numpy()
    if isinstance(obj, _SparseState):
        return obj.to_scipy()
    if isinstance(obj, dict):
        return {(k.decode("latin1") if isinstance(k, bytes) else k): _convert(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_convert(v) for v in obj)
    return obj


def load(path: str | Path, allow_sparse: bool = False, allow_chumpy: bool = False) -> Any:
    """Load a pickle (or a pickled ``.npy``) admitting only numpy-family classes.

    A ``.npy`` file holding a pickled object (``np.save`` of a dict) is read from its header on.
    Raises ``pickle.UnpicklingError`` naming the file for any other class and for a truncated or
    corrupt file.
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        if raw[:6] == b"\x93NUMPY":
            raw = _npy_object_payload(raw)
        value = RestrictedUnpickler(io.BytesIO(raw), allow_sparse, allow_chumpy).load()
        if isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 0:
            value = value.item()  # np.save of a dict stores it in a 0-d object array
        return _convert(value)
    except _Rejected as err:
        raise pickle.UnpicklingError(f"{path}: {err}") from None
    except Exception as err:  # whatever a truncated or foreign byte stream makes the unpickler raise
        raise pickle.UnpicklingError(f"{path}: truncated or corrupt ({type(err).__name__}: {err}); "
                                     "expected a complete pickle") from err


def _npy_object_payload(raw: bytes) -> bytes:
    """The pickle stream of an object ``.npy`` file (after its header)."""
    buffer = io.BytesIO(raw)
    version = np.lib.format.read_magic(buffer)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(version, np.lib.format.read_array_header_2_0)
    header = read_header(buffer, max_header_size=100_000)
    if header[2] != np.dtype(object):
        raise _Rejected(f"expected a pickled object .npy, found dtype {header[2]}")
    return raw[buffer.tell():]

