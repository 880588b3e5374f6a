"""Evaluation metrics: image quality (``image``) and the score records built from it (``scores``)."""

from hogsa.metrics.image import LPIPS, NOT_COMPUTED, psnr, ssim

__all__ = ["LPIPS", "NOT_COMPUTED", "psnr", "ssim"]
