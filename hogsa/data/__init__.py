"""Datasets: the shared records (``schema``), and readers/writers of the on-disk layouts (``arctic``,
its object templates ``arctic_objects``, ``h2o``). Every dataset hogsa uses (real ARCTIC, converted
H2O, the embedded synthetic one) is read into the same ``SequenceRecord`` record."""

from hogsa.data.schema import NUM_VIEWS, SIDES, Camera, SequenceRecord

__all__ = ["NUM_VIEWS", "SIDES", "Camera", "SequenceRecord"]
