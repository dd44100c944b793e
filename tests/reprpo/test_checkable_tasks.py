"""helpers.reprpo.checkable_tasks: every chosen answer is right, every rejected one wrong."""
import re

import pytest

from helpers.reprpo import checkable_tasks as ct


def _numbers(text):
    return [int(x) for x in re.findall(r"\d+", text)]


@pytest.mark.parametrize("split", ct.TASK_SPLITS)
def test_chosen_is_correct_and_rejected_wrong(split):
    recs = ct.make_task_split(split, 200, seed=3)
    assert len(recs) == 200 and all(set(r) == {"prompt", "chosen", "rejected"} for r in recs)
    for r in recs:
        nums, right, wrong = _numbers(r["prompt"]), int(r["chosen"]), int(r["rejected"])
        assert right != wrong and wrong >= 0
        if split == "skill":
            n, factor = nums[0], dict((s, f) for _, s, f in ct._UNITS)[r["prompt"].split()[2]]
            assert right == n * factor
        elif split == "unrelated":
            assert right == max(nums) and wrong == min(nums)
        else:
            a, b = nums[-2:] if split != "sycophancy" else nums[:2]
            assert right == a + b
            digits = 3 if split == "extrapolation" else 2
            assert all(10 ** (digits - 1) <= x < 10 ** digits for x in (a, b))
    if split == "sycophancy":  # the user asserts the wrong answer
        assert all(f"= {r['rejected']}." in r["prompt"] for r in recs)


def test_splits_are_reproducible_and_disjoint_streams():
    a, b = ct.make_task_splits(20, 10, 10, seed=0), ct.make_task_splits(20, 10, 10, seed=0)
    assert a == b and list(a) == list(ct.TASK_SPLITS)
    assert [len(a[s]) for s in ct.TASK_SPLITS] == [20, 10] + [10] * 6
    assert a["train"][:10] != a["val"] and a["val"] != a["test"]
    assert ct.make_task_split("train", 5, seed=1) != ct.make_task_split("train", 5, seed=0)


def test_errors():
    with pytest.raises(ValueError, match="split must be one of"):
        ct.make_task_split("math", 3)
    with pytest.raises(ValueError, match="n must be >= 1"):
        ct.make_task_split("train", 0)
