"""BVH (Biovision Hierarchy) motion files: a strict reader and batched forward kinematics (numpy).

Format (public, Biovision): a HIERARCHY of ROOT / JOINT / End Site blocks, each with an OFFSET from its
parent and (joints only) CHANNELS — any number of `{X,Y,Z}position` / `{X,Y,Z}rotation` in any order —
then MOTION with `Frames: N`, `Frame Time: dt` and N lines holding one value per channel, in hierarchy
order. Rotations are Euler angles in degrees composed in the listed order, R = R_first · R_second ·
R_third (each an elementary rotation about its own axis); a joint's world rotation is its parent's
world rotation times its local one, and its world position is the parent's position plus the parent's
world rotation applied to its local translation.

Local translation: the OFFSET, except along axes that have a position channel, where the channel value
is used instead. Files with position channels below the root (Bandai-Namco's, for instance) store the
full local translation in them — their per-frame values equal the OFFSET of rigid bones — so adding
the two would double the bone lengths.

End sites become joints named `<parent>_end` with no channels, so they follow their parent's rotation.
Lines may end in LF, CRLF or a mix of both (the cgspeed CMU conversion mixes them). `format_bvh` writes
the format back (tests build their fixture files with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

_AXES = {"X": 0, "Y": 1, "Z": 2}
CHANNEL_NAMES = tuple(f"{axis}{kind}" for kind in ("position", "rotation") for axis in "XYZ")
"""Channel names the reader accepts (case-sensitive)."""


@dataclass(frozen=True, eq=False)
class BVHJoint:
    """One joint of the hierarchy.

    Attributes:
        name: joint name (end sites: `<parent>_end`).
        parent: index of the parent joint, -1 for the root.
        offset: `[3]` translation from the parent in the rest pose (file units × scale).
        channels: channel names in file order (empty for end sites).
        end_site: True for an End Site.
    """

    name: str
    parent: int
    offset: np.ndarray
    channels: tuple[str, ...]
    end_site: bool = False


@dataclass(frozen=True, eq=False)
class BVHMotion:
    """A parsed BVH file.

    Attributes:
        path: the file read.
        joints: the hierarchy in file order (parents before children), end sites included.
        frame_time_s: seconds between frames.
        values: `[T, C]` channel values in file order; positions scaled, rotations in degrees.
    """

    path: Path
    joints: tuple[BVHJoint, ...]
    frame_time_s: float
    values: np.ndarray

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(joint.name for joint in self.joints)

    @property
    def parents(self) -> tuple[int, ...]:
        return tuple(joint.parent for joint in self.joints)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time_s

    @property
    def num_frames(self) -> int:
        return int(self.values.shape[0])

    @property
    def duration_s(self) -> float:
        """Length of the recording: frames × frame time (s)."""
        return self.num_frames * self.frame_time_s

    def local_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame local translations `[T, J, 3]` and local rotations `[T, J, 3, 3]` of every joint."""
        frames = self.num_frames
        translations = np.broadcast_to(np.stack([joint.offset for joint in self.joints]), (frames, len(self.joints), 3)).copy()
        rotations = np.broadcast_to(np.eye(3), (frames, len(self.joints), 3, 3)).copy()
        column = 0
        for index, joint in enumerate(self.joints):
            for name in joint.channels:
                axis, value = _AXES[name[0]], self.values[:, column]
                column += 1
                if name.endswith("position"):
                    translations[:, index, axis] = value
                else:
                    rotations[:, index] = rotations[:, index] @ elementary_rotation(axis, np.deg2rad(value))
        return translations, rotations

    def forward_kinematics(self) -> tuple[np.ndarray, np.ndarray]:
        """World positions `[T, J, 3]` and world rotations `[T, J, 3, 3]` of every joint (see `forward_kinematics`)."""
        return forward_kinematics(self.parents, *self.local_transforms())


