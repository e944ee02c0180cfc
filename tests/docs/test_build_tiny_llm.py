"""The tiny stand-in base LLM: built from the toy texts, optionally pretrained on them, loadable like LLaMA."""

import importlib.util
from pathlib import Path

import pytest
import torch

from networks.mhia import from_pretrained_llm

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("build_tiny_llm", ROOT / "docs" / "build_tiny_llm.py")
build_tiny_llm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_tiny_llm)

SMALL = ["--clips", "6", "--vocab-size", "300", "--hidden", "32", "--layers", "1", "--intermediate", "64",
         "--pretrain-steps", "0"]


def test_corpus_holds_the_prompts_and_answers_of_the_toy_training_set():
    texts = build_tiny_llm.corpus(3, seed=1)
    assert len(texts) == 3
    assert all(t.startswith("USER: ") and "\nASSISTANT: The " in t for t in texts)  # the template, media removed


def test_pretraining_lowers_the_loss_and_the_folder_loads(tmp_path, capsys):
    out = build_tiny_llm.main(["--out", str(tmp_path / "llm"), *SMALL, "--pretrain-steps", "40",
                               "--pretrain-batch", "4"])
    first, last = (float(x) for x in capsys.readouterr().out.split("pretraining loss ")[1].split(" (")[0].split(" → "))
    assert last < 0.7 * first
    llm, tokenizer = from_pretrained_llm(out, bf16=False)
    assert tokenizer.pad_token is None  # the pretraining loop's pad stand-in is not saved
    assert llm.config.hidden_size == 32 and llm.config.vocab_size == len(tokenizer)


def test_the_same_arguments_build_the_same_model(tmp_path):
    a = build_tiny_llm.main(["--out", str(tmp_path / "a"), *SMALL])
    b = build_tiny_llm.main(["--out", str(tmp_path / "b"), *SMALL])
    (llm_a, _), (llm_b, _) = from_pretrained_llm(a, bf16=False), from_pretrained_llm(b, bf16=False)
    for (name, p), q in zip(llm_a.state_dict().items(), llm_b.state_dict().values()):
        assert torch.equal(p, q), name
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()


def test_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        build_tiny_llm.main(["--out", str(tmp_path), "--clips", "0"])
