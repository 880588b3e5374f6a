"""Evaluation metrics: image quality (``image``), the score records built from it (``scores``), pose
coverage (``diversity``) and ARCTIC's hand-object metrics (``arctic``)."""

from hogsa.metrics.image import LPIPS, NOT_COMPUTED, psnr, ssim

__all__ = ["LPIPS", "NOT_COMPUTED", "psnr", "ssim"]
