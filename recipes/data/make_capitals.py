#!/usr/bin/env python3
"""Writes the quickstart dataset: chat questions about capital cities, in six phrasings.

For each country one phrasing is held out for eval, so the eval asks known facts in words the
model never saw them asked in. Deterministic (seeded); run from the repository root:
    python3 recipes/data/make_capitals.py recipes/data
"""
import json
import random
import sys

CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Portugal", "Lisbon"), ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Hungary", "Budapest"),
    ("Greece", "Athens"), ("Sweden", "Stockholm"), ("Norway", "Oslo"), ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"), ("Ireland", "Dublin"), ("Japan", "Tokyo"), ("China", "Beijing"),
    ("India", "New Delhi"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Peru", "Lima"),
    ("Chile", "Santiago"), ("Canada", "Ottawa"), ("Mexico", "Mexico City"), ("Cuba", "Havana"),
]
PHRASINGS = [
    "What is the capital of {}?",
    "Name the capital city of {}.",
    "Which city is the capital of {}?",
    "Tell me the capital of {}.",
    "{}: what is its capital?",
    "What city serves as the capital of {}?",
]


def main(out_dir):
    rng = random.Random(1234)
    train, held_out = [], []
    for country, city in CAPITALS:
        hold = rng.randrange(len(PHRASINGS))
        for i, p in enumerate(PHRASINGS):
            row = {"messages": [{"role": "user", "content": p.format(country)},
                                {"role": "assistant", "content": city}]}
            (held_out if i == hold else train).append(row)
    rng.shuffle(train)
    for name, rows in (("capitals_train.jsonl", train), ("capitals_eval.jsonl", held_out)):
        with open(f"{out_dir}/{name}", "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
