"""Human motion sources: the HumanML3D skeleton and the built-in procedural motion set."""

from motion.procedural import *  # noqa: F401,F403  (the public API, listed once in motion.procedural)
from motion.procedural import __all__  # noqa: F401
