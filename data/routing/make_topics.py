#!/usr/bin/env python3
"""Writes gsm8k-topics.jsonl: the GSM8K outcomes (gsm8k.jsonl, beside this file) with a
`topic` tag per prompt, for measuring a router on requests that carry a category.

The topic is the first of these that the prompt's words match (case-insensitive), else
`counting`: money, time, distance, percent, fraction (the patterns below). It stands in for
the category tag an application sends (`metadata: {"topic": ...}`); it is derived from the
prompt's words only, never from the outcomes. Per topic, the strong model's mean gain over the
weak one runs from 0.19 to 0.37 (printed when the file is written), so the tag says a little
about the need for the strong model, and the text says more. Responses are left out (the
router learns from prompts); deterministic.
"""

import json
import re
from collections import defaultdict
from pathlib import Path

TOPICS = [
    ("money", r"\$|dollar|cents?\b|price|cost|pay|paid|earn|sell|sold|buy|bought|profit|salary|spend|spent"),
    ("time", r"\bhours?\b|\bminutes?\b|\bdays?\b|\bweeks?\b|\bmonths?\b|\byears?\b|\bold\b|\bage\b"),
    ("distance", r"\bmiles?\b|\bkm\b|kilomet|\bmeters?\b|\bfeet\b|\binch|speed|mph"),
    ("percent", r"%|percent"),
    ("fraction", r"\bhalf\b|third|quarter|\d+/\d+|fraction"),
]


def topic(prompt):
    for name, pattern in TOPICS:
        if re.search(pattern, prompt, re.I):
            return name
    return "counting"


def main():
    here = Path(__file__).parent
    rows = [json.loads(line) for line in (here / "gsm8k.jsonl").read_text().splitlines() if line.strip()]
    stats = defaultdict(lambda: [0, 0.0])
    out = []
    for r in rows:
        t = topic(r["prompt"])
        gain = r["outcomes"]["gpt-4-1106-preview"] - r["outcomes"]["mixtral-8x7b-instruct"]
        stats[t][0] += 1
        stats[t][1] += gain
        out.append({"id": r["id"], "prompt": r["prompt"], "outcomes": r["outcomes"],
                    "tags": {"benchmark": "gsm8k", "topic": t}})
    path = here / "gsm8k-topics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in out))
    for t, (n, g) in sorted(stats.items()):
        print(f"{t:<9} {n:>4} prompts   mean gain {g / n:.3f}")
    print(f"{len(out)} rows written to {path}")


if __name__ == "__main__":
    main()
