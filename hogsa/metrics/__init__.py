"""Evaluation metrics: image quality (``image``)."""

from hogsa.metrics.image import LPIPS, NOT_COMPUTED, psnr, ssim

__all__ = ["LPIPS", "NOT_COMPUTED", "psnr", "ssim"]
