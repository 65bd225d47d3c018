"""Which precision a run trains in: bfloat16 only on a CPU that computes it natively, float32 when asked
(SPIDER_KIT_CPU_PRECISION=float32, what a CPU without native bfloat16 runs), float16 on a GPU."""

from __future__ import annotations

import pytest
import torch

from helpers.core.errors import KitError
from helpers.training.models import (
    CPU_PRECISION_ENV,
    amp_dtype,
    cpu_has_native_bf16,
    cpu_precision,
    precision_note,
)

CPU = torch.device("cpu")


def test_auto_takes_bfloat16_only_where_the_cpu_computes_it(monkeypatch):
    monkeypatch.delenv(CPU_PRECISION_ENV, raising=False)
    assert cpu_precision() == ("bfloat16" if cpu_has_native_bf16() else "float32")
    assert amp_dtype(CPU) == (torch.bfloat16 if cpu_has_native_bf16() else None)
    assert amp_dtype(CPU, amp=False) is None
    assert amp_dtype(torch.device("cuda")) == torch.float16  # no GPU needed to decide


def test_float32_is_kept_when_asked_for_and_the_resource_check_says_why(monkeypatch):
    monkeypatch.setenv(CPU_PRECISION_ENV, "float32")
    assert cpu_precision() == "float32" and amp_dtype(CPU) is None
    note = precision_note(CPU)
    assert note.startswith("float32: ")
    assert (CPU_PRECISION_ENV in note) == cpu_has_native_bf16()  # else: "this CPU has no native bfloat16"


def test_an_unknown_precision_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv(CPU_PRECISION_ENV, "fp8")
    with pytest.raises(KitError, match=f"{CPU_PRECISION_ENV}='fp8'"):
        amp_dtype(CPU)
