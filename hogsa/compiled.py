"""Lazy, cached ``torch.compile`` for hogsa's fused kernels: the CPU rasterizer's, and HOGS's binding,
shading and pose composition.

A wrapped function compiles on its first call (inductor's C++ backend, ``dynamic=True`` because the
element counts change every call; tens of seconds once per process, a few seconds with inductor's
on-disk cache) and runs eagerly instead whenever the environment variable ``HOGSA_NO_COMPILE=1`` is set
(read at every call, so tests can switch it). Eager and compiled give the same results up to rounding.
Calls with an empty tensor argument also run eagerly: dynamo specialises size 0, and compiling again
would cost more than the trivial eager call. Where the backend cannot compile (no C++ compiler), the
kernels warn once and run eagerly.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import TypeVar

import torch
from torch._dynamo.exc import BackendCompilerFailed

Kernel = TypeVar("Kernel", bound=Callable)

DISABLE_ENV = "HOGSA_NO_COMPILE"
_backend_failed = False


def compile_disabled() -> bool:
    """True when ``HOGSA_NO_COMPILE=1`` or when compiling failed earlier in this process."""
    return _backend_failed or os.environ.get(DISABLE_ENV, "0") == "1"


def lazily_compiled(fn: Kernel) -> Kernel:
    """``fn`` compiled on first use (and cached), or ``fn`` itself while compilation is disabled."""

    @functools.cache
    def compiled() -> Callable:
        return torch.compile(fn, dynamic=True)

    @functools.wraps(fn)
    def run(*args):
        empty = any(isinstance(a, torch.Tensor) and a.numel() == 0 for a in args)
        if empty or compile_disabled():
            return fn(*args)
        try:
            return compiled()(*args)
        except BackendCompilerFailed as err:
            _give_up_compiling(err)
            return fn(*args)

    return run  # type: ignore[return-value]


def _give_up_compiling(err: Exception) -> None:
    global _backend_failed
    _backend_failed = True
    warnings.warn(f"hogsa: torch.compile failed ({type(err).__name__}: {str(err)[:200]}); the kernels run "
                  f"eagerly (the CPU rasterizer and HOGS training several times slower). Set {DISABLE_ENV}=1 to "
                  f"skip trying.", RuntimeWarning, stacklevel=3)
