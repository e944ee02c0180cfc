"""The teacher against a local mock of an OpenAI-compatible endpoint (http.server in a thread), on a fake clock."""

import base64
import email.utils
import importlib.util
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imsave

from datamodules.instructions.schema import Clip, InstructionExample, RealIMU, append_jsonl, read_jsonl
from datamodules.instructions.teacher import (
    MalformedAnswer,
    TeacherConfig,
    TeacherError,
    TokenBucket,
    keyframes,
    parse_answer,
    run_teacher,
)

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-0123456789"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class FakeClock:
    """Monotonic time that only `sleep` advances; records the sleeps."""

    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def completion(content: str, prompt_tokens: int = 1000, completion_tokens: int = 200) -> tuple:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}}
    return 200, {}, json.dumps(body).encode()


ANSWER = json.dumps({"instruction": "What happens?", "response": "The person walks."})


class MockEndpoint:
    """Serves the scripted replies (status, headers, body[, delay_s]) in order and records every request."""

    def __init__(self, clock: FakeClock, replies: list):
        self.replies, self.requests = list(replies), []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append({"path": self.path, "headers": dict(self.headers), "payload": payload,
                                          "time": clock()})
                status, headers, body, *delay = endpoint.replies.pop(0)
                if delay:
                    time.sleep(delay[0])  # longer than the client's timeout: it has gone when we answer
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def serve(clock):
    servers = []

    def start(replies):
        servers.append(MockEndpoint(clock, replies))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """A folder with a 2-frame folder and a [40, 6] .npy IMU; paths in examples are relative to it."""
    root = tmp_path_factory.mktemp("media")
    (root / "frames").mkdir()
    for k in range(2):
        imsave(root / "frames" / f"{k:02d}.png", np.full((16, 16, 3), 40 * k, dtype=np.uint8))
    np.save(root / "imu.npy", np.sin(np.arange(240.0)).reshape(40, 6))
    return root


def example(index: int, prompt_type: str = "description", activity: str = "walking") -> InstructionExample:
    clip = Clip(activity=activity, safety="unsafe" if activity == "falling" else "safe",
                imu=RealIMU(path="imu.npy", format="npy", rate_hz=50.0), video="frames")
    return InstructionExample(id=f"item-{index}", source="test", prompt_type=prompt_type, instruction="template",
                              response="template", clip=clip,
                              compared_with=clip if prompt_type == "comparative" else None)


def config(url: str, **settings) -> TeacherConfig:
    return TeacherConfig(base_url=url, model="vision-model", api_key=KEY, **settings)


def run(examples, out, cfg, clock, media, **kwargs):
    return run_teacher(examples, out, cfg, root=media, clock=clock, sleep=clock.sleep, **kwargs)


def images_of(request) -> list[bytes]:
    parts = request["payload"]["messages"][1]["content"]
    urls = [part["image_url"]["url"] for part in parts if part["type"] == "image_url"]
    assert all(url.startswith("data:image/png;base64,") for url in urls)
    return [base64.b64decode(url.split(",", 1)[1]) for url in urls]


def test_success_payload_output_and_cost(tmp_path, serve, clock, media):
    fenced = 'Here you go:\n```json\n{"instruction": "Compare them.", "response": "Both walk."}\n```'
    server = serve([completion(ANSWER), completion(fenced, 3000, 600)])
    cfg = config(server.base_url, prompt_price_per_1k=0.5, completion_price_per_1k=1.5)
    items = [example(0), example(1, "comparative")]
    report = run(items, tmp_path / "out.jsonl", cfg, clock, media)

    first, second = server.requests
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == f"Bearer {KEY}"
    assert first["payload"]["model"] == "vision-model"
    assert [message["role"] for message in first["payload"]["messages"]] == ["system", "user"]
    # Two keyframes and one IMU plot per clip, all PNGs; the comparative item shows two clips.
    assert [len(images_of(request)) for request in server.requests] == [3, 6]
    assert all(image.startswith(PNG_SIGNATURE) for image in images_of(first) + images_of(second))
    assert images_of(first)[:2] == [(media / "frames" / f"{k:02d}.png").read_bytes() for k in range(2)]
    assert "'walking', safe" in first["payload"]["messages"][1]["content"][0]["text"]

    written = read_jsonl(tmp_path / "out.jsonl")
    assert [(e.id, e.source, e.instruction, e.response) for e in written] == [
        ("item-0", "teacher:vision-model", "What happens?", "The person walks."),
        ("item-1", "teacher:vision-model", "Compare them.", "Both walk."),
    ]
    assert written[1].clip == items[1].clip and written[1].compared_with == items[1].compared_with
    assert (report.written, report.malformed, report.failed, report.requests, report.retries) == (2, 0, 0, 2, 0)
    assert (report.prompt_tokens, report.completion_tokens) == (4000, 800)
    assert report.cost == pytest.approx(4000 / 1000 * 0.5 + 800 / 1000 * 1.5, abs=1e-12)  # 2.0 + 1.2
    assert clock.sleeps == [1.0]  # no retries; the default 60 requests per minute space the two by 1 s


