"""A teacher model writes instruction–response pairs about clips: any OpenAI-compatible chat endpoint with vision.

For every input example (the JSONL schema of `schema.py`, e.g. the toy set's templated examples, whose texts
are ignored) the teacher is shown (a) up to `max_keyframes` keyframes of the clip's video (image files of a
frame folder), (b) a plot of its IMU (rendered here to PNG) and (c) its ground-truth activity and safety,
and asked for one instruction of the example's prompt type and its answer, as JSON. A comparative example
shows both clips. The answer is written as a new example with the same id and clip references.

The request is `POST {base_url}/chat/completions` with images as base64 data URLs; `base_url`, the model and
the key come from the config or the environment (`OPENAI_BASE_URL`, `OPENAI_API_KEY`). The key is sent only
in the Authorization header and redacted from every message. Requests pass a token bucket (requests per
minute); 429, 5xx and timeouts are retried with exponential backoff (a Retry-After header wins); other
errors fail the item (401/403/404, which no item can cure, stop the run). The output JSONL is append-only,
one line per finished item, so an interrupted run resumes by skipping the ids already there. The report
counts items and tokens, and prices them (`usage` tokens × price per 1000 tokens).
"""

from __future__ import annotations

import base64
import email.utils
import io
import json
import logging
import math
import numbers
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from datamodules.instructions.schema import (
    Clip,
    InstructionExample,
    RealIMU,
    VirtualIMU,
    append_jsonl,
    positive_number,
    read_jsonl,
)
from motion.render import sample_frame_indices

log = logging.getLogger(__name__)

ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_API_KEY = "OPENAI_API_KEY"
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
FATAL_STATUSES = (401, 403, 404)
"""HTTP statuses that no other item would escape (bad key, no access, wrong URL or model): they stop the run."""


class TeacherError(RuntimeError):
    """The run cannot go on (a fatal HTTP status)."""


class RetriesExhausted(RuntimeError):
    """An item's request kept failing with retryable errors, or failed with a non-retryable one."""


class MalformedAnswer(ValueError):
    """The endpoint answered, but not with a usable instruction–response pair."""


