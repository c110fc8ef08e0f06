#!/usr/bin/env python3
"""Counts the statements a server logged (RUST_LOG=info,sqlx::query=debug,
SWITCHBOARD_LOG_FORMAT=json) within each webhook phase of a bench results file, by kind.

usage: count_statements.py results.json node0.log [node1.log ...]
"""
import json
import re
import sys
from collections import Counter
from datetime import datetime


def kind(sql):
    s = " ".join(sql.split())
    rules = [
        ("BEGIN", r"^BEGIN"), ("COMMIT", r"^COMMIT"), ("ROLLBACK", r"^ROLLBACK"),
        ("claim (UPDATE deliveries … SKIP LOCKED)", r"^UPDATE deliveries SET lease_until"),
        ("claim: integrations", r'^SELECT .* FROM "integrations"'),
        ("claim: copies", r"^SELECT l\.delivery_id"),
        ("claim: properties", r"^SELECT id, properties FROM conversations"),
        ("append: conversations active", r"^UPDATE conversations SET last_activity"),
        ("append: lock hub clocks", r"^SELECT hub_id, last_event_id FROM hub_clocks"),
        ("append: write hub clocks", r"^INSERT INTO hub_clocks"),
        ("append: insert activities", r'^INSERT INTO "activities"'),
        ("append: lock stream heads", r"^SELECT integration_id, conversation_id FROM deliveries"),
        ("append: insert deliveries", r'^INSERT INTO "deliveries"'),
        ("append: insert delivery links", r'^INSERT INTO "delivery_activities"'),
        ("settle: lock deliveries", r"^SELECT id FROM deliveries WHERE id IN"),
        ("settle: succeeded", r"^UPDATE deliveries SET attempt_count"),
        ("settle: next heads", r"^UPDATE deliveries SET head = TRUE"),
        ("settle: insert attempts", r'^INSERT INTO "delivery_attempts"'),
        ("read: conversation", r'^SELECT .* FROM "conversations"'),
    ]
    for name, rx in rules:
        if re.search(rx, s):
            return name
    return "other: " + s[:70]


def main():
    results = json.load(open(sys.argv[1]))
    phases = []
    for sc in results["scenarios"]:
        if sc["scenario"] != "webhook":
            continue
        for p in sc["phases"]:
            w = p.get("window_unix_ms")
            if w:
                phases.append((p["name"], w[0], w[1], p["count"], p.get("postgres", {})))
    counts = {name: Counter() for name, *_ in phases}
    for path in sys.argv[2:]:
        for line in open(path, errors="replace"):
            if '"sqlx::query"' not in line:
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue
            ts = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp() * 1000
            f = e.get("fields", {})
            sql = f.get("db.statement") or f.get("summary") or ""
            for name, a, b, _, _ in phases:
                if a <= ts <= b:
                    counts[name][kind(sql)] += 1
    for name, a, b, n, pg in phases:
        total = sum(counts[name].values())
        print(f"## phase {name}: {n} deliveries, {(b - a) / 1000:.1f} s, {total} statements, "
              f"{total / max(n, 1):.2f} per delivery")
        if pg:
            print("pg_stat_database per delivery: " + ", ".join(
                f"{k[:-12]} {v}" for k, v in pg.items() if k.endswith("_per_message")))
        print("| statement | count | per delivery |\n|---|--:|--:|")
        for k, c in counts[name].most_common():
            print(f"| {k} | {c} | {c / max(n, 1):.3f} |")
        print()


main()
