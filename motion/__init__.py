"""Human motion sources: the HumanML3D skeleton and the built-in procedural motion set."""

from motion.procedural import (
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
