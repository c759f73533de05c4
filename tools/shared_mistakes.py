"""Which (subject, label) groups several ``attnfer cv`` runs get wrong, and which they share.

On CK+ a group is one sequence (its last three frames): whether two recipes differ in their
mistakes or only in their noise shows in how many wrong sequences they share.

    python tools/shared_mistakes.py runs/ckplus_lr0003 runs/ckplus_e10

Reads each run folder's cv_test.json (``attnfer cv`` run again on a folder rescored before
2026-12-03 adds the subjects to it, reusing its folds).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path


def wrong_groups(run: Path) -> Counter[tuple[str, str]]:
    """Wrong faces per (subject, true label) in ``run``'s pooled cv report."""
    errors = json.loads((run / "cv_test.json").read_text()).get("errors")
    if errors is None or any("subject" not in e for e in errors):
        raise ValueError(f"{run}/cv_test.json: no errors by subject; run `attnfer cv` again")
    return Counter((e["subject"], e["label"]) for e in errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="attnfer cv run folders")
    args = parser.parse_args(argv)
    try:
        groups = {run: wrong_groups(run) for run in args.runs}
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for run, wrong in groups.items():
        print(f"{run}: {sum(wrong.values())} wrong faces in {len(wrong)} groups")
    shared = set.intersection(*(set(wrong) for wrong in groups.values()))
    print(f"wrong in every run: {len(shared)} groups (wrong faces per run)")
    for subject, label in sorted(shared):
        counts = " ".join(str(wrong[subject, label]) for wrong in groups.values())
        print(f"  {subject} {label}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
