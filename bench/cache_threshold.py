#!/usr/bin/env python3
"""How the semantic cache's threshold separates paraphrases (should hit) from near misses
(same words, another question: should not), with the MiniLM embedding the cache uses, taken
from a running gateway's /v1/embeddings.

    .venv/bin/python bench/cache_threshold.py --url http://127.0.0.1:8080

Prints the cosine of each pair, then for each threshold the share of paraphrases that would
hit (recall) and of near misses that would wrongly hit (false hits).
"""

import argparse

import httpx

PARAPHRASES = [
    ("How do I reset my password?", "How can I reset my password?"),
    ("What are your opening hours?", "What are your opening times?"),
    ("How do I cancel my subscription?", "How can I cancel my subscription?"),
    ("Where is my order?", "Where is my order right now?"),
    ("Can I get a refund?", "Is it possible to get a refund?"),
    ("How do I change my email address?", "How can I change my email address?"),
    ("Do you ship to Canada?", "Do you deliver to Canada?"),
    ("What is the return policy?", "What's your return policy?"),
    ("How long does shipping take?", "How long does delivery take?"),
    ("How do I contact support?", "How can I contact customer support?"),
    ("Is there a student discount?", "Do you offer a student discount?"),
    ("How do I update my billing address?", "How can I update my billing address?"),
    ("What payment methods do you accept?", "Which payment methods do you accept?"),
    ("How do I delete my account?", "How can I delete my account?"),
    ("Why was my card declined?", "Why did my card get declined?"),
    ("Can I change my delivery date?", "Is it possible to change my delivery date?"),
]

NEAR_MISSES = [
    ("How do I reset my password?", "How do I reset my router?"),
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("How do I cancel my subscription?", "How do I renew my subscription?"),
    ("Do you ship to Canada?", "Do you ship to Mexico?"),
    ("How do I change my email address?", "How do I change my username?"),
    ("What are your opening hours?", "What are your closing hours?"),
    ("Can I get a refund?", "Can I get an invoice?"),
    ("How long does shipping take?", "How much does shipping cost?"),
    ("Is there a student discount?", "Is there a senior discount?"),
    ("How do I delete my account?", "How do I create an account?"),
    ("What is 12 times 7?", "What is 12 times 8?"),
    ("Translate 'hello' into French.", "Translate 'hello' into Spanish."),
    ("Summarise this email in one line.", "Summarise this email in three lines."),
    ("Why was my card declined?", "Why was my card charged twice?"),
    ("Can I change my delivery date?", "Can I change my delivery address?"),
    ("Which plan includes SSO?", "Which plan includes audit logs?"),
]


def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / ((sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--key", default=None)
    a = ap.parse_args()
    headers = {"authorization": f"Bearer {a.key}"} if a.key else {}
    texts = sorted({t for p in PARAPHRASES + NEAR_MISSES for t in p})
    r = httpx.post(a.url + "/v1/embeddings", headers=headers, timeout=120,
                   json={"model": "all-minilm-l6-v2", "input": texts}).json()
    vec = {t: d["embedding"] for t, d in zip(texts, r["data"])}
    para = [cos(vec[x], vec[y]) for x, y in PARAPHRASES]
    near = [cos(vec[x], vec[y]) for x, y in NEAR_MISSES]
    print(f"paraphrases: min {min(para):.3f}  median {sorted(para)[len(para) // 2]:.3f}")
    print(f"near misses: max {max(near):.3f}  median {sorted(near)[len(near) // 2]:.3f}")
    for (x, y), s in sorted(zip(NEAR_MISSES, near), key=lambda p: -p[1])[:4]:
        print(f"  near miss {s:.3f}: {x!r} / {y!r}")
    for (x, y), s in sorted(zip(PARAPHRASES, para), key=lambda p: p[1])[:4]:
        print(f"  paraphrase {s:.3f}: {x!r} / {y!r}")
    print("\n| threshold | paraphrases that hit | near misses that hit |\n|---|---|---|")
    for t in [0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96]:
        hit = sum(s >= t for s in para)
        wrong = sum(s >= t for s in near)
        print(f"| {t:.2f} | {hit}/{len(para)} | {wrong}/{len(near)} |")


if __name__ == "__main__":
    main()
