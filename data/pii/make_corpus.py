"""Builds data/pii/corpus.jsonl: labelled sentences for measuring slmgate's PII detector.

Each line: {"text": ..., "pii": [{"type": ..., "value": ...}]}. Values are synthetic but
valid (Luhn-checked cards, mod-97 IBANs, SSN area rules) and written in the formats people
actually type; about half the lines are hard negatives (order and tracking numbers, dates,
times, versions, invoice ids, UUIDs, hashes, prices, ISBNs). Deterministic (seeded).
Written for slmgate; no third-party data. Run: python3 data/pii/make_corpus.py
"""

import json
import random
import string
from pathlib import Path

R = random.Random(20261122)


def luhn_complete(prefix, length):
    digits = [int(c) for c in prefix]
    while len(digits) < length - 1:
        digits.append(R.randrange(10))
    for check in range(10):
        ds = digits + [check]
        s = 0
        for i, d in enumerate(reversed(ds)):
            if i % 2 == 1:
                d *= 2
                if d > 9:
                    d -= 9
            s += d
        if s % 10 == 0:
            return "".join(map(str, ds))


def luhn_fail(prefix, length):
    good = luhn_complete(prefix, length)
    return good[:-1] + str((int(good[-1]) + 1 + R.randrange(8)) % 10)


def card():
    kind = R.choice(["visa", "mc", "amex", "disc"])
    if kind == "amex":
        n = luhn_complete(R.choice(["34", "37"]), 15)
        return R.choice([n, f"{n[:4]} {n[4:10]} {n[10:]}", f"{n[:4]}-{n[4:10]}-{n[10:]}"])
    prefix = {"visa": "4", "mc": str(R.randint(51, 55)), "disc": "6011"}[kind]
    n = luhn_complete(prefix, 16)
    sep = R.choice(["", " ", "-"])
    return sep.join(n[i:i + 4] for i in range(0, 16, 4))


IBAN_LEN = {"DE": 22, "GB": 22, "FR": 27, "NL": 18, "ES": 24, "IT": 27, "BE": 16, "CH": 21}


def iban():
    cc = R.choice(list(IBAN_LEN))
    n = IBAN_LEN[cc] - 4
    if cc == "GB":
        bban = "".join(R.choice(string.ascii_uppercase) for _ in range(4)) + "".join(R.choice(string.digits) for _ in range(n - 4))
    elif cc == "NL":
        bban = "".join(R.choice(string.ascii_uppercase) for _ in range(4)) + "".join(R.choice(string.digits) for _ in range(n - 4))
    else:
        bban = "".join(R.choice(string.digits) for _ in range(n))
    num = "".join(str(int(c, 36)) for c in bban + cc + "00")
    check = 98 - int(num) % 97
    s = f"{cc}{check:02d}{bban}"
    return R.choice([s, " ".join(s[i:i + 4] for i in range(0, len(s), 4))])


def ssn():
    area = R.choice([x for x in range(1, 900) if x != 666])
    return f"{area:03d}-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}"


def email():
    first = R.choice(["jane", "omar", "li", "maria", "k.tanaka", "j_smith", "anna-lena", "ops+alerts"])
    last = R.choice(["doe", "haddad", "wei", "garcia", "", "99"])
    dom = R.choice(["example.com", "corp.example.co.uk", "mail.example.org", "EXAMPLE.DE", "uni-example.edu"])
    local = f"{first}.{last}" if last else first
    return local + "@" + dom


def phone():
    return R.choice([
        f"+1 {R.randint(201, 989)} 555 {R.randint(100, 9999):04d}",
        f"+1-{R.randint(201, 989)}-555-{R.randint(100, 9999):04d}",
        f"({R.randint(201, 989)}) 555-{R.randint(100, 9999):04d}",
        f"{R.randint(201, 989)}-555-{R.randint(100, 9999):04d}",
        f"{R.randint(201, 989)}.555.{R.randint(100, 9999):04d}",
        f"+44 20 7946 {R.randint(0, 9999):04d}",
        f"+44 7700 900{R.randint(0, 999):03d}",
        f"07700 900{R.randint(0, 999):03d}",
        f"020 7946 {R.randint(0, 9999):04d}",
        f"+49 30 {R.randint(1000000, 9999999)}",
        f"030 {R.randint(1000000, 9999999)}",
        f"+33 6 {R.randint(10, 99)} {R.randint(10, 99)} {R.randint(10, 99)} {R.randint(10, 99)}",
        f"06 {R.randint(10, 99)} {R.randint(10, 99)} {R.randint(10, 99)} {R.randint(10, 99)}",
        f"+91 98{R.randint(100, 999)} {R.randint(10000, 99999)}",
        f"+81 3-{R.randint(1000, 9999)}-{R.randint(1000, 9999)}",
        f"+61 2 {R.randint(1000, 9999)} {R.randint(1000, 9999)}",
        f"+4930{R.randint(1000000, 9999999)}",
    ])


def ipv4():
    return f"{R.randint(11, 223)}.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"


def ipv6():
    groups = [f"{R.randint(0, 0xffff):x}" for _ in range(8)]
    return R.choice([":".join(groups), f"2001:db8::{groups[0]}:{groups[1]}", f"fe80::{groups[2]}:{groups[3]}:{groups[4]}"])