def test_retry_after_seconds_and_date_are_honoured(tmp_path, serve, clock, media):
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    server = serve([(429, {"Retry-After": "7"}, b"slow down"), completion(ANSWER),
                    (503, {"Retry-After": date}, b"busy"), completion(ANSWER)])
    cfg = config(server.base_url, requests_per_minute=6000, burst=10)  # the bucket never waits
    report = run([example(0), example(1)], tmp_path / "out.jsonl", cfg, clock, media, wall_clock=lambda: now)
    assert clock.sleeps == pytest.approx([7.0, 30.0], abs=1e-9)
    assert (report.written, report.failed, report.requests, report.retries) == (2, 0, 4, 2)


def test_server_errors_until_retries_run_out(tmp_path, serve, clock, media):
    server = serve([(500, {}, b"oops")] * 4 + [completion(ANSWER)])
    cfg = config(server.base_url, max_retries=3, backoff_s=0.5, max_backoff_s=1.5, requests_per_minute=6000, burst=10)
    report = run([example(0), example(1)], tmp_path / "out.jsonl", cfg, clock, media)
    assert clock.sleeps == pytest.approx([0.5, 1.0, 1.5], abs=1e-9)  # 0.5·2^k capped at 1.5
    assert (report.written, report.failed, report.requests, report.retries) == (1, 1, 5, 3)
    assert [e.id for e in read_jsonl(tmp_path / "out.jsonl")] == ["item-1"]  # the next item still ran


def test_timeout_is_retried(tmp_path, serve, clock, media):
    server = serve([(*completion(ANSWER), 1.0), completion(ANSWER)])
    cfg = config(server.base_url, timeout_s=0.25, backoff_s=2.0, requests_per_minute=6000, burst=10)
    report = run([example(0)], tmp_path / "out.jsonl", cfg, clock, media)
    assert clock.sleeps == [2.0]
    assert (report.written, report.requests, report.retries) == (1, 2, 1)


def test_malformed_answers_are_counted_not_written(tmp_path, serve, clock, media):
    server = serve([completion("I cannot do that."), completion('{"instruction": "Only half"}'),
                    (200, {}, b'{"error": "no choices"}'), completion(ANSWER, 10, 20)])
    cfg = config(server.base_url, prompt_price_per_1k=1.0, completion_price_per_1k=2.0)
    report = run([example(k) for k in range(4)], tmp_path / "out.jsonl", cfg, clock, media)
    assert (report.written, report.malformed, report.failed, report.requests) == (1, 3, 0, 4)
    # Tokens of answered requests count even when the answer is unusable; the reply without usage adds none.
    assert (report.prompt_tokens, report.completion_tokens) == (2010, 420)
    assert report.cost == pytest.approx(2.010 + 0.840, abs=1e-12)
    assert [e.id for e in read_jsonl(tmp_path / "out.jsonl")] == ["item-3"]


def test_resume_skips_finished_ids(tmp_path, serve, clock, media):
    out = tmp_path / "out.jsonl"
    append_jsonl(out, [example(0)])
    server = serve([completion(ANSWER)])
    report = run([example(0), example(1)], out, config(server.base_url), clock, media)
    assert (report.skipped, report.written, report.requests) == (1, 1, 1)
    assert "item-0" not in json.dumps(server.requests[0]["payload"])  # only item-1 was asked
    report = run([example(0), example(1)], out, config(server.base_url), clock, media)
    assert (report.skipped, report.written, report.requests) == (2, 0, 0)
    assert [e.id for e in read_jsonl(out)] == ["item-0", "item-1"]


def test_limit_caps_the_items_asked(tmp_path, serve, clock, media):
    server = serve([completion(ANSWER)] * 2)
    report = run([example(k) for k in range(5)], tmp_path / "out.jsonl", config(server.base_url), clock, media, limit=2)
    assert (report.written, report.requests) == (2, 2)


