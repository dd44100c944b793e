"""helpers.reprpo.checkable_tasks: every chosen answer is right, every rejected one wrong."""
import re

import numpy as np
import pytest

from helpers.reprpo import checkable_tasks as ct

FACTOR = {(big, small): f for big, small, f in ct._UNITS}


def _numbers(text):
    return [int(x) for x in re.findall(r"\d+", text)]


def _check(task, r):
    nums, right, wrong = _numbers(r["prompt"]), int(r["chosen"]), int(r["rejected"])
    assert right != wrong and wrong >= 0
    if task.startswith("units"):
        pair = [(b, s) for b, s in FACTOR if f" {b}" in r["prompt"] and f" {s}" in r["prompt"]]
        assert len(pair) == 1
        n = nums[0]
        assert right == n * FACTOR[pair[0]] and wrong in (right * 10, right // 10)
        assert (100 <= n < 1000) if task == "units-large" else (2 <= n < 100)
    elif task == "larger":
        assert right == max(nums) and wrong == min(nums)
    else:
        a, b = nums[:2] if task == "addition-sycophancy" else nums[-2:]
        assert right == a + b and abs(wrong - right) in (1, 10)
        digits = 3 if task == "addition-3digit" else 2
        assert all(10 ** (digits - 1) <= x < 10 ** digits for x in (a, b))
    if task.endswith("sycophancy"):  # the user asserts the wrong answer
        assert str(wrong) in r["prompt"]


@pytest.mark.parametrize("skill", sorted(ct.TASKS))
@pytest.mark.parametrize("split", ct.TASK_SPLITS)
def test_chosen_is_correct_and_rejected_wrong(skill, split):
    recs = ct.make_task_split(split, 200, seed=3, skill=skill)
    assert len(recs) == 200 and all(set(r) == {"prompt", "chosen", "rejected"} for r in recs)
    for r in recs:
        _check(ct.TASKS[skill][split], r)


def test_splits_are_reproducible_and_disjoint_streams():
    a, b = ct.make_task_splits(20, 10, 10, seed=0), ct.make_task_splits(20, 10, 10, seed=0)
    assert a == b and list(a) == list(ct.TASK_SPLITS)
    assert [len(a[s]) for s in ct.TASK_SPLITS] == [20, 10] + [10] * 6
    assert a["train"][:10] != a["val"] and a["val"] != a["test"]
    assert ct.make_task_split("train", 5, seed=1) != ct.make_task_split("train", 5, seed=0)
    assert set(ct.SHIFT_CATEGORY) == set(ct.TASK_SPLITS)


def test_errors():
    with pytest.raises(ValueError, match="split must be one of"):
        ct.make_task_split("math", 3)
    with pytest.raises(ValueError, match="n must be >= 1"):
        ct.make_task_split("train", 0)
    with pytest.raises(ValueError, match="skill must be one of"):
        ct.make_task_split("train", 3, skill="poetry")
    with pytest.raises(ValueError, match="task must be one of"):
        ct._task(None, "poetry")


@pytest.mark.parametrize("skill", sorted(ct.TASKS))
def test_no_evaluated_question_was_trained_on(skill):
    recs = ct.make_task_splits(300, 100, 100, seed=0, skill=skill)
    train = {r["prompt"] for r in recs["train"]}
    for split in ("val", "test"):
        assert not train & {r["prompt"] for r in recs[split]}
    units = [(k, n) for k in range(len(ct._UNITS)) for n in range(2, 100)]
    share = np.mean([ct.held_out(*q) for q in units])
    assert 0.15 < share < 0.25  # about a fifth of the questions are held out
