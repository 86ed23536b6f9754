"""benchmarks/decode_speed_text.py: one quick run on the trained date model
prints the JSON it documents, with CTranslate2 on the same weights giving
our outputs."""

import json
import os
import subprocess
import sys

import pytest

from benchmark_scripts import ROOT
from keras_attention.data import date_pairs


def test_quick_run_compares_our_paths_with_ctranslate2(trained_date_model, tmp_path):
    _, folder = trained_date_model
    pairs = date_pairs(16, seed=41)
    (tmp_path / "src.txt").write_text("".join(s + "\n" for s, _ in pairs))
    (tmp_path / "ref.txt").write_text("".join(t + "\n" for _, t in pairs))
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "decode_speed_text.py"),
         "--model", folder, "--source", str(tmp_path / "src.txt"),
         "--references", str(tmp_path / "ref.txt"), "--quick",
         # Every path runs the same worker code; the XLA ones (minutes of
         # compiling here) are checked in tests/export/test_saved_model.py
         # and tests/decoding/test_text.py.
         "--paths", "ours", "saved_model", "tflite", "ctranslate2_fp32"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["sentences"] == 16 and report["matmul_fp32_gflops"] > 0
    rows = {(row["search"], row["batch"]): row for row in report["results"]}
    assert set(rows) == {("greedy", 32), ("greedy", 1), ("beam4", 32), ("beam4", 1)}
    for row in rows.values():
        # Every path decodes the same dates; TFLite runs at batch 1 only.
        assert ("tflite" in row) == (row["batch"] == 1)
        for name in ("saved_model", "tflite", "ctranslate2_fp32"):
            if name in row:
                assert row[name]["same_as_ours"] == row["sentences"], name
        assert row["saved_model_over_ctranslate2_fp32"] > 0
        assert row["ctranslate2_fp32"]["bleu"] == row["ours"]["bleu"]
        assert row["ours_over_ctranslate2_fp32"] == pytest.approx(
            row["ours"]["sentences_per_s"] / row["ctranslate2_fp32"]["sentences_per_s"],
            rel=0.02, abs=0.002)