def token(n, alphabet=string.ascii_letters + string.digits):
    return "".join(R.choice(alphabet) for _ in range(n))


def secret():
    return R.choice([
        "AKIA" + token(16, string.ascii_uppercase + string.digits),
        "ghp_" + token(36),
        "sk-proj-" + token(40),
        "xoxb-" + token(12, string.digits) + "-" + token(24),
        "AIza" + token(35, string.ascii_letters + string.digits + "_-"),
        "eyJhbGciOiJIUzI1NiJ9." + token(30) + "." + token(43),
        "-----BEGIN RSA PRIVATE KEY-----\n" + token(64) + "\n-----END RSA PRIVATE KEY-----",
        "password=" + token(14),
        "Bearer " + token(32),
    ])


GEN = {"email": email, "phone": phone, "card": card, "iban": iban, "ssn": ssn, "ipv4": ipv4, "ipv6": ipv6, "secret": secret}
TEMPLATES = [
    "Please update my record: {}.",
    "Customer wrote: reach me at {} after 5pm.",
    "{} is the one on file, can you confirm?",
    "Ticket #{n}: user provided {} for verification.",
    "Hi team, forwarding {} as requested. Thanks!",
    "Is {} valid? The form keeps rejecting it.",
    "Notes from the call ({d}): {}; follow up next week.",
    "Config dump:\n{}\nend of dump",
]

NEGATIVES = [
    lambda: f"Order #{R.randint(10**7, 10**9)} shipped on 2024-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}.",
    lambda: f"Tracking number {luhn_fail('1', 16)} is still in transit.",
    lambda: f"Reference {R.randint(10**15, 10**16 - 1)} has no match in the ledger.",
    lambda: f"Upgrade to version {R.randint(1, 20)}.{R.randint(0, 30)}.{R.randint(0, 99)} before {R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d} today.",
    lambda: f"Invoice INV-{R.randint(2019, 2026)}-{R.randint(0, 999999):06d}, total {R.randint(1, 9)},{R.randint(100, 999)}.{R.randint(10, 99)} EUR.",
    lambda: f"Build {R.randint(20200101, 20261231)}.{R.randint(1, 9)} passed; commit {token(40, '0123456789abcdef')}.",
    lambda: f"Request id {token(8, '0123456789abcdef')}-{token(4, '0123456789abcdef')}-4{token(3, '0123456789abcdef')}-a{token(3, '0123456789abcdef')}-{token(12, '0123456789abcdef')} failed.",
    lambda: f"ISBN 978-{R.randint(0, 9)}-{R.randint(10, 99)}-{R.randint(100000, 999999)}-{R.randint(0, 9)} is out of stock.",
    lambda: f"Meeting on {R.randint(1, 28)}/{R.randint(1, 12)}/{R.randint(2020, 2026)} in room {R.randint(100, 999)}.",
    lambda: f"The ratio is {R.random():.5f} and pi is about 3.14159.",
    lambda: f"Customer id {R.randint(10**8, 10**9 - 1)} asked about the risk-free rate of {R.randint(1, 6)}.{R.randint(0, 99)}%.",
    lambda: f"Card ending in {R.randint(1000, 9999)} was declined; amount {R.randint(10, 999)}.00.",
    lambda: f"Use the sk- prefix for keys and the AKIA prefix for AWS ids; never paste them here.",
    lambda: f"Schedule: 09:00-10:30, 11:15-12:00, {R.randint(13, 17)}:00-{R.randint(17, 19)}:30.",
    lambda: f"Part numbers {R.randint(100, 999)}-{R.randint(10, 99)}-{R.randint(1000, 9999)}X and {R.randint(1000, 9999)}-{R.randint(100, 999)} are discontinued.",
    lambda: f"Coordinates 48.{R.randint(1000, 9999)}, 2.{R.randint(1000, 9999)} mark the depot.",
    lambda: f"The email field must contain an @ and a domain; e.g. user at example dot com is invalid.",
    lambda: R.choice(["The service listens on 127.0.0.1:8080 and ::1 port 8080.", "Bind to 0.0.0.0 or [::1] for local tests."]),
    lambda: f"Release notes for {R.randint(1, 9)}.{R.randint(0, 9)}.{R.randint(0, 9)}.{R.randint(0, 99)} (build tag) are attached.",
]


def main():
    rows = []
    for kind, gen in GEN.items():
        for _ in range(40):
            value = gen()
            t = R.choice(TEMPLATES)
            text = t.replace("{n}", str(R.randint(1000, 99999))).replace("{d}", f"2025-0{R.randint(1, 9)}-1{R.randint(0, 9)}").format(value)
            rows.append({"text": text, "pii": [{"type": kind, "value": value}]})
    for _ in range(60):  # two types in one message
        a, b = R.sample(list(GEN), 2)
        va, vb = GEN[a](), GEN[b]()
        rows.append({"text": f"Contact: {va}; backup: {vb}.", "pii": [{"type": a, "value": va}, {"type": b, "value": vb}]})
    for _ in range(360):
        rows.append({"text": R.choice(NEGATIVES)(), "pii": []})
    R.shuffle(rows)
    out = Path(__file__).with_name("corpus.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} rows -> {out}")


if __name__ == "__main__":
    main()
