"""Body-shape variation of a motion set: every clip worn by one of several bodies (seeded per clip).

Without a body model the variation is skeleton scaling (`motion.body_shapes.scale_skeleton`): the
clip's skeleton is taken to be the `reference` body, scaled to the drawn body's height, and the drawn
body's limb girth (`limb_girth_scale`) moves a worn sensor further from the bone. With an SMPL-family
model the same bodies are `motion.body_shapes.fit_betas` shapes instead (see docs/conventions.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from datamodules.motion_dataset import MotionSet, item_seed
from motion.body_shapes import BODY_SHAPES, body_shape, limb_girth_scale, scale_skeleton, skeleton_scale


@dataclass(frozen=True)
class ShapedClip:
    """A clip worn by a drawn body: `joints` `[T, J, 3]` (m) scaled to it, and its limb-girth factor."""

    joints: np.ndarray
    activity: str
    safety: str
    body: str
    girth_scale: float


class BodyShapeVariation:
    """Wraps a motion set; clip i is worn by a body drawn uniformly from `shapes` with seed (seed, i).

    Args:
        motion: the motion set (its skeleton is the `reference` body).
        shapes: names from `motion.body_shapes.BODY_SHAPES` (default: all eight).
        reference: the body the motion's skeleton has.
        seed: seed of the per-clip body draws.
    """

    def __init__(self, motion: MotionSet, *, shapes: Sequence[str] = tuple(BODY_SHAPES), reference: str = "male_average", seed: int = 0):
        if not shapes:
            raise ValueError("shapes must name at least one body shape")
        self.shapes = tuple(body_shape(name) for name in shapes)
        self.reference = body_shape(reference)
        self.motion = motion
        self.activities = motion.activities
        self.seed = seed

    def __len__(self) -> int:
        return len(self.motion)

    def activity_of(self, index: int) -> str:
        activity_of = getattr(self.motion, "activity_of", None)
        return activity_of(index) if activity_of else self.motion[index].activity

    def body_of(self, index: int):
        """The body that wears clip `index`."""
        return self.shapes[np.random.default_rng(item_seed(self.seed, index)).integers(len(self.shapes))]

    def __getitem__(self, index: int) -> ShapedClip:
        clip = self.motion[index]
        if hasattr(clip, "trajectory_positions"):
            raise ValueError(
                f"clip {index} carries its own sensor trajectory (e.g. on the SMPL surface); a body-shape "
                "variation would scale its joints but not the trajectory — set body_shapes to null"
            )
        body = self.body_of(index)
        joints = torch.as_tensor(np.asarray(clip.joints, dtype=np.float32))
        scaled = scale_skeleton(joints, skeleton_scale(body, self.reference.height_m))
        return ShapedClip(scaled.numpy(), clip.activity, clip.safety, body.name, limb_girth_scale(body, self.reference))