def _non_negative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class TeacherConfig:
    """Endpoint, model, prices and pacing of a teacher run.

    Attributes:
        base_url: the API root, e.g. "https://api.openai.com/v1" (requests go to `{base_url}/chat/completions`).
        model: the model name sent in every request.
        api_key: sent as "Authorization: Bearer …" (none when None); never in repr or messages.
        prompt_price_per_1k, completion_price_per_1k: price of 1000 prompt / completion tokens (any currency).
        requests_per_minute, burst: the token bucket (sustained rate, and requests allowed back to back).
        max_retries: retries of one request after a 429, a 5xx or a timeout.
        backoff_s, max_backoff_s: the k-th retry (k = 0, 1, …) waits min(max_backoff_s, backoff_s · 2^k) s
            unless the response says Retry-After.
        timeout_s: socket timeout of one request (s).
        temperature, max_tokens: sampling settings of the answer.
        image_detail: the OpenAI image "detail" ("low", "high" or "auto"); "low" is 85 tokens an image.
        max_keyframes: keyframes shown per clip, spread evenly over its frame folder.
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    prompt_price_per_1k: float = 0.0
    completion_price_per_1k: float = 0.0
    requests_per_minute: float = 60.0
    burst: int = 1
    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    timeout_s: float = 60.0
    temperature: float = 0.2
    max_tokens: int = 512
    image_detail: str = "low"
    max_keyframes: int = 4

    def __post_init__(self):
        if not isinstance(self.base_url, str) or not re.match(r"https?://[^/]", self.base_url):
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a non-empty string, got {self.model!r}")
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key):
            raise ValueError("api_key must be a non-empty string or None")
        for name in ("prompt_price_per_1k", "completion_price_per_1k", "backoff_s", "max_backoff_s", "temperature"):
            object.__setattr__(self, name, _non_negative(name, getattr(self, name)))
        for name in ("requests_per_minute", "timeout_s"):
            object.__setattr__(self, name, positive_number(name, getattr(self, name)))
        for name, minimum in (("burst", 1), ("max_retries", 0), ("max_tokens", 1), ("max_keyframes", 1)):
            object.__setattr__(self, name, _count(name, getattr(self, name), minimum))
        if self.image_detail not in ("low", "high", "auto"):
            raise ValueError(f"image_detail must be 'low', 'high' or 'auto', got {self.image_detail!r}")

    @classmethod
    def from_env(cls, *, model: str, base_url: str | None = None, **settings) -> "TeacherConfig":
        """The config with `base_url` (else $OPENAI_BASE_URL) and the key from $OPENAI_API_KEY (None when unset)."""
        base_url = base_url or os.environ.get(ENV_BASE_URL)
        if not base_url:
            raise ValueError(f"base_url is not given and ${ENV_BASE_URL} is not set")
        return cls(base_url=base_url, model=model, api_key=os.environ.get(ENV_API_KEY) or None, **settings)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens / 1000 * self.prompt_price_per_1k + completion_tokens / 1000 * self.completion_price_per_1k

    def redact(self, text: str) -> str:
        """`text` with the API key replaced by "***" (error bodies may echo it)."""
        return text if self.api_key is None else text.replace(self.api_key, "***")


class TokenBucket:
    """Paces calls: `burst` tokens at most, refilled at `per_minute` / 60 per second; `acquire` takes one,
    sleeping until it is there. `clock` (s) and `sleep` are injectable, so tests run on a fake clock."""

    def __init__(self, *, per_minute: float, burst: int = 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate_per_s = positive_number("per_minute", per_minute) / 60.0
        self.burst = _count("burst", burst, 1)
        self.clock, self.sleep = clock, sleep
        self._tokens, self._last = float(self.burst), clock()

    def acquire(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return
        wait = (1.0 - self._tokens) / self.rate_per_s
        self.sleep(wait)
        # The token is complete at now + wait; counting from there (not from a re-read clock, whose rounding
        # could leave it a hair short forever) charges an early wake-up to the next call and credits a late one.
        self._tokens, self._last = 0.0, now + wait


@dataclass(frozen=True)
class ChatReply:
    content: str
    prompt_tokens: int
    completion_tokens: int


def _retry_after_s(value: str | None, now_s: float) -> float | None:
    """Seconds of a Retry-After header (delta seconds or an HTTP date), None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now_s)
    except (TypeError, ValueError):
        return None


class ChatClient:
    """`POST {base_url}/chat/completions` with pacing and retries; counts `requests` and `retries` made."""

    def __init__(self, config: TeacherConfig, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, wall_clock: Callable[[], float] = time.time):
        self.config, self.sleep, self.wall_clock = config, sleep, wall_clock
        self.bucket = TokenBucket(per_minute=config.requests_per_minute, burst=config.burst, clock=clock, sleep=sleep)
        self.requests = self.retries = 0

    def _post(self, payload: bytes) -> bytes:
        headers = {"Content-Type": "application/json"}
        if self.config.api_key is not None:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        request = urllib.request.Request(f"{self.config.base_url}/chat/completions", data=payload, headers=headers,
                                         method="POST")
        with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
            return response.read()

    def complete(self, messages: list[dict]) -> ChatReply:
        """The first choice's message content and the usage tokens of one chat completion.

        Raises:
            RetriesExhausted: still 429 / 5xx / timeouts after `max_retries` retries, or another HTTP error.
            TeacherError: a status of `FATAL_STATUSES`.
            MalformedAnswer: a 200 reply that is not a chat completion.
        """
        config = self.config
        payload = json.dumps({"model": config.model, "messages": messages, "temperature": config.temperature,
                              "max_tokens": config.max_tokens}).encode()
        for attempt in range(config.max_retries + 1):
            self.bucket.acquire()
            self.requests += 1
            retry_after = None
            try:
                body = self._post(payload)
                break
            except urllib.error.HTTPError as error:
                detail = config.redact(error.read()[:300].decode("utf-8", "replace"))
                problem = f"HTTP {error.code} {error.reason}: {detail}"
                if error.code in FATAL_STATUSES:
                    raise TeacherError(f"{config.base_url}/chat/completions answered {problem}") from None
                if error.code != 429 and error.code < 500:
                    raise RetriesExhausted(problem) from None
                retry_after = _retry_after_s(error.headers.get("Retry-After"), self.wall_clock())
            except (TimeoutError, urllib.error.URLError, ConnectionError) as error:  # URLError: refused, reset, DNS
                problem = config.redact(f"{type(error).__name__}: {error}")
            if attempt == config.max_retries:
                raise RetriesExhausted(f"{problem} (after {config.max_retries} retries)")
            wait = min(config.max_backoff_s, config.backoff_s * 2**attempt) if retry_after is None else retry_after
            log.info("retrying in %.2f s after %s", wait, problem)
            self.retries += 1
            self.sleep(wait)
        try:
            reply = json.loads(body)
            content = reply["choices"][0]["message"]["content"]
            usage = reply.get("usage") or {}
            prompt_tokens, completion_tokens = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
            raise MalformedAnswer(f"the reply is not a chat completion ({type(error).__name__}: {error})") from None
        if not isinstance(content, str):
            raise MalformedAnswer(f"the reply's message content is not text: {content!r}")
        return ChatReply(content=content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


_FENCED = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)


