"""POM: the pose optimisation module (paper §3.3): ContactNet, perturbed initial grasps, bimanual grasp
optimisation, plausibility."""
