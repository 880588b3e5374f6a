"""The HOGSA dataset: new poses and views rendered, refined, composited, cropped and written (paper §3.1)."""