def parse_answer(content: str) -> tuple[str, str]:
    """(instruction, response) of a model answer: a JSON object with both as non-empty strings, bare or in a
    ``` / ```json code fence (text around the fence is ignored). Raises MalformedAnswer otherwise."""
    fenced = _FENCED.search(content)
    text = (fenced.group(1) if fenced else content).strip()
    try:
        data = json.loads(text)
    except ValueError as error:
        raise MalformedAnswer(f"the answer is not JSON ({error}): {content[:120]!r}") from None
    if not isinstance(data, dict):
        raise MalformedAnswer(f"the answer is not a JSON object: {content[:120]!r}")
    texts = tuple(data.get(key) for key in ("instruction", "response"))
    if not all(isinstance(value, str) and value.strip() for value in texts):
        raise MalformedAnswer(f"the answer needs non-empty strings 'instruction' and 'response', got {data!r}"[:300])
    return texts[0].strip(), texts[1].strip()


def imu_plot_png(imu: np.ndarray, rate_hz: float, *, title: str = "") -> bytes:
    """PNG bytes of an IMU `[T, 6]` (acc m/s², gyro rad/s) sampled at `rate_hz`: acceleration above, angular rate
    below, x/y/z curves against time (s). ~480 × 320 px (Agg canvas, no pyplot)."""
    imu = np.asarray(imu, dtype=np.float64)
    if imu.ndim != 2 or imu.shape[0] < 2 or imu.shape[1] != 6 or not np.isfinite(imu).all():
        raise ValueError(f"imu must be a finite [T ≥ 2, 6] array, got shape {imu.shape}")
    time_s = np.arange(imu.shape[0]) / positive_number("rate_hz", rate_hz)
    figure = Figure(figsize=(6.0, 4.0), dpi=80)
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 1, sharex=True)
    for row, (name, unit) in enumerate((("acceleration", "m/s²"), ("angular rate", "rad/s"))):
        for column, (axis, colour) in enumerate(zip("xyz", ("tab:red", "tab:green", "tab:blue"))):
            axes[row].plot(time_s, imu[:, 3 * row + column], color=colour, linewidth=1.0, label=axis)
        axes[row].set_ylabel(f"{name} [{unit}]", fontsize=8)
        axes[row].grid(alpha=0.3)
        axes[row].legend(loc="upper right", fontsize=7, ncols=3)
    axes[1].set_xlabel("time [s]")
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def data_url(image: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"


def _resolve(path: str, root: Path) -> Path:
    return Path(path) if Path(path).is_absolute() else root / path


def keyframes(video: str | None, root: str | Path, max_keyframes: int) -> tuple[Path, ...]:
    """Image files shown for a clip's `video` reference (relative to `root`): up to `max_keyframes` images of a
    frame folder (sorted by name, spread evenly), a single image file as it is, nothing for None."""
    if video is None:
        return ()
    path = _resolve(video, Path(root))
    if path.is_dir():
        images = sorted(child for child in path.iterdir() if child.suffix.lower() in IMAGE_TYPES)
        if not images:
            raise ValueError(f"video folder {path} holds no {sorted(IMAGE_TYPES)} images")
        picked = sample_frame_indices(len(images), 1.0, target_frames=max_keyframes, target_fps=1.0)
        return tuple(images[i] for i in picked)
    if path.suffix.lower() in IMAGE_TYPES and path.is_file():
        return (path,)
    raise ValueError(f"video {path} is neither a frame folder nor an image file (decode videos to frame folders)")


def load_imu(reference: RealIMU | VirtualIMU, root: str | Path,
             virtual_imu: Callable[[VirtualIMU], np.ndarray] | None = None) -> tuple[np.ndarray, float]:
    """(IMU `[T, 6]` float64, rate Hz) of a reference: a real .npy / .csv file (relative to `root`), or a
    virtual-IMU spec simulated by `virtual_imu` (e.g. `toy_set.virtual_imu`)."""
    if isinstance(reference, VirtualIMU):
        if virtual_imu is None:
            raise ValueError(f"imu is a virtual spec ({reference.motion_source} {reference.clip_id}) and no "
                             f"virtual_imu simulator was given")
        imu, rate_hz = np.asarray(virtual_imu(reference), dtype=np.float64), reference.target_hz
    else:
        path = _resolve(reference.path, Path(root))
        try:
            imu = np.load(path) if reference.format == "npy" else np.loadtxt(path, delimiter=",", ndmin=2)
        except (OSError, ValueError) as error:
            raise ValueError(f"imu.path {path}: cannot read a {reference.format} IMU ({error})") from None
        imu, rate_hz = np.asarray(imu, dtype=np.float64), reference.rate_hz
    if imu.ndim != 2 or imu.shape[0] < 2 or imu.shape[1] != 6 or not np.isfinite(imu).all():
        raise ValueError(f"imu of {reference}: expected a finite [T ≥ 2, 6] array, got shape {imu.shape}")
    return imu, rate_hz


SYSTEM_PROMPT = (
    "You write training data for an assistant that understands human activity from video and a wrist-worn IMU "
    "(a smartwatch: 3-axis accelerometer in m/s², including gravity, and 3-axis gyroscope in rad/s). You are shown "
    "keyframes of a clip in time order, a plot of its wrist IMU, and its ground-truth labels. Write one instruction "
    "a user could ask about the clip and the ideal response. Ground the response in what the frames and the IMU "
    "plot show, agree with the labels, and say plainly when an activity is unsafe. Do not mention the labels, "
    "the plot or these rules as such. Answer with only a JSON object: "
    '{"instruction": "...", "response": "..."}'
)
TASKS = {
    "description": "The instruction asks what happens in the clip; the response describes the activity and how "
                   "the movement shows in the wrist signal.",
    "causal_counterfactual": "The instruction asks why the movement or the wrist signal looks as it does, or what "
                             "would change if something had been different (a counterfactual); the response "
                             "explains the cause and the alternative, including the safety consequences.",
    "comparative": "Two clips are given, A then B. The instruction asks to compare them; the response contrasts "
                   "their activities, their wrist signals and their safety.",
}


@dataclass(frozen=True)
class ClipMedia:
    """What the teacher sees of one clip: its references and labels, keyframe files, IMU `[T, 6]` at `imu_hz`."""

    clip: Clip
    keyframes: tuple[Path, ...]
    imu: np.ndarray
    imu_hz: float


def clip_media(clip: Clip, root: str | Path, config: TeacherConfig,
               virtual_imu: Callable[[VirtualIMU], np.ndarray] | None = None) -> ClipMedia:
    imu, rate_hz = load_imu(clip.imu, root, virtual_imu)
    return ClipMedia(clip=clip, keyframes=keyframes(clip.video, root, config.max_keyframes), imu=imu, imu_hz=rate_hz)


def build_messages(prompt_type: str, clips: list[ClipMedia], config: TeacherConfig) -> list[dict]:
    """The chat messages asking for one `prompt_type` pair about `clips` (two for "comparative")."""
    names = ["the clip"] if len(clips) == 1 else [f"clip {name}" for name in "AB"]
    labels = "; ".join(f"{name}: activity {media.clip.activity!r}, {media.clip.safety}"
                       for name, media in zip(names, clips))
    parts: list[dict] = [{"type": "text", "text": f"{TASKS[prompt_type]}\nGround truth — {labels}."}]

    def image(content: bytes, mime: str) -> dict:
        return {"type": "image_url", "image_url": {"url": data_url(content, mime), "detail": config.image_detail}}

    for name, media in zip(names, clips):
        if media.keyframes:
            parts.append({"type": "text", "text": f"Keyframes of {name}, in time order:"})
            parts += [image(path.read_bytes(), IMAGE_TYPES[path.suffix.lower()]) for path in media.keyframes]
        parts.append({"type": "text", "text": f"Wrist IMU of {name}:"})
        parts.append(image(imu_plot_png(media.imu, media.imu_hz, title=f"wrist IMU, {name}"), "image/png"))
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": parts}]


@dataclass(frozen=True)
class TeacherReport:
    """Counts of a run: items written, skipped (already in the output), malformed (an unusable answer), failed
    (no answer), HTTP requests and retries, usage tokens and their cost."""

    written: int
    skipped: int
    malformed: int
    failed: int
    requests: int
    retries: int
    prompt_tokens: int
    completion_tokens: int
    cost: float

    def summary(self) -> str:
        return (f"written {self.written}, skipped {self.skipped}, malformed {self.malformed}, failed {self.failed}; "
                f"{self.requests} requests ({self.retries} retries), {self.prompt_tokens} prompt + "
                f"{self.completion_tokens} completion tokens, cost {self.cost:.4f}")


def run_teacher(examples: Iterable[InstructionExample], out: str | Path, config: TeacherConfig, *,
                root: str | Path = ".", virtual_imu: Callable[[VirtualIMU], np.ndarray] | None = None,
                limit: int | None = None, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep, wall_clock: Callable[[], float] = time.time) -> TeacherReport:
    """Asks the teacher about every example whose id is not yet in `out` and appends its answers there.

    Args:
        examples: the items (`schema.InstructionExample`; their texts are ignored).
        out: the output JSONL (created if missing; its existing lines are kept and their ids skipped).
        root: the folder relative video / IMU paths start from (the input JSONL's folder).
        virtual_imu: simulates `VirtualIMU` specs to `[T, 6]` (needed when an example has one).
        limit: ask about at most this many items in this run (None: all).
        clock, sleep, wall_clock: time sources (monotonic s, sleep s, Unix time s), injectable for tests.
    Returns:
        the run's counts; the output holds one line per written item, with source "teacher:<model>".
    Raises:
        ValueError: an item's keyframes or IMU cannot be read (before anything about it is sent).
        TeacherError: the endpoint answered a status of `FATAL_STATUSES`.
    """
    if limit is not None:
        _count("limit", limit, 1)
    out = Path(out)
    done = {example.id for example in read_jsonl(out)} if out.exists() else set()
    client = ChatClient(config, clock=clock, sleep=sleep, wall_clock=wall_clock)
    counts = dict(written=0, skipped=0, malformed=0, failed=0, prompt_tokens=0, completion_tokens=0)
    asked = 0
    for example in examples:
        if example.id in done:
            counts["skipped"] += 1
            continue
        if limit is not None and asked >= limit:
            break
        asked += 1
        clips = [example.clip] + ([example.compared_with] if example.compared_with is not None else [])
        messages = build_messages(example.prompt_type, [clip_media(clip, root, config, virtual_imu) for clip in clips],
                                  config)
        try:
            reply = client.complete(messages)
        except RetriesExhausted as error:
            counts["failed"] += 1
            log.warning("%s: no answer: %s", example.id, error)
            continue
        except MalformedAnswer as error:
            counts["malformed"] += 1
            log.warning("%s: %s", example.id, error)
            continue
        counts["prompt_tokens"] += reply.prompt_tokens
        counts["completion_tokens"] += reply.completion_tokens
        try:
            instruction, response = parse_answer(reply.content)
        except MalformedAnswer as error:
            counts["malformed"] += 1
            log.warning("%s: %s", example.id, error)
            continue
        append_jsonl(out, [replace(example, source=f"teacher:{config.model}", instruction=instruction,
                                   response=response)])
        done.add(example.id)
        counts["written"] += 1
        log.info("%s written (%d in this run)", example.id, counts["written"])
    return TeacherReport(**counts, requests=client.requests, retries=client.retries,
                         cost=config.cost(counts["prompt_tokens"], counts["completion_tokens"]))
