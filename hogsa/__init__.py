"""hogsa: data augmentation for bimanual hand-object interaction with mesh-based 3D Gaussian splatting."""

__version__ = "0.1.0"