@pytest.mark.parametrize("burst, expected", [(1, [0.0, 2.0, 4.0, 6.0]), (2, [0.0, 0.0, 2.0, 4.0])])
def test_rate_limit_spacing_on_a_fake_clock(tmp_path, serve, clock, media, burst, expected):
    server = serve([completion(ANSWER)] * 4)
    cfg = config(server.base_url, requests_per_minute=30, burst=burst)  # one token every 2 s
    run([example(k) for k in range(4)], tmp_path / "out.jsonl", cfg, clock, media)
    assert [request["time"] for request in server.requests] == pytest.approx(expected, abs=1e-9)


def test_token_bucket_refills_while_idle():
    clock = FakeClock()
    bucket = TokenBucket(per_minute=60, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        bucket.acquire()
    assert clock.sleeps == []
    bucket.acquire()
    assert clock.sleeps == pytest.approx([1.0], abs=1e-12)
    clock.now += 10.0  # idle: refills to the burst of 3, not 10
    for _ in range(3):
        bucket.acquire()
    bucket.acquire()
    assert clock.sleeps == pytest.approx([1.0, 1.0], abs=1e-12)


def test_fatal_status_stops_the_run_and_the_key_never_shows(tmp_path, serve, clock, media, caplog):
    server = serve([(500, {}, f"bad key {KEY}".encode()), (401, {}, f"Incorrect API key provided: {KEY}".encode())])
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TeacherError, match=r"401.*\*\*\*") as error:
        run([example(0), example(1)], tmp_path / "out.jsonl", config(server.base_url, backoff_s=0.0), clock, media)
    assert KEY not in str(error.value) and KEY not in caplog.text and "***" in caplog.text
    assert KEY not in repr(config(server.base_url))


def test_parse_answer():
    assert parse_answer('{"instruction": " Q ", "response": "A"}') == ("Q", "A")
    assert parse_answer('Sure!\n```json\n{"instruction": "Q", "response": "A"}\n```\nDone.') == ("Q", "A")
    assert parse_answer('```\n{"instruction": "Q", "response": "A"}\n```') == ("Q", "A")
    for bad in ("no json", '["Q", "A"]', '{"instruction": "Q", "response": ""}', '{"instruction": 1, "response": "A"}'):
        with pytest.raises(MalformedAnswer):
            parse_answer(bad)


def test_keyframes_spread_over_a_folder(tmp_path):
    for k in range(10):
        imsave(tmp_path / f"{k:02d}.png", np.zeros((4, 4, 3), dtype=np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    assert [path.name for path in keyframes(".", tmp_path, 4)] == ["01.png", "03.png", "06.png", "08.png"]
    assert keyframes(None, tmp_path, 4) == ()
    (tmp_path / "clip.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="neither a frame folder nor an image"):
        keyframes("clip.mp4", tmp_path, 4)


def test_config_validation(monkeypatch):
    for bad, match in ((dict(base_url="ftp://x"), "base_url"), (dict(model=" "), "model"),
                       (dict(requests_per_minute=0), "requests_per_minute"), (dict(max_retries=-1), "max_retries"),
                       (dict(image_detail="medium"), "image_detail"), (dict(prompt_price_per_1k=-1), "prompt_price")):
        with pytest.raises(ValueError, match=match):
            TeacherConfig(**{"base_url": "http://h/v1", "model": "m", **bad})
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="OPENAI_BASE_URL"):
        TeacherConfig.from_env(model="m")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://host:8000/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    cfg = TeacherConfig.from_env(model="m")
    assert (cfg.base_url, cfg.api_key) == ("http://host:8000/v1", KEY) and KEY not in repr(cfg)


def test_cli_over_the_toy_set(tmp_path, serve, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("build_instructions", ROOT / "docs" / "build_instructions.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    server = serve([completion(ANSWER)] * 2)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    out = tmp_path / "teacher.jsonl"
    report = cli.main(["--toy", "3", "--out", str(out), "--model", "m", "--base-url", server.base_url,
                       "--prices", "0.5,1.5", "--rpm", "6000", "--limit", "2"])
    assert (report.written, report.requests) == (2, 2)
    assert report.cost == pytest.approx(2 * (0.5 + 0.3), abs=1e-12)
    assert "written 2" in capsys.readouterr().out
    assert [e.id for e in read_jsonl(out)] == ["toy-0-00000", "toy-0-00001"]
    assert len(read_jsonl(tmp_path / "teacher.toy.jsonl")) == 3
    # The toy frames (4 of 16 keyframes) and the IMU plot reach the endpoint.
    assert [len(images_of(request)) for request in server.requests] == [5, 5]
