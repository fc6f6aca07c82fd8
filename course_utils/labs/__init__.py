"""The lessons' small experiments: each module belongs to the lesson that teaches it.

Labs may use the core (``course_utils.data``, ``metrics``, ``plots``, ...); the core never imports a
lab, and the grading wing may import both (``tests/test_layout.py`` enforces the directions).

Where each lesson's helpers live (``LESSON_MODULES`` below holds the same table for code):

======  ==================================================================================
lesson  modules
======  ==================================================================================
01      ``transfer`` (pre-train on digits 0-4, fine-tune on 5-9); ``loop`` (the loop itself)
02      ``baselines`` (TF-IDF baseline, overlap experiments), ``corpus`` (the tweets' topics)
03      ``hyperparams`` (one run per setting), ``practice`` (the exercise's given model),
        ``overfitting`` (the digits splits it shares with lesson 06), ``applications``
        (the breast-cancer splits it shares with lesson 04)
04      ``applications`` (the breast-cancer splits, costs, intervals)
05      ``bert_lab`` (the three trainings' subsets, stopwatch, tables), ``corpus``, ``applications``
06      ``overfitting`` (noise, selection bias, early stopping), ``loop``
07      ``applications`` (healthcare, fraud, drift, recommendation), ``loop``
08      ``peft_lab`` (LoRA against full fine-tuning), ``corpus``
09      ``instruct`` (chat prompts, answer-only loss, generation, likelihood scoring),
        ``llm_classifier`` (a head on the last token), ``bert_lab`` (bootstrap intervals)
======  ==================================================================================

``loop`` is what every lab shares: :class:`~course_utils.labs.loop.ArraySplits`, the one
:class:`~course_utils.labs.loop.History` (``to_frame()``), the MLP builder, the body/head network and
:func:`~course_utils.labs.loop.fit`. Lessons 00 and 10 use no lab.
"""

LESSON_MODULES: dict[str, tuple[str, ...]] = {
    "01": ("transfer", "loop"),
    "02": ("baselines", "corpus"),
    "03": ("hyperparams", "practice", "overfitting", "applications"),
    "04": ("applications",),
    "05": ("bert_lab", "corpus", "applications"),
    "06": ("overfitting", "loop"),
    "07": ("applications", "loop"),
    "08": ("peft_lab", "corpus"),
    "09": ("instruct", "llm_classifier", "bert_lab"),
}

__all__ = ["LESSON_MODULES"]
