"""Submitted models cross as data files, never as code: how they are written, checked and read back.

A pickled object runs code when it is loaded (``__reduce__``), and a learner's object runs code when
it is asked to predict: either can look the grader's labels up instead of predicting them. So
:func:`course_utils.grading.submit.submit_model` writes *files* and the grader reads them with its
own code:

* scikit-learn estimators and pipelines as a ``skops`` file (``model.skops``). The grader loads it
  only if every type in it is trusted: skops' defaults, or a **class** defined in scikit-learn itself.
  A class the learner defined, or a function such as ``builtins.eval``, is refused by name;
* a full transformers model as ``save_pretrained`` output (``config.json`` + ``model.safetensors``),
  loaded with the library's own class for a known ``model_type``, no remote code;
* LoRA as a peft adapter (``adapter_config.json`` + ``adapter_model.safetensors``), loaded onto the
  grader's own copy of the base model. The share of weights it trains is counted by the grader from
  the adapter file's tensors (everything the submission carries), not read from the submitted object.

Only the file names above (and ``grading.json``: the format, the label names and the token length) are
accepted; anything else in the folder (a pickle, a link, a tokenizer with code) refuses the model.
Predictions are computed by the grader's code: ``predict``/``predict_proba`` of scikit-learn's own
classes, or the course trainer's batched inference for text.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from course_utils.errors import ConfigError

META_FILE = "grading.json"
SKLEARN_FILES = {"model.skops"}
TRANSFORMERS_FILES = {"config.json", "model.safetensors"}
PEFT_FILES = {"adapter_config.json", "adapter_model.safetensors"}
FORMATS = {"sklearn": SKLEARN_FILES, "transformers": TRANSFORMERS_FILES, "peft": PEFT_FILES}
TEXT_MODEL_TYPES = ("bert", "distilbert", "roberta", "electra")  # classes of the transformers library itself
MAX_TOKENS = (8, 512)


class ArtefactRefused(Exception):
    """The submitted files are not a model the grader will load; the message says why."""


# --------------------------------------------------------------------------------------------
# Writing (in the learner's notebook)
# --------------------------------------------------------------------------------------------


def untrusted_types(names: list[str]) -> list[str]:
    """Of skops' untrusted type names, those the grader refuses: anything but a scikit-learn class."""
    refused = []
    for name in names:
        module, _, attr = name.rpartition(".")
        ok = False
        if module == "sklearn" or module.startswith("sklearn."):
            try:
                ok = isinstance(getattr(importlib.import_module(module), attr), type)
            except (ImportError, AttributeError, ValueError):
                ok = False
        if not ok:
            refused.append(name)
    return refused


