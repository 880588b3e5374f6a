"""hogsa.workers: jobs on one torch thread each, in worker processes or in this one."""

import os

import torch

from hogsa.workers import map_single_threaded


def _threads_and_sum(job: tuple[int, torch.Tensor]) -> tuple[int, int, float, int]:
    """(job number, torch threads it ran on, a float32 sum whose rounding depends on them, process id)."""
    number, values = job
    return number, torch.get_num_threads(), float((values * number).sum()), os.getpid()


def _jobs() -> list[tuple[int, torch.Tensor]]:
    values = torch.linspace(0.1, 7.0, 300_001)
    return [(number, values) for number in range(1, 6)]


def test_every_job_runs_on_one_thread_in_order_and_the_callers_threads_come_back():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        results = map_single_threaded(_threads_and_sum, _jobs(), workers=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert [number for number, *_ in results] == [1, 2, 3, 4, 5]
    assert {(threads, pid) for _, threads, _, pid in results} == {(1, os.getpid())}


def test_worker_processes_give_the_results_of_one_process_in_job_order():
    in_process = map_single_threaded(_threads_and_sum, _jobs(), workers=1)
    in_workers = map_single_threaded(_threads_and_sum, _jobs(), workers=2)
    assert [r[:3] for r in in_workers] == [r[:3] for r in in_process]  # same order, one thread, same bytes
    assert os.getpid() not in {r[3] for r in in_workers}  # ran in the workers


def test_one_job_runs_in_this_process_even_with_workers():
    (result,) = map_single_threaded(_threads_and_sum, _jobs()[:1], workers=4)
    assert (result[0], result[1], result[3]) == (1, 1, os.getpid())
