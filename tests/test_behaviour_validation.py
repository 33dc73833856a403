"""Judge validation: kappa and precision/recall arithmetic, the shipped hand-labelled set, and
``python -m analysis validate`` end to end with two judges."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from analysis.__main__ import main
from analysis.behaviour.agreement import kappa, precision_recall
from analysis.behaviour.taxonomy import NAMES
from analysis.behaviour.validation import RULES_EXTRACTOR, load_labelled


def test_kappa_matches_the_textbook_formula_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    a = rng.random(200) < 0.3
    b = np.where(rng.random(200) < 0.8, a, rng.random(200) < 0.3)  # agrees with a 80% of the time, else guesses
    out = kappa(a, b, clusters=np.repeat(np.arange(40), 5), n_boot=500)
    po = np.mean(a == b)
    pe = a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean())
    assert out["kappa"] == pytest.approx((po - pe) / (1 - pe))
    assert out["kappa_low"] < out["kappa"] < out["kappa_high"] and out["pos_a"] == a.sum() and out["n"] == 200
    assert kappa(a, a, np.arange(a.size))["kappa"] == pytest.approx(1.0)
    assert np.isnan(kappa(np.zeros(6), np.zeros(6), np.arange(6))["kappa"])  # nobody ever says yes: undefined


def test_precision_recall_from_per_message_counts():
    out = precision_recall(hits_pred=[1, 0, 2], n_pred=[1, 1, 2], hits_gold=[1, 0, 2], n_gold=[2, 0, 2],
                           clusters=[0, 1, 2], n_boot=200)
    assert out["precision"] == pytest.approx(3 / 4) and out["recall"] == pytest.approx(3 / 4)
    assert out["n_predicted"] == 4 and out["n_gold"] == 4
    assert out["precision_low"] <= out["precision"] <= out["precision_high"]


def test_the_shipped_set_is_large_real_and_covers_every_category():
    items = load_labelled()
    assert len(items) >= 150
    sources = Counter(x["source"] for x in items)
    assert set(sources) == {"smollm2", "written"} and sources["smollm2"] >= 60
    positives = Counter(label for x in items for label in x["labels"])
    assert all(positives[name] >= 5 for name in NAMES), positives
    assert len({x["id"] for x in items}) == len(items)
    for x in items:
        assert x["speaker"] in x["agents"] and len(x["values"]) == len(x["items"])
        assert all(c["item"] in x["items"] and c["kind"] in ("top", "high", "low", "value") for c in x["claims"])


def test_validate_reports_kappa_per_judge_between_judges_and_extractor_quality(tmp_path, capsys):
    out = tmp_path / "validation"
    main(["validate", "judge=sim-judge", "--out", str(out), "--bootstrap", "100"])
    printed = capsys.readouterr().out
    assert "hand-labelled messages" in printed and "| judge | category |" in printed
    # a second judge: the same rules under another name and temperature, so it must agree perfectly
    main(["validate", "judge=sim-judge", "judge.name=sim-judge-2", "judge.params.temperature=0.5",
          "--out", str(out), "--bootstrap", "100"])
    n = len(load_labelled())
    vs_hand = pd.read_csv(out / "judge_vs_hand.csv")
    assert len(vs_hand) == 2 * len(NAMES) and (vs_hand["n"] == n).all() and (vs_hand["coverage"] == 1).all()
    assert set(vs_hand["category"]) == set(NAMES)
    assert (vs_hand["pos_a"] >= 5).all()
    vs_judge = pd.read_csv(out / "judge_vs_judge.csv")
    assert len(vs_judge) == len(NAMES) and (vs_judge["agreement"] == 1).all()
    extraction = pd.read_csv(out / "extraction.csv")
    rules = extraction[extraction["extractor"] == RULES_EXTRACTOR].set_index("target")
    judged = extraction[extraction["extractor"].str.startswith("sim-judge-")].groupby("target").first()
    # the offline judge serves the same extractor through the call path: the same claims come back
    assert rules.loc["claims", "precision"] == pytest.approx(judged.loc["claims", "precision"])
    assert rules.loc["claims", "recall"] == pytest.approx(judged.loc["claims", "recall"])
    assert 0 < rules.loc["claims", "recall"] <= 1 and 0 < rules.loc["claims", "precision"] <= 1
    assert (out / "judge_vs_hand.md").read_text().startswith("|")
