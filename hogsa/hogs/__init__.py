"""HOGS: hand-object Gaussian splatting (Gaussians bound to hand and object meshes, paper §3.2)."""
