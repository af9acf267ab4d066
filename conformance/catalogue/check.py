#!/usr/bin/env python3
"""Validate the MQTT statement catalogues against the standards' statement lists.

Usage: python3 conformance/catalogue/check.py [SPEC_DIR]

SPEC_DIR holds statements-v3.1.1.json and statements-v5.0.json (lists of {id, text});
it defaults to $MQTT_SPEC_DIR or /work/shared/spec. Exits non-zero on any error.
"""
import difflib
import json
import os
import re
import sys
import tomllib
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC_DIR = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MQTT_SPEC_DIR", "/work/shared/spec"))

VERSIONS = [("3.1.1", "v3.1.1.toml", "statements-v3.1.1.json"),
            ("5.0", "v5.0.toml", "statements-v5.0.json")]

KEYS = {"id", "level", "binds", "observable", "section", "topic", "summary"}
# Statements binding the client (or both sides) also say whether a test server can observe them.
CLIENT_KEYS = KEYS | {"client_observable"}
LEVELS = {"MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY"}
BINDS = {"client", "server", "both"}
TOPICS = {"connect", "connack", "publish", "qos", "retain", "wildcard", "topic", "keepalive", "will",
          "session", "subscribe", "unsubscribe", "ping", "disconnect", "auth", "malformed",
          "properties", "flow-control", "topic-alias", "expiry", "shared-subscription",
          "request-response", "utf8", "packet-id", "general"}
MAX_SUMMARY = 120
SIMILARITY_LIMIT = 0.75  # summaries this close to the standard's sentence count as copied

# Statements whose text has no RFC 2119 keyword; level was decided from the surrounding body text.
NO_KEYWORD = {("3.1.1", "MQTT-2.3.1-4"), ("5.0", "MQTT-3.1.2-12"), ("5.0", "MQTT-3.8.3-4")}
# Statements whose section differs from the number encoded in the id (checked to the body text).
SECTION_EXCEPTIONS = {("3.1.1", "MQTT-3.1.2.7"): "3.1.2", ("3.1.1", "MQTT-3-8.3-4"): "3.8.3",
                      ("5.0", "MQTT-4.1.0-1"): "4.1.1", ("5.0", "MQTT-4.1.0-2"): "4.1.1",
                      ("5.0", "MQTT-4.7.0-1"): "4.7.1"}

KW = re.compile(r"\b(MUST NOT|MUST|REQUIRED|SHALL NOT|SHALL|SHOULD NOT|SHOULD|RECOMMENDED|MAY|OPTIONAL)\b")
KW_NORM = {"REQUIRED": "MUST", "SHALL": "MUST", "SHALL NOT": "MUST NOT",
           "RECOMMENDED": "SHOULD", "OPTIONAL": "MAY"}
RANK = {"MUST": 3, "MUST NOT": 3, "SHOULD": 2, "SHOULD NOT": 2, "MAY": 1}


def expected_section(sid):
    body = sid[len("MQTT-"):].rsplit("-", 1)[0]
    parts = body.split(".")
    while len(parts) > 1 and parts[-1] == "0":
        parts.pop()
    return ".".join(parts)


