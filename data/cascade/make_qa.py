#!/usr/bin/env python3
"""Writes qa.jsonl: short questions with one reference answer each, for measuring how well a
small model's own token logprobs separate its right answers from its wrong ones
(`slmgate cascade signals`). Deterministic (seed 7). Three kinds, so the set has both answers
a 135M model gets right and ones it gets wrong:
  - two-number addition and multiplication (computed here);
  - capitals of countries (a fixed list written for this file);
  - the opposite of a common adjective (a fixed list written for this file).
"""

import json
import random
from pathlib import Path

CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "China": "Beijing", "Russia": "Moscow", "Egypt": "Cairo", "Canada": "Ottawa",
    "Australia": "Canberra", "Brazil": "Brasilia", "Argentina": "Buenos Aires", "Kenya": "Nairobi",
    "India": "New Delhi", "Portugal": "Lisbon", "Greece": "Athens", "Norway": "Oslo",
    "Sweden": "Stockholm", "Finland": "Helsinki", "Poland": "Warsaw", "Austria": "Vienna",
    "Hungary": "Budapest", "Ireland": "Dublin", "Mexico": "Mexico City", "Peru": "Lima",
    "Chile": "Santiago", "Colombia": "Bogota", "Turkey": "Ankara", "Iran": "Tehran",
    "Thailand": "Bangkok", "Vietnam": "Hanoi", "Indonesia": "Jakarta", "Nigeria": "Abuja",
    "Morocco": "Rabat", "Denmark": "Copenhagen", "Belgium": "Brussels", "Netherlands": "Amsterdam",
    "Switzerland": "Bern", "Czechia": "Prague", "Romania": "Bucharest", "Ukraine": "Kyiv",
    "South Korea": "Seoul", "Philippines": "Manila", "Pakistan": "Islamabad", "Cuba": "Havana",
    "New Zealand": "Wellington", "Iceland": "Reykjavik", "Ethiopia": "Addis Ababa",
    "Saudi Arabia": "Riyadh", "Bulgaria": "Sofia",
}
OPPOSITES = {
    "hot": "cold", "big": "small", "fast": "slow", "happy": "sad", "light": "dark", "old": "young",
    "tall": "short", "rich": "poor", "strong": "weak", "early": "late", "hard": "soft",
    "full": "empty", "open": "closed", "wet": "dry", "loud": "quiet", "clean": "dirty",
    "thick": "thin", "heavy": "light", "high": "low", "true": "false", "good": "bad",
    "near": "far", "cheap": "expensive", "safe": "dangerous", "wide": "narrow",
}


def main():
    rng = random.Random(7)
    rows = []
    for i in range(120):
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        if i % 2:
            rows.append({"prompt": f"What is {a} + {b}? Answer with the number only.", "reference": str(a + b),
                         "tags": {"kind": "addition"}})
        else:
            a, b = rng.randint(2, 12), rng.randint(2, 12)
            rows.append({"prompt": f"What is {a} times {b}? Answer with the number only.", "reference": str(a * b),
                         "tags": {"kind": "multiplication"}})
    for country, city in CAPITALS.items():
        rows.append({"prompt": f"What is the capital of {country}?", "reference": city, "tags": {"kind": "capital"}})
    for word, opp in OPPOSITES.items():
        rows.append({"prompt": f"What is the opposite of '{word}'? Answer with one word.", "reference": opp,
                     "tags": {"kind": "opposite"}})
    out = Path(__file__).with_name("qa.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} questions written to {out}")


if __name__ == "__main__":
    main()
