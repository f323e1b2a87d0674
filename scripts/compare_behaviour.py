"""Compare two folders written by scripts/same_behaviour.sh: metrics (to 1e-9) and predictions.

.venv/bin/python scripts/compare_behaviour.py BEFORE AFTER
"""

import collections
import json
import sys
from pathlib import Path

import pandas as pd


def main(before: Path, after: Path) -> None:
    ma = json.loads((before / "metrics.json").read_text())
    mb = json.loads((after / "metrics.json").read_text())
    print("runs only before:", sorted(set(ma) - set(mb)), "only after:", sorted(set(mb) - set(ma)))
    differ: collections.Counter[str] = collections.Counter()
    example: dict[str, tuple] = {}
    same = 0
    for run in sorted(set(ma) & set(mb)):
        for key in set(ma[run]) ^ set(mb[run]):
            label = f"only {'before' if key in ma[run] else 'after'}: {key}"
            differ[label] += 1
            example.setdefault(label, (run,))
        for key in set(ma[run]) & set(mb[run]):
            x, y = ma[run][key], mb[run][key]
            if abs(x - y) <= 1e-9 * max(1.0, abs(x)):
                same += 1
            else:
                differ[key] += 1
                example.setdefault(key, (run, x, y))
    print(f"metrics equal: {same}, differing: {sum(differ.values())}")
    for key, n in differ.most_common():
        print(f"  {n:4d} {key} e.g. {example[key]}")
    for fa in sorted(before.glob("pred_*.csv")):
        fb = after / fa.name
        if not fb.exists():
            print("missing", fb)
            continue
        pa, pb = pd.read_csv(fa), pd.read_csv(fb)
        if list(pa.columns) != list(pb.columns):
            print(fa.name, "columns differ")
            continue
        num = pa.select_dtypes("number").columns
        gap = (pa[num] - pb[num]).abs().max().max()
        same_warnings = (pa["warnings"].fillna("") == pb["warnings"].fillna("")).all()
        print(fa.name, "max abs diff", gap, "warnings equal", same_warnings)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
