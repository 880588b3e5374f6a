"""The ARCTIC baselines trained with and without the augmented data: ArcticNet-SF and InterField-SF."""