def check_version(ver, toml_name, json_name, errors, warnings):
    statements = json.loads((SPEC_DIR / json_name).read_text(encoding="utf-8"))
    texts = {s["id"]: s["text"] for s in statements}
    if len(texts) != len(statements):
        errors.append(f"{json_name}: duplicate ids in the source list")
    with open(HERE / toml_name, "rb") as fh:
        doc = tomllib.load(fh)
    if set(doc) != {"statement"}:
        errors.append(f"{toml_name}: unexpected top-level keys {sorted(set(doc) - {'statement'})}")
    entries = doc.get("statement", [])

    def err(msg):
        errors.append(f"{toml_name}: {msg}")

    counts = Counter(e.get("id") for e in entries)
    for sid in texts:
        if counts[sid] == 0:
            err(f"missing id {sid}")
        elif counts[sid] > 1:
            err(f"id {sid} appears {counts[sid]} times")
    for sid in counts:
        if sid not in texts:
            err(f"unknown id {sid!r}")
    listed = [e.get("id") for e in entries if e.get("id") in texts]
    if listed != [s["id"] for s in statements if counts[s["id"]] == 1]:
        warnings.append(f"{toml_name}: statements are not in the standard's order")

    for e in entries:
        sid = e.get("id", "<no id>")
        keys = CLIENT_KEYS if e.get("binds") in ("client", "both") else KEYS
        if set(e) != keys:
            err(f"{sid}: keys {sorted(set(e))} differ from {sorted(keys)}")
            continue
        if "client_observable" in e and not isinstance(e["client_observable"], bool):
            err(f"{sid}: client_observable must be a boolean")
        if e["level"] not in LEVELS:
            err(f"{sid}: bad level {e['level']!r}")
        if e["binds"] not in BINDS:
            err(f"{sid}: bad binds {e['binds']!r}")
        if not isinstance(e["observable"], bool):
            err(f"{sid}: observable must be a boolean")
        if e["topic"] not in TOPICS:
            err(f"{sid}: bad topic {e['topic']!r}")
        if not isinstance(e["section"], str) or not re.fullmatch(r"\d+(\.\d+)*", e["section"]):
            err(f"{sid}: bad section {e['section']!r}")
        elif sid in texts:
            want = SECTION_EXCEPTIONS.get((ver, sid), expected_section(sid))
            if e["section"] != want:
                err(f"{sid}: section {e['section']!r}, expected {want!r}")
        summary = e["summary"]
        if not isinstance(summary, str) or not summary.strip():
            err(f"{sid}: empty summary")
            continue
        if "\n" in summary or summary != summary.strip():
            err(f"{sid}: summary must be a single trimmed line")
        if len(summary) > MAX_SUMMARY:
            err(f"{sid}: summary is {len(summary)} chars (max {MAX_SUMMARY})")
        if sid not in texts:
            continue
        text = texts[sid]
        if summary.strip().lower() == text.strip().lower():
            err(f"{sid}: summary is identical to the standard's text")
        ratio = difflib.SequenceMatcher(None, summary.lower(), text.lower()).ratio()
        if ratio >= SIMILARITY_LIMIT:
            err(f"{sid}: summary too close to the standard's text (similarity {ratio:.2f})")
        # level must agree with the keywords of the statement text
        kws = [KW_NORM.get(k, k) for k in KW.findall(text)]
        if not kws:
            if (ver, sid) not in NO_KEYWORD:
                err(f"{sid}: text has no keyword; add to NO_KEYWORD once the level is checked")
        else:
            if e["level"] not in kws:
                err(f"{sid}: level {e['level']} does not occur in the text ({kws})")
            elif RANK[e["level"]] < max(RANK[k] for k in kws):
                err(f"{sid}: level {e['level']} is weaker than a keyword in the text ({kws})")
    return entries


def main():
    errors, warnings, summary = [], [], []
    for ver, toml_name, json_name in VERSIONS:
        entries = check_version(ver, toml_name, json_name, errors, warnings)
        good = [e for e in entries if set(e) in (KEYS, CLIENT_KEYS)]
        client_side = [e for e in good if e["binds"] in ("client", "both")]
        obs = [e for e in good if e["observable"] is True]
        obs_server = [e for e in obs if e["binds"] == "server"]
        binds = Counter(e["binds"] for e in good)
        levels = Counter(e["level"] for e in good)
        summary.append(
            f"MQTT {ver}: {len(entries)} statements; observable {len(obs)} "
            f"(binds server {len(obs_server)}, both {sum(e['binds'] == 'both' for e in obs)}, "
            f"client {sum(e['binds'] == 'client' for e in obs)}); "
            f"binds {dict(sorted(binds.items()))}; levels {dict(sorted(levels.items()))}; "
            f"client side {len(client_side)}, observable by a server "
            f"{sum(e['client_observable'] is True for e in client_side)}")
    for w in warnings:
        print("warning:", w)
    for e in errors:
        print("error:", e)
    for line in summary:
        print(line)
    if errors:
        print(f"FAILED: {len(errors)} error(s)")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
