#!/usr/bin/env python3
"""Writes the quickstart datasets about capital cities (deterministic, seeded):

- capitals_text.jsonl: plain sentences stating each fact in several ways (the "pretraining" text
  that gives the small base model its knowledge and some language);
- capitals_train.jsonl / capitals_eval.jsonl: chat questions in six phrasings. For each country
  one phrasing is held out for eval, so the eval asks known facts in words the model never saw
  them asked in during finetuning.
- capitals_pref_train.jsonl / capitals_pref_eval.jsonl: the same questions as preference pairs
  for DPO (TRL's conversational form): an answer in a full sentence ("The capital of Japan is
  Tokyo.") chosen over the bare name the SFT data taught, or over a sentence naming another
  country's capital.

Run from the repository root: python3 recipes/data/make_capitals.py recipes/data
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


STATEMENTS = [
    "The capital of {0} is {1}.",
    "{1} is the capital of {0}.",
    "{1} is the capital city of {0}.",
    "The capital city of {0} is {1}.",
    "In {0}, the capital is {1}.",
]


def main(out_dir):
    rng = random.Random(1234)
    text = []
    for _ in range(6):
        for country, city in CAPITALS:
            text.append(rng.choice(STATEMENTS).format(country, city) + " " +
                        rng.choice(STATEMENTS).format(*rng.choice(CAPITALS)))
    rng.shuffle(text)
    with open(f"{out_dir}/capitals_text.jsonl", "w") as f:
        for t in text:
            f.write(json.dumps({"text": t}) + "\n")
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
    prng = random.Random(99)  # its own stream: the files above stay as they were
    cities = [city for _, city in CAPITALS]
    for name, rows in (("capitals_pref_train.jsonl", train), ("capitals_pref_eval.jsonl", held_out)):
        with open(f"{out_dir}/{name}", "w") as f:
            for r in rows:
                user, reply = r["messages"]
                city = reply["content"]
                country = next(c for c, k in CAPITALS if k == city)
                wrong = prng.choice([c for c in cities if c != city])
                rejected = city if prng.random() < 0.75 else f"The capital of {country} is {wrong}."
                f.write(json.dumps({"prompt": [user],
                                    "chosen": [{"role": "assistant", "content": f"The capital of {country} is {city}."}],
                                    "rejected": [{"role": "assistant", "content": rejected}]}) + "\n")

    # GRPO's prompts (recipes/grpo_quickstart.yaml): the questions alone, the capital to check against.
    for name, rows in (("capitals_prompts_train.jsonl", train), ("capitals_prompts_eval.jsonl", held_out)):
        with open(f"{out_dir}/{name}", "w") as f:
            for r in rows:
                user, reply = r["messages"]
                f.write(json.dumps({"prompt": [user], "answer": reply["content"]}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
