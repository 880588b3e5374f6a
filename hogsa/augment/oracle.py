"""The oracle's renderer: the embedded dataset's own ray tracer for a group's subject.

The embedded dataset's images are rendered by ``hogsa.data.synth.SequenceRenderer`` from the
subject's open hand with its procedural skin (a tone drawn from the study's seed and the subject's
name), the object's texture and one directional light with soft shadows. The same renderer shows any
pose of the group as the dataset would have pictured it: a perfect renderer of that subject and object.
Other datasets have no such renderer; the oracle variant refuses them.
"""

from __future__ import annotations

from hogsa.articulated import ArticulatedObject
from hogsa.config import section
from hogsa.data.synth import EmbeddedConfig, SequenceRenderer, open_hand_assets, subjects
from hogsa.hand import HandModel


def oracle_renderer(params: dict, group: str, hands: dict[str, HandModel], obj: ArticulatedObject) -> SequenceRenderer:
    """The renderer of ``group``'s subject ("sXX/<object>") on the embedded dataset of ``params``."""
    if params["data"]["source"] != "embedded":
        raise ValueError(f"params.yaml: augment.variants has 'oracle', which needs data.source: embedded (its own "
                         f"renderer); data.source is {params['data']['source']!r}")
    if params["hand"]["model_dir"] is not None:
        raise ValueError("params.yaml: augment.variants has 'oracle', which renders the embedded dataset's open hand; "
                         "hand.model_dir must be null")
    cfg = section(params["data"], "embedded", EmbeddedConfig)
    subject_name = group.split("/")[0]
    subject = next((s for s in subjects(cfg, int(params["seed"])) if s.name == subject_name), None)
    if subject is None:
        raise ValueError(f"augment: group {group!r} names a subject the embedded dataset's splits lack")
    _, rig, right_template = open_hand_assets()
    return SequenceRenderer(cfg, hands, subject.tone, obj, rig, right_template)
