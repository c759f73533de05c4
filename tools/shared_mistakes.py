"""Which (subject, label) groups several ``attnfer cv`` runs get wrong, and which they share.

On CK+ a group is one sequence (its last three frames): whether two recipes differ in their
mistakes or only in their noise shows in how many wrong sequences they share.

    python tools/shared_mistakes.py runs/ckplus_lr0003 runs/ckplus_e10

With ``--plot PNG`` it also draws every run's folds and mean (``--target``: a paper's figure,
in %). Reads each run folder's cv.json and cv_test.json (``attnfer cv`` run again on a folder
rescored before 2026-12-03 adds the subjects to it, reusing its folds).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from attnfer.train.plots import plot_cv_runs


def wrong_groups(run: Path) -> Counter[tuple[str, str]]:
    """Wrong faces per (subject, true label) in ``run``'s pooled cv report."""
    errors = json.loads((run / "cv_test.json").read_text()).get("errors")
    if errors is None or any("subject" not in e for e in errors):
        raise ValueError(f"{run}/cv_test.json: no errors by subject; run `attnfer cv` again")
    return Counter((e["subject"], e["label"]) for e in errors)


def fold_accuracies(run: Path) -> list[float]:
    """Test accuracy of each fold in ``run``'s cv.json."""
    accuracies = json.loads((run / "cv.json").read_text()).get("accuracies")
    if not accuracies:
        raise ValueError(f"{run}/cv.json: no fold accuracies")
    return accuracies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="attnfer cv run folders")
    parser.add_argument("--plot", type=Path, help="PNG of every run's folds and mean")
    parser.add_argument("--target", type=float, help="a line on the plot at this accuracy (%%)")
    args = parser.parse_args(argv)
    try:
        groups = {run: wrong_groups(run) for run in args.runs}
        if args.plot:
            folds = {str(run): fold_accuracies(run) for run in args.runs}
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
    if args.plot:
        target = None if args.target is None else args.target / 100
        print(f"wrote {plot_cv_runs(folds, args.plot, target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
