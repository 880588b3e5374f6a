"""Running the shards: on this machine's worker processes or as Ray tasks, and assembling the outputs.

Either executor runs each unfinished shard once with ``hogsa.augment.shards.run_shard`` in a process
of one torch thread (so a shard's bytes do not depend on where it ran: torch's reductions on several
threads may round differently), and a shard's outputs depend on its key alone: the two executors, any
number of workers and any interruption give the same files. DVC stays the study's orchestrator; Ray
only executes the shards inside the augment stage.

- ``local``: ``workers`` spawned processes (one: this process, on one thread);
- ``ray``: one task per shard (``num_cpus=1``; on a GPU machine ``ray_gpus_per_task`` of a GPU), on a
  local Ray instance of ``workers`` CPUs (``ray_address: null``) or on the cluster at ``ray_address``
  (its workers need hogsa installed and the study's files at the same paths).

A variant's output folder holds ``identity.json``, the digest of everything its content depends on
(``output_identity``): a folder written with other settings, inputs or code is cleared before any
shard runs, so a rerun resumes only its own work. Once every shard is finished, ``manifest.jsonl``
(one line per sample, shards in plan order) and the ARCTIC splits file (every sample in "train") are
written from the shards' records.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from tqdm.auto import tqdm

from hogsa.augment.plan import AugmentConfig
from hogsa.augment.shards import ShardJob, is_finished, record_path, run_shard
from hogsa.code_identity import code_digest
from hogsa.data.arctic_writer import write_splits
from hogsa.io import atomic_write_text, write_json
from hogsa.workers import map_single_threaded

IDENTITY_FILE = "identity.json"
MANIFEST_FILE = "manifest.jsonl"


def output_identity(params: dict, input_files: list[Path]) -> str:
    """Digest of the parameters a sample depends on, the bytes of ``input_files`` and the code."""
    sha = hashlib.sha256()
    sections = {k: params[k] for k in ("seed", "hand", "data", "hogs", "srm", "augment")}
    sections["augment"] = {k: v for k, v in sections["augment"].items() if k not in ("executor", "workers",
                                                                                      "ray_address", "report")}
    sha.update(json.dumps(sections, sort_keys=True).encode())
    for path in input_files:
        sha.update(str(path).encode())
        sha.update(hashlib.sha256(Path(path).read_bytes()).digest())
    sha.update(code_digest("hogsa.augment.shards").encode())
    return sha.hexdigest()


def prepare_outputs(out_dir: str | Path, variants: list[str], identity: str) -> None:
    """Clear each variant's folder written with another identity; mark it with this one."""
    for variant in variants:
        folder = Path(out_dir) / variant
        marker = folder / IDENTITY_FILE
        stored = json.loads(marker.read_text()).get("identity") if marker.is_file() else None
        if stored != identity:
            shutil.rmtree(folder, ignore_errors=True)
            write_json(marker, {"identity": identity})


def run_jobs(jobs: list[ShardJob], cfg: AugmentConfig) -> None:
    """Run the unfinished ``jobs`` with the configured executor."""
    todo = [job for job in jobs if not is_finished(job.inputs.out_dir, cfg, job.shard)]
    if not todo:
        return
    if cfg.executor == "ray":
        run_ray(todo, cfg)
    else:
        map_single_threaded(run_shard, todo, cfg.workers, desc="augment shards")


def _ray_shard(job: ShardJob) -> str:
    torch.set_num_threads(1)
    return run_shard(job)


def run_ray(jobs: list[ShardJob], cfg: AugmentConfig) -> None:
    """One Ray task per shard, on the instance at ``cfg.ray_address`` or on a local one started here."""
    import ray

    started = not ray.is_initialized()
    if started:
        options = {"address": cfg.ray_address} if cfg.ray_address else {"num_cpus": cfg.workers}
        ray.init(**options, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        gpus = cfg.ray_gpus_per_task if torch.cuda.is_available() else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus)(_ray_shard)
        pending = [task.remote(job) for job in jobs]
        with tqdm(total=len(pending), desc="augment shards (ray)") as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ray.get(done)
                bar.update(len(done))
    finally:
        if started:
            ray.shutdown()


def write_manifests(jobs: list[ShardJob], cfg: AugmentConfig) -> dict[str, dict]:
    """Each variant's manifest.jsonl and splits file from its shards' records (every shard finished);
    returns per variant {"written": samples, "dropped": {reason: count}}."""
    counts = {}
    out_dir = Path(jobs[0].inputs.out_dir) if jobs else None
    for variant in cfg.variants:
        lines, dropped = [], {}
        for job in jobs:
            if variant not in cfg.family_variants(job.shard.family):
                continue
            record = json.loads(record_path(out_dir, variant, job.shard).read_text())
            lines += record["samples"]
            for reason, count in record["dropped"].items():
                dropped[reason] = dropped.get(reason, 0) + count
        folder = out_dir / variant
        atomic_write_text(folder / MANIFEST_FILE, "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
        write_splits(folder, {"train": [line["sample"] for line in lines], "val": [], "test": []})
        counts[variant] = {"written": len(lines), "dropped": dropped}
    return counts
