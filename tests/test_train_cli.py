"""``course-utils train``: a good run writes metrics and a model; every bad input is one clear line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_trainer import toy_frame

from course_utils.cli import main
from course_utils.models import load_pretrained, tiny_bert_for_tests

FAST = ["--epochs", "1", "--batch-size", "8", "--max-length", "16", "--lr", "1e-2", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer, model = tiny_bert_for_tests()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def toy_csv(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "toy.csv"
    toy_frame(160, seed=4).to_csv(path, index=False)
    return str(path)


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(["train", *args])
    except SystemExit as exc:  # argparse errors exit from inside parse_args
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_a_run_writes_metrics_and_a_loadable_model(tiny_model_dir, toy_csv, tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, err = run_cli(["--data", toy_csv, "--model", tiny_model_dir, "--output-dir", str(out_dir), *FAST,
                              "--epochs", "2"], capsys)
    assert code == 0, err
    report = json.loads((out_dir / "metrics.json").read_text())
    assert report["sizes"] == {"train": 128, "validation": 16, "test": 16}
    assert 0.0 <= report["accuracy"] <= 1.0 and report["accuracy"] == report["test"]["accuracy"]
    assert set(report["test"]["per_class"]) == {"negative", "positive"}
    assert report["samples_per_second"] > 0 and report["train_seconds"] > 0
    assert report["device"]["kind"] == "cpu" and report["precision"] == "fp32"
    assert len(report["history"]["loss"]) == 2 * 16
    assert f"test accuracy {report['accuracy']:.4f}" in out and "LoRA" not in out
    assert report["config"]["lora_r"] == 0
    _, model = load_pretrained(out_dir / "model", num_labels=2)
    assert model.config.id2label == {0: "negative", 1: "positive"}


def test_lora_r_trains_an_adapter_that_loads_back(tiny_model_dir, toy_csv, tmp_path, capsys):
    peft = pytest.importorskip("peft")
    out_dir = tmp_path / "lora"
    code, out, err = run_cli(["--data", toy_csv, "--model", tiny_model_dir, "--output-dir", str(out_dir), *FAST,
                              "--lora-r", "4", "--lora-alpha", "16"], capsys)
    assert code == 0, err
    assert "LoRA adapter" in out
    report = json.loads((out_dir / "metrics.json").read_text())
    assert report["config"]["lora_r"] == 4 and report["config"]["lora_alpha"] == 16
    assert not (out_dir / "model" / "model.safetensors").exists()
    model = peft.AutoPeftModelForSequenceClassification.from_pretrained(out_dir / "model")
    assert model.peft_config["default"].r == 4 and model.peft_config["default"].lora_alpha == 16


def _write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


BAD_INPUTS = {
    "missing file": (lambda d: ["--data", str(d / "nope.csv")], "file not found"),
    "wrong columns": (lambda d: ["--data", _write(d, "r.csv", "review,stars\ngood,5\nbad,1\n")], "no text column 'text'"),
    "wrong --label-column": (lambda d: ["--data", _write(d, "r.csv", "text,label\na,x\nb,y\n"), "--label-column", "stars"],
                             "no label column 'stars'"),
    "one class": (lambda d: ["--data", _write(d, "one.csv", "text,label\n" + "fine day,pos\n" * 9)], "only one class"),
    "empty texts": (lambda d: ["--data", _write(d, "e.csv", "text,label\ngood,pos\n  ,neg\nbad,neg\n")], "empty text"),
    "NaN labels": (lambda d: ["--data", _write(d, "n.csv", "text,label\ngood,pos\nbad,\nmeh,neg\n")], "missing label"),
    "non-UTF-8 file": (lambda d: ["--data", _write(d, "l1.csv", "text,label\ncaf\xe9,pos\nbad,neg\n".encode("latin-1"))],
                       "not valid UTF-8"),
    "unknown label names": (lambda d: ["--labels", "negative", "neutral"], r"\['positive'\] are not among"),
    "--epochs 0": (lambda d: ["--epochs", "0"], "epochs must be an integer >= 1"),
    "--lr abc": (lambda d: ["--lr", "abc"], "invalid float value: 'abc'"),
    "--batch-size -3": (lambda d: ["--batch-size", "-3"], "batch_size must be an integer >= 1"),
    "--warmup-ratio 2": (lambda d: ["--warmup-ratio", "2"], "warmup_ratio"),
    "--max-train-samples 0": (lambda d: ["--max-train-samples", "0"], "--max-train-samples must be a positive"),
    "--lora-r -1": (lambda d: ["--lora-r", "-1"], "lora_r must be an integer >= 0"),
    "--lora-alpha without --lora-r": (lambda d: ["--lora-alpha", "8"], "need lora_r"),
    "--precision fp16": (lambda d: ["--precision", "fp16"], "invalid choice: 'fp16'"),
    "imdb offline": (lambda d: ["--data", "imdb"], "imdb|datasets|Hub"),
    "missing model folder": (lambda d: ["--model", str(d / "no_model/")], "no such model folder|config.json"),
    "columns with tweets": (lambda d: ["--data", "tweets", "--text-column", "tweet"], "apply to your own files"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_non_zero_with_one_clear_line(case, tiny_model_dir, toy_csv, tmp_path, capsys):
    make_args, message = BAD_INPUTS[case]
    args = ["--data", toy_csv, "--model", tiny_model_dir, "--output-dir", str(tmp_path / "out"), *FAST]
    code, _, err = run_cli(args + make_args(tmp_path), capsys)  # later flags win
    lines = err.strip().splitlines()
    assert code != 0
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert re.search(message, lines[0]), lines[0]


def test_missing_required_flag_is_one_line(capsys):
    code, _, err = run_cli(["--output-dir", "x"], capsys)
    assert code == 2 and err.strip().splitlines() == [
        "course-utils train: error: the following arguments are required: --data (see course-utils train --help)"
    ]


def test_real_subprocess_exit_code_and_stderr(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "course_utils.cli", "train", "--data", str(tmp_path / "missing.csv"),
         "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.csv'}: file not found. Check the path (relative paths start at {Path.cwd()})."
    ]


def test_an_output_dir_that_cannot_work_is_refused_before_loading_anything(toy_csv, tmp_path, capsys, monkeypatch):
    import course_utils.data as data

    def no_loading(*args, **kwargs):
        raise AssertionError("data was loaded before the output folder was checked")

    monkeypatch.setattr(data, "load_course_dataset", no_loading)
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    for value, message in [(str(a_file), "is a file"), ("", "empty"), ("  ", "empty")]:
        code, _, err = run_cli(["--data", toy_csv, "--output-dir", value, *FAST], capsys)
        assert code == 1 and message in err and err.count("\n") == 1, (value, err)


def test_a_fine_tuned_head_with_other_classes_is_named(toy_csv, tmp_path, capsys):
    tokenizer, model = tiny_bert_for_tests(labels=["a", "b", "c"])
    model.config.architectures = ["BertForSequenceClassification"]
    folder = tmp_path / "three_classes"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    code, _, err = run_cli(["--data", toy_csv, "--model", str(folder), "--output-dir", str(tmp_path / "o"), *FAST], capsys)
    assert code == 1 and "3 classes" in err and "has 2" in err and "Traceback" not in err


def test_case_variants_of_a_label_are_one_line_with_the_flag_that_folds_them(tmp_path, capsys):
    frame = toy_frame(160, seed=5)
    frame["label"] = [label.upper() if i % 2 else label for i, label in enumerate(frame["label"])]
    path = tmp_path / "cased.csv"
    frame.assign(extra="unused").to_csv(path, index=False)
    code, _, err = run_cli(["--data", str(path), "--output-dir", str(tmp_path / "o"), *FAST], capsys)
    assert code == 1 and "--fold-label-case" in err and err.count("\n") == 1


def test_the_help_examples_cap_the_tweets_as_the_readme_does(capsys):
    """On a CPU the whole binary corpus trains for 15+ minutes; the first example a learner copies must not."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    examples = [line for line in lines if line.startswith("course-utils train --data tweets")]
    assert examples and all("--max-train-samples 768" in line for line in examples)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert examples[0].split("  ")[0] in readme
