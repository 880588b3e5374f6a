"""Gaussian splatting rasterization: ``rasterize`` has gsplat 1.5's ``rasterization`` signature and runs
gsplat on CUDA tensors and hogsa's own tile rasterizer on CPU tensors (see ``rasterizer.py``)."""

from hogsa.render.rasterizer import RasterizeMode, RenderMode, rasterize

__all__ = ["RasterizeMode", "RenderMode", "rasterize"]
