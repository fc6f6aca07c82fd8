import numpy as np
import pytest
import torch

from course_utils import set_seed
from course_utils.device import bf16_supported, describe_device, get_device, get_profile
from course_utils.errors import ConfigError, DataError, ModelLoadError
from course_utils.metrics import classification_metrics, metrics_at_threshold, threshold_for_recall
from course_utils.models import count_parameters, load_pretrained, offline_model_dir, tiny_bert_for_tests


def test_device_and_profile_on_this_machine(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    dev = get_device()
    expected = "cuda" if torch.cuda.is_available() else dev.type
    assert dev.type == expected
    prof = get_profile(dev)
    assert prof.name == ("full" if dev.type == "cuda" else "small")
    assert get_profile("cpu").max_train_samples == 768 and get_profile("cpu", size="full").max_train_samples is None
    assert describe_device("cpu")["kind"] == "cpu"
    assert bf16_supported("cpu") is False


def test_device_overrides_and_errors(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "full")
    assert get_profile("cpu").name == "full"
    monkeypatch.setenv("COURSE_PROFILE", "huge")
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        get_profile("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device().type == "cpu"
    with pytest.raises(ConfigError, match="unknown device"):
        get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            get_device("cuda")


def test_set_seed_repeats_random_draws():
    set_seed(3)
    a = (np.random.rand(3), torch.rand(3))
    set_seed(3)
    b = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_offline_model_loads_with_labels():
    tokenizer, model = load_pretrained(labels=["negative", "positive"])
    assert (offline_model_dir() / "model.safetensors").is_file()
    assert 22_000_000 < count_parameters(model) < 23_500_000
    assert model.config.id2label == {0: "negative", 1: "positive"} and model.config.num_labels == 2
    batch = tokenizer(["great", "awful film"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert model(**batch).logits.shape == (2, 2)


def test_frozen_parameters_are_not_counted_as_trainable():
    _, model = tiny_bert_for_tests()
    for p in model.bert.parameters():
        p.requires_grad = False
    assert count_parameters(model, trainable_only=True) == sum(p.numel() for p in model.classifier.parameters())


def test_load_pretrained_errors_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache and the Hub is not reachable"):
        load_pretrained("some-org/never-downloaded-model")
    with pytest.raises(ModelLoadError, match="config.json"):
        load_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="at least 2"):
        load_pretrained(num_labels=1)


def test_local_copy_of_a_saved_model_loads(tmp_path):
    tok, model = tiny_bert_for_tests(labels=["a", "b", "c"])
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    _, again = load_pretrained(tmp_path, labels=["a", "b", "c"])
    assert torch.equal(again.bert.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight)


def test_classification_metrics_layout():
    m = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], label_names=["neg", "neu", "pos"])
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["per_class"]["pos"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    with pytest.raises(DataError, match="5 items but y_pred has 4"):
        classification_metrics([0] * 5, [0] * 4)


def test_threshold_for_recall_is_the_highest_meeting_target():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    t = threshold_for_recall(y, s, 1.0)
    assert t == pytest.approx(0.35)
    m = metrics_at_threshold(y, s, t)
    assert m["recall"] == 1.0 and (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 1, 0, 2)
    assert threshold_for_recall(y, s, 0.6) == pytest.approx(0.8)
    with pytest.raises(DataError, match="no positive"):
        threshold_for_recall([0, 0], [0.1, 0.2], 0.9)
