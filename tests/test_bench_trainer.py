"""The trainer benchmark's pieces measure what they claim.

The benchmark end to end (all three variants on the same data, the table, the agreement lines) runs once in CI,
inside the GPU suite's dry run: tests/test_gpu_suite.py checks its payload there.
"""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_trainer")


def test_imdb_like_texts_reach_review_lengths_and_keep_their_label(bench):
    frame = pd.DataFrame({"text": ["good fun day here"] * 5 + ["bad sad awful thing"] * 5,
                          "label": ["positive"] * 5 + ["negative"] * 5})
    joined = bench.imdb_like(frame, 200, seed=0)
    words = joined["text"].str.split().str.len()
    assert len(joined) == 200 and set(joined["label"]) == {"negative", "positive"}
    assert 150 <= words.median() <= 320  # median near the 230 words asked for
    assert words.min() >= 20 and words.max() <= 1200
    for text, label in zip(joined["text"], joined["label"]):  # a review is built from its own class only
        assert set(text.split()) <= set(("good fun day here" if label == "positive" else "bad sad awful thing").split())


def test_unknown_variant_is_refused_with_the_choices(bench, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--variants", "naive,fast"])
    assert exit_info.value.code == 2
    assert "unknown variant(s) ['fast']" in capsys.readouterr().err


def test_training_flops_count_6n_per_token_plus_attention(bench):
    # 6 x N x tokens + 12 x layers x hidden x sum(L^2): two texts of 3 and 5 tokens
    assert bench.training_flops(1000, [3, 5], n_layers=2, hidden=4) == 6 * 1000 * 8 + 12 * 2 * 4 * (9 + 25)
    # attention grows with the square of the length: one text of 8 costs more than two of 4
    assert bench.training_flops(0, [8], 1, 1) == 2 * bench.training_flops(0, [4, 4], 1, 1)
    assert bench.training_flops(10, [], 1, 1) == 0


def test_non_embedding_parameters_leave_the_embedding_tables_out(bench):
    from course_utils.models import count_parameters, tiny_bert_for_tests

    _, model = tiny_bert_for_tests()
    emb = model.bert.embeddings
    tables = sum(m.weight.numel() for m in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings))
    assert bench.non_embedding_parameters(model) == count_parameters(model) - tables


@pytest.mark.parametrize("name, expected", [
    ("NVIDIA H100 80GB HBM3", ("H100 SXM", 989.0)),
    ("NVIDIA H100 PCIe", ("H100 PCIe", 756.0)),
    ("NVIDIA H100 NVL", ("H100 NVL", 835.0)),
    ("NVIDIA H200", ("H200 SXM", 989.0)),
    ("NVIDIA H200 NVL", ("H200 NVL", 835.0)),
    ("NVIDIA A100-SXM4-80GB", ("A100 (SXM or PCIe)", 312.0)),
    ("NVIDIA L4", ("L4", 121.0)),
    ("NVIDIA L40S", ("L40S", 362.0)),
    ("NVIDIA A10", ("A10", 125.0)),
    ("NVIDIA H100", None),  # SXM, PCIe or NVL? not guessed
    ("Tesla T4", None),  # no bf16 tensor cores
])
def test_the_peak_is_looked_up_by_exact_gpu_model(bench, name, expected):
    assert bench.peak_tflops_for(name) == expected


def test_only_the_exact_target_settings_are_judged_against_the_target(bench):
    assert bench.is_target_run(bench.parse_args([]))
    assert bench.is_target_run(bench.parse_args(["--seed", "7"]))  # the target is stated for any seed
    for changed in (["--max-length", "32"], ["--batch-size", "16"], ["--lr", "3e-5"], ["--samples", "512"],
                    ["--eval-samples", "100"], ["--compile"], ["--model", "tiny"]):
        assert not bench.is_target_run(bench.parse_args(changed)), changed


def test_random_weight_models_take_the_tokenizer_folder_given(bench, tmp_path, capsys):
    """The GPU machine has no offline model: the suite passes the vocabulary that prepare_gpu_wheels.sh carried."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer", "do_lower_case": true}')
    args = bench.parse_args(["--model", "tiny", "--tokenizer", str(tmp_path)])
    tokenizer, model = bench.load_model(args.model, ["negative", "positive"], 0, args.tokenizer)
    assert tokenizer.vocab_size == len(words) == model.config.vocab_size
    assert tokenizer("good film")["input_ids"] == [2, 5, 7, 3]
    for argv, message in ((["--model", "offline", "--tokenizer", str(tmp_path)], "applies to --model tiny"),
                          (["--model", "tiny", "--tokenizer", str(tmp_path / "none")], "no tokenizer_config.json")):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
        assert message in capsys.readouterr().err