def forward_kinematics(parents: Sequence[int], translations: np.ndarray, rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World positions and rotations from local ones.

    Args:
        parents: `[J]` parent index of every joint (-1 for the root), parents before children.
        translations: `[T, J, 3]` local translations (from the parent, in the parent's frame).
        rotations: `[T, J, 3, 3]` local rotations (joint frame → parent frame, column vectors).
    Returns:
        positions `[T, J, 3]` and world rotations `[T, J, 3, 3]` (joint frame → world frame).
    """
    positions = np.empty_like(translations)
    world = np.empty_like(rotations)
    for index, parent in enumerate(parents):
        if parent < 0:
            positions[:, index] = translations[:, index]
            world[:, index] = rotations[:, index]
        else:
            positions[:, index] = positions[:, parent] + np.einsum("tij,tj->ti", world[:, parent], translations[:, index])
            world[:, index] = world[:, parent] @ rotations[:, index]
    return positions, world


def elementary_rotation(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    """Right-handed rotation matrices `[..., 3, 3]` by `angle_rad` `[...]` about coordinate axis 0, 1 or 2."""
    cos, sin = np.cos(angle_rad), np.sin(angle_rad)
    matrix = np.zeros(np.shape(angle_rad) + (3, 3))
    first, second = [(1, 2), (2, 0), (0, 1)][axis]
    matrix[..., axis, axis] = 1.0
    matrix[..., first, first] = cos
    matrix[..., second, second] = cos
    matrix[..., first, second] = -sin
    matrix[..., second, first] = sin
    return matrix


class _Lines:
    """The file's non-empty lines as (1-based line number, tokens), with errors that name file and line."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.items = [(number, line.split()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
        self.position = 0

    def error(self, message: str, line: int | None = None) -> ValueError:
        where = f"{self.path}" if line is None else f"{self.path}, line {line}"
        return ValueError(f"{where}: {message}")

    def next(self, expected: str) -> tuple[int, list[str]]:
        if self.position >= len(self.items):
            raise self.error(f"unexpected end of file, expected {expected}")
        item = self.items[self.position]
        self.position += 1
        return item

    def peek_word(self) -> str | None:
        return self.items[self.position][1][0] if self.position < len(self.items) else None


def _floats(lines: _Lines, line: int, tokens: list[str], what: str) -> np.ndarray:
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        raise lines.error(f"{what} must be numbers, got {' '.join(tokens)!r}", line) from None


def _parse_joint(lines: _Lines, joints: list[BVHJoint], name: str, parent: int, end_site: bool, scale: float) -> None:
    line, tokens = lines.next("'{'")
    if tokens != ["{"]:
        raise lines.error(f"expected '{{' after {name!r}, got {' '.join(tokens)!r}", line)
    line, tokens = lines.next("OFFSET")
    if tokens[0] != "OFFSET" or len(tokens) != 4:
        raise lines.error(f"expected 'OFFSET x y z' for {name!r}, got {' '.join(tokens)!r}", line)
    offset = _floats(lines, line, tokens[1:], "OFFSET values") * scale
    channels: tuple[str, ...] = ()
    if not end_site:
        line, tokens = lines.next("CHANNELS")
        if tokens[0] != "CHANNELS" or len(tokens) < 2 or not tokens[1].isdigit():
            raise lines.error(f"expected 'CHANNELS n name…' for {name!r}, got {' '.join(tokens)!r}", line)
        channels = tuple(tokens[2:])
        if len(channels) != int(tokens[1]):
            raise lines.error(f"CHANNELS of {name!r} announces {tokens[1]} channels but lists {len(channels)}", line)
        unknown = [channel for channel in channels if channel not in CHANNEL_NAMES]
        if unknown:
            raise lines.error(f"unknown channel name(s) {unknown} for {name!r}; known: {CHANNEL_NAMES}", line)
    index = len(joints)
    joints.append(BVHJoint(name=name, parent=parent, offset=offset, channels=channels, end_site=end_site))
    while True:
        line, tokens = lines.next("'}'")
        if tokens == ["}"]:
            return
        if end_site:
            raise lines.error(f"an End Site holds only an OFFSET, got {' '.join(tokens)!r}", line)
        if tokens[0] == "JOINT" and len(tokens) == 2:
            _parse_joint(lines, joints, tokens[1], index, False, scale)
        elif tokens == ["End", "Site"]:
            _parse_joint(lines, joints, f"{name}_end", index, True, scale)
        else:
            raise lines.error(f"expected JOINT, End Site or '}}' inside {name!r}, got {' '.join(tokens)!r}", line)


def _parse_header_number(lines: _Lines, label: str) -> tuple[int, str]:
    line, tokens = lines.next(label)
    words = label.split()
    if tokens[: len(words)] != words or len(tokens) != len(words) + 1:
        raise lines.error(f"expected '{label} <number>', got {' '.join(tokens)!r}", line)
    return line, tokens[-1]


def read_bvh(path: str | Path, *, scale: float = 1.0) -> BVHMotion:
    """Parse the BVH file at `path`.

    Args:
        path: the .bvh file.
        scale: metres per file unit, applied to OFFSETs and position channels (1 keeps file units;
            0.01 for centimetres; 0.0254 / 0.45 ≈ 0.056444 for the CMU ASF length unit the cgspeed
            conversion keeps).
    Raises:
        ValueError naming the file (and line) for any malformed hierarchy or motion section.
    """
    path = Path(path)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    try:
        text = path.read_text(encoding="ascii", errors="strict")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read BVH file ({error})") from None
    lines = _Lines(path, text)
    line, tokens = lines.next("HIERARCHY")
    if tokens != ["HIERARCHY"]:
        raise lines.error(f"a BVH file starts with HIERARCHY, got {' '.join(tokens)!r}", line)
    line, tokens = lines.next("ROOT")
    if tokens[0] != "ROOT" or len(tokens) != 2:
        raise lines.error(f"expected 'ROOT name', got {' '.join(tokens)!r}", line)
    joints: list[BVHJoint] = []
    _parse_joint(lines, joints, tokens[1], -1, False, scale)
    line, tokens = lines.next("MOTION")
    if tokens != ["MOTION"]:
        raise lines.error(f"expected MOTION after the hierarchy (one ROOT per file), got {' '.join(tokens)!r}", line)
    line, count = _parse_header_number(lines, "Frames:")
    if not count.isdigit():
        raise lines.error(f"Frames must be a non-negative integer, got {count!r}", line)
    frames = int(count)
    line, frame_time = _parse_header_number(lines, "Frame Time:")
    frame_time_s = float(_floats(lines, line, [frame_time], "Frame Time")[0])
    if not (np.isfinite(frame_time_s) and frame_time_s > 0):
        raise lines.error(f"Frame Time must be a positive number of seconds, got {frame_time}", line)
    rows = lines.items[lines.position :]
    if len(rows) != frames:
        problem = "truncated" if len(rows) < frames else "too long"
        raise lines.error(f"motion section {problem}: Frames says {frames}, found {len(rows)} motion lines")
    channel_count = sum(len(joint.channels) for joint in joints)
    for line, tokens in rows:
        if len(tokens) != channel_count:
            raise lines.error(f"motion line has {len(tokens)} values, the hierarchy has {channel_count} channels", line)
    try:
        values = np.array([token for _, tokens in rows for token in tokens], dtype=np.float64).reshape(frames, channel_count)
    except ValueError:
        for line, tokens in rows:  # find the line to name
            _floats(lines, line, tokens, "motion values")
        raise
    if not np.isfinite(values).all():
        raise lines.error("motion section holds non-finite values (nan or inf)")
    is_position = np.array([channel.endswith("position") for joint in joints for channel in joint.channels], dtype=bool)
    values[:, is_position] *= scale
    return BVHMotion(path=path, joints=tuple(joints), frame_time_s=frame_time_s, values=values)


def format_bvh(joints: Sequence[BVHJoint], frame_time_s: float, values: np.ndarray) -> str:
    """BVH text of a hierarchy and its `[T, C]` channel values.

    `joints` may come in any parents-first order (their columns in `values` follow it); the file lists
    them depth-first, as BVH requires, so `read_bvh` returns them in that order. Numbers are written in
    their shortest round-trip form, so the values read back are the same.
    """
    values = np.asarray(values, dtype=np.float64)
    channel_count = sum(len(joint.channels) for joint in joints)
    if values.ndim != 2 or values.shape[1] != channel_count:
        raise ValueError(f"values must have shape [T, {channel_count}] (one column per channel), got {values.shape}")
    children: dict[int, list[int]] = {index: [] for index in range(-1, len(joints))}
    for index, joint in enumerate(joints):
        children[joint.parent].append(index)
    if children[-1] != [0]:
        raise ValueError(f"joints must hold exactly one root, first; roots found at {children[-1]}")
    lines = ["HIERARCHY"]
    first_column = np.cumsum([0] + [len(joint.channels) for joint in joints])
    columns: list[int] = []  # input columns in file order

    def block(index: int, depth: int) -> None:
        joint, indent = joints[index], "  " * depth
        columns.extend(range(first_column[index], first_column[index + 1]))
        head = "ROOT " + joint.name if index == 0 else ("End Site" if joint.end_site else "JOINT " + joint.name)
        offset = " ".join(map(repr, np.asarray(joint.offset, dtype=float).tolist()))
        lines.extend((indent + head, indent + "{", f"{indent}  OFFSET {offset}"))
        if not joint.end_site:
            lines.append(f"{indent}  CHANNELS {len(joint.channels)} {' '.join(joint.channels)}".rstrip())
        for child in children[index]:
            block(child, depth + 1)
        lines.append(indent + "}")

    block(0, 0)
    lines += ["MOTION", f"Frames: {len(values)}", f"Frame Time: {frame_time_s!r}"]
    lines += [" ".join(map(repr, row)) for row in values[:, columns].tolist()]
    return "\n".join(lines) + "\n"
