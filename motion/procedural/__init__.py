"""Procedural human motion: a seeded generator of 22-joint HumanML3D-skeleton activity clips.

The embedded default data set, so everything runs on a fresh machine without downloads.
"""

from motion.procedural.dataset import (
    ACTIVITIES,
    MIN_DURATION_S,
    SAFETY,
    MotionClip,
    ProceduralMotionSet,
    generate_clip,
    generate_clip_with_floor,
)

__all__ = [
    "ACTIVITIES",
    "MIN_DURATION_S",
    "SAFETY",
    "MotionClip",
    "ProceduralMotionSet",
    "generate_clip",
    "generate_clip_with_floor",
]
