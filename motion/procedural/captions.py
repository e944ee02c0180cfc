"""Short English captions of generated clips, HumanML3D style ("a person walks slowly forward")."""

from __future__ import annotations

from motion.procedural.body import Body


def _person(body: Body) -> str:
    if body.stature_m < 1.62:
        return "a short person"
    if body.stature_m > 1.83:
        return "a tall person"
    return "a person"


def _arms(body: Body) -> str:
    if body.arm_swing > 1.15:
        return ", swinging the arms"
    if body.arm_swing < 0.8:
        return " with little arm swing"
    return ""


def caption(activity: str, body: Body, details: dict) -> str:
    """A one-sentence description of `activity` performed by `body` with generator `details`."""
    who = _person(body)
    speed = details.get("speed", 0.0)
    if activity == "walking":
        pace = "slowly" if speed < 1.05 else ("briskly" if speed > 1.35 else "at a steady pace")
        return f"{who} walks {pace}{_arms(body)}"
    if activity == "running":
        verb = "jogs" if speed < 2.8 else ("runs fast" if speed > 3.4 else "runs")
        return f"{who} {verb} forward"
    if activity == "stairs_up":
        return f"{who} walks up a flight of stairs"
    if activity == "stairs_down":
        return f"{who} walks down a flight of stairs"
    if activity == "sit_down":
        rest = "the armrests" if details.get("style") == "armrests" else "the thighs"
        return f"{who} sits down on a chair and rests the hands on {rest}"
    if activity == "stand_up":
        push = "pushing on the armrests" if details.get("style") == "armrests" else "leaning forward"
        return f"{who} stands up from a chair, {push}"
    if activity == "lie_down":
        return f"{who} slowly sits down on the floor and lies down on the back"
    if activity == "jumping":
        where = "forward" if details.get("forward") else "up and down in place"
        return f"{who} jumps {where} repeatedly"
    before = "while walking" if details.get("walking") else "while standing"
    if activity == "fall_forward":
        cause = "trips" if details.get("walking") else "loses balance"
        return f"{who} {cause} {before} and falls forward onto the hands"
    if activity == "fall_backward":
        cause = "slips" if details.get("walking") else "loses balance"
        return f"{who} {cause} {before} and falls backward onto the back"
    if activity == "fall_sideways":
        return f"{who} loses balance {before} and falls over onto the {details.get('side', 'left')} side"
    raise ValueError(f"activity has no caption template: {activity!r}")
