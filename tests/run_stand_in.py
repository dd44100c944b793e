"""A stand-in for ``helpers.run.execute_chapter`` in the scheduling test.

It lives in its own light module because ``execute_chapters`` runs it in spawned processes, each of
which imports the module that defines it.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from helpers.run import ChapterResult


def stand_in_chapter(chapter: str, scale: str, extra: Any, output: Path,
                     timeout: Any) -> ChapterResult:
    """Sleep, record when this chapter ran under $RUN_TEST_LOG, and fail for ``reprpo_dpo``."""
    start = time.time()
    time.sleep(1.5)
    log = Path(os.environ["RUN_TEST_LOG"]) / f"{chapter}.json"
    log.write_text(json.dumps({"start": start, "end": time.time(), "output": str(output)}))
    return ChapterResult(chapter, time.time() - start, chapter != "reprpo_dpo", "planted failure")
