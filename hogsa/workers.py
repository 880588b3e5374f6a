"""Jobs run on one torch thread each, in worker processes or in this one.

Most of hogsa's CPU work (POM's optimisation, augmentation shards, the SRM's training) is small
operations that one core runs nearly as fast as two, so two jobs at once finish sooner than one job on
two threads. Every job runs on one thread whatever the number of workers, so the result does not depend
on it (torch's reductions on two threads may round differently in the last digits).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from tqdm.auto import tqdm

Job = TypeVar("Job")
Result = TypeVar("Result")


def map_single_threaded(function: Callable[[Job], Result], jobs: Sequence[Job], workers: int,
                        desc: str | None = None) -> list[Result]:
    """``[function(job) for job in jobs]``, each on one torch thread: in ``min(workers, len(jobs))``
    spawned processes when that is more than one (``function`` and the jobs must pickle), else in this
    process, whose thread count is restored afterwards. ``desc`` labels a progress bar over the jobs."""
    if workers > 1 and len(jobs) > 1:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, len(jobs)), initializer=torch.set_num_threads, initargs=(1,)) as pool:
            return list(tqdm(pool.imap(function, jobs), total=len(jobs), desc=desc, disable=desc is None))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [function(job) for job in tqdm(jobs, desc=desc, disable=desc is None)]
    finally:
        torch.set_num_threads(threads)
