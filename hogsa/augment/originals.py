"""The original training images cropped by the augmentation's procedure, for the baselines.

Every present view of every frame of the train split is cropped as the augmented samples are
(``hogsa.data.crops``: the parts' mask's square box plus ``margin``, resized to ``image_size``²), with
its background kept, and written as a one-frame ARCTIC sequence seen by view 0 (as
``hogsa.augment.shards`` writes samples): ``<subject>/<object>_<action><NN>v<view>f<frame>_00``, the
crop's camera as view 0's. A frame whose parts are all out of the view is skipped. The folder's
``manifest.jsonl`` lists every crop with its source and the SHA-256 of its image and mask.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from hogsa.augment.plan import AugmentConfig
from hogsa.augment.shards import hands_means, write_one_frame
from hogsa.data.arctic import parse_name
from hogsa.data.arctic_writer import write_splits
from hogsa.data.crops import box_from_mask, crop_camera, crop_image, crop_labels
from hogsa.data.dataset import DatasetIndex
from hogsa.data.part_masks import part_mask
from hogsa.data.schema import EGO_VIEW, SIDES, SequenceRecord
from hogsa.hand import HandModel
from hogsa.io import atomic_write_text

MANIFEST_FILE = "manifest.jsonl"


def crop_name(seq: SequenceRecord, view: int, frame: int) -> str:
    subject, folder, _ = parse_name(seq.name)
    obj_action, index = folder.rsplit("_", 1)
    return f"{subject}/{obj_action}{index}v{view}f{frame:04d}_00"


def write_original_crops(index: DatasetIndex, hands: dict[str, HandModel], cfg: AugmentConfig, margin: float,
                         out_dir: str | Path) -> int:
    """Crop and write every training image; returns the count."""
    out_dir = Path(out_dir)
    lines = []
    hands_mean = hands_means(hands)
    for name in index.sequences("train"):
        seq = index.read(name)
        obj = index.object(seq.object_name)
        for frame in range(seq.frames):
            for view, camera in enumerate(seq.cameras):
                if camera is None or view == EGO_VIEW:
                    continue
                mask = part_mask(seq, view, frame, hands, obj)
                box = box_from_mask(mask, margin)
                if box is None:
                    continue
                image = torch.tensor(seq.image(view, frame)).permute(2, 0, 1).float() / 255.0
                crop = crop_image(image, box, cfg.image_size)
                labels = crop_labels(torch.tensor(mask), box, cfg.image_size).numpy()
                cam = crop_camera(seq.camera(view, frame), box, cfg.image_size)
                if not all(seq.hand_valid[s][frame] for s in SIDES):
                    continue  # the ARCTIC layout has no per-hand validity
                pixels = (crop.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
                sample = crop_name(seq, view, frame)
                files = write_one_frame(out_dir, sample, seq, cam, {s: seq.hands[s].take(np.array([frame])) for s in SIDES},
                                        seq.object_pose.take(np.array([frame])), pixels, labels, cfg.jpeg_quality,
                                        hands_mean)
                lines.append({"sample": sample, "source": f"{seq.name}:{frame}", "view": view, **files})
    atomic_write_text(out_dir / MANIFEST_FILE, "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    write_splits(out_dir, {"train": [line["sample"] for line in lines], "val": [], "test": []})
    return len(lines)