def save_model(model: Any, folder: Path) -> str:
    """Write ``model`` into the empty ``folder`` as data; returns the format written.

    Accepts a scikit-learn estimator or pipeline, a transformers model, a peft model, or the course
    trainer (its model, label names and token length). Raises :class:`ConfigError` for anything else,
    or for an estimator holding types the grader would refuse (a class defined in the notebook).
    """
    meta: dict[str, Any] = {}
    network = getattr(model, "model", None) if hasattr(model, "config") and hasattr(model, "tokenizer") else None
    if network is not None:  # the course trainer
        meta["max_length"] = int(model.config.max_length)
        if getattr(model, "labels", None):
            meta["labels"] = [str(label) for label in model.labels]
        model = network
    if _is_sklearn(model):
        import skops.io as sio

        path = folder / "model.skops"
        sio.dump(model, path)
        refused = untrusted_types(sio.get_untrusted_types(file=path))
        if refused:
            path.unlink()
            raise ConfigError(f"the grader loads scikit-learn's own classes only, and this model holds {refused}; "
                              "build it from scikit-learn estimators (a Pipeline is fine), not classes or functions "
                              "defined in the notebook.")
        meta["format"] = "sklearn"
    elif _is_peft(model):
        model.save_pretrained(folder, safe_serialization=True)
        meta["format"] = "peft"
    elif hasattr(model, "save_pretrained") and hasattr(model, "config"):
        model.save_pretrained(folder, safe_serialization=True)
        meta["format"] = "transformers"
    else:
        raise ConfigError(f"cannot submit a {type(model).__name__}: submit a fitted scikit-learn estimator or "
                          "pipeline, a transformers or peft model, or the course_utils Trainer you trained.")
    for extra in [f for f in folder.iterdir() if f.name not in FORMATS[meta["format"]]]:  # model cards and the like
        extra.unlink()
    if "labels" not in meta and meta["format"] != "sklearn":
        id2label = getattr(getattr(_base(model), "config", None), "id2label", None) or {}
        meta["labels"] = [str(id2label[i]) for i in sorted(id2label)]
    (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return meta["format"]


def _is_sklearn(model: Any) -> bool:
    return any(c.__module__.split(".")[0] == "sklearn" for c in type(model).__mro__) and hasattr(model, "fit")


def _is_peft(model: Any) -> bool:
    return any(c.__module__.split(".")[0] == "peft" for c in type(model).__mro__)


def _base(model: Any) -> Any:
    return model.get_base_model() if _is_peft(model) else model


# --------------------------------------------------------------------------------------------
# Reading (in the grader's confined runner, never in the grader itself)
# --------------------------------------------------------------------------------------------


def read_meta(folder: Path) -> dict:
    """The folder's metadata, after checking that it holds exactly one format's files and nothing else."""
    if folder.is_symlink() or not folder.is_dir():
        raise ArtefactRefused("the submitted model is not a folder written by submit_model")
    names = set()
    for entry in folder.iterdir():
        if entry.is_symlink() or not entry.is_file():
            raise ArtefactRefused(f"the model folder holds {entry.name!r}, which is not a plain file")
        names.add(entry.name)
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ArtefactRefused("the model folder has no readable grading.json; submit with submit_model") from None
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt not in FORMATS:
        raise ArtefactRefused(f"unknown model format {fmt!r}")
    extra = names - FORMATS[fmt] - {META_FILE}
    if extra or not FORMATS[fmt] <= names:
        raise ArtefactRefused(f"a {fmt} model must consist of {sorted(FORMATS[fmt])}; found {sorted(names)}")
    labels = meta.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise ArtefactRefused("grading.json's labels must be a list of names")
    length = meta.get("max_length", 128)
    if not (isinstance(length, int) and MAX_TOKENS[0] <= length <= MAX_TOKENS[1]):
        raise ArtefactRefused(f"grading.json's max_length must be a whole number in {list(MAX_TOKENS)}")
    return meta


def load_sklearn(folder: Path) -> Any:
    import skops.io as sio

    path = folder / "model.skops"
    names = sio.get_untrusted_types(file=path)
    refused = untrusted_types(names)
    if refused:
        raise ArtefactRefused(f"the model holds types the grader does not load: {refused[:5]}")
    model = sio.load(path, trusted=names)
    if not callable(getattr(model, "predict", None)):
        raise ArtefactRefused(f"a {type(model).__name__} is not a classifier")
    return model


def tree_root_samples(model: Any) -> int | None:
    """Training rows that reached the root of the model's decision tree (the last step of a pipeline)."""
    steps = getattr(model, "steps", None)
    final = steps[-1][1] if steps else getattr(model, "best_estimator_", model)
    tree = getattr(final, "tree_", None)
    try:
        return int(tree.n_node_samples[0])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def load_text_model(folder: Path, meta: dict, base_loader) -> tuple[Any, dict]:
    """A text classifier from the files, and the facts the grader checks (trainable share).

    ``base_loader(labels)`` returns ``(tokenizer, model)``: the grader's own offline BERT for the peft
    route, and the grader's own tokenizer for both (a submitted tokenizer is never read).
    """
    from safetensors import safe_open

    facts: dict[str, Any] = {}
    labels = meta.get("labels")
    if not labels or len(labels) < 2:
        raise ArtefactRefused("grading.json names no labels; submit the course Trainer or a model with id2label")
    tokenizer, base = base_loader(labels)
    total = sum(p.numel() for p in base.parameters())
    if meta["format"] == "peft":
        from peft import PeftConfig, PeftModel

        try:
            config = PeftConfig.from_pretrained(str(folder))
        except Exception as exc:  # noqa: BLE001 - any malformed config is a refusal, said in one line
            raise ArtefactRefused(f"adapter_config.json is not a peft configuration ({type(exc).__name__})") from None
        if str(getattr(config, "peft_type", "")).split(".")[-1].upper() != "LORA":
            raise ArtefactRefused("the adapter is not a LoRA adapter")
        with safe_open(str(folder / "adapter_model.safetensors"), framework="pt") as fh:
            carried = sum(_numel(fh.get_slice(k).get_shape()) for k in fh.keys())
        facts["trainable_share"] = carried / total if total else None
        model = PeftModel.from_pretrained(base, str(folder), is_trainable=False)
    else:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if not isinstance(config, dict) or config.get("model_type") not in TEXT_MODEL_TYPES or "auto_map" in config:
            raise ArtefactRefused(f"config.json must describe one of {list(TEXT_MODEL_TYPES)} without custom code")
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(
            str(folder), trust_remote_code=False, use_safetensors=True, local_files_only=True)
        if model.config.vocab_size != getattr(tokenizer, "vocab_size", model.config.vocab_size):
            raise ArtefactRefused("the model's vocabulary is not the course BERT's; fine-tune the offline BERT")
        facts["trainable_share"] = 1.0
    model.eval()
    return (tokenizer, model), facts


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def predict_texts(tokenizer, model, labels: list[str], texts: list[str], max_length: int) -> list[str]:
    """Label names for ``texts``: the course trainer's batched inference, on the grader's side."""
    from course_utils.trainer import TrainConfig, Trainer

    trainer = Trainer(TrainConfig(max_length=max_length, labels=labels, device="cpu"), model=model, tokenizer=tokenizer)
    return [str(label) for label in trainer.predict(texts).labels]


def artefact_dir(root: str | os.PathLike, question_id: str) -> Path:
    return Path(root) / question_id
