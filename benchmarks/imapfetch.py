"""Baseline 2: imapclient's ``fetch`` of the scan's items, with no further work.

Same folders, same batches, same text sections as the scan (from the plan made by
:mod:`benchmarks.plan`), through imapclient's public API: ``fetch`` parses every
response into Python objects, and the results are dropped.

    python -m benchmarks.imapfetch --host H --port P --user U --plan plan.json
    (password in $BENCH_IMAP_PASSWORD; prints a JSON line)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import imapclient


def run(host: str, port: int, user: str, password: str, plan: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    c = imapclient.IMAPClient(host, port=port, ssl=False, timeout=600)
    c.login(user, password)
    t_login = time.perf_counter()
    if plan["condstore"]:
        c.enable("CONDSTORE")
    c.list_folders()
    items = plan["header_items"]
    fetched = texts = 0
    for folder in plan["folders"]:
        c.select_folder(folder["folder"], readonly=True)
        c.search(["UID", f"{folder['after'] + 1}:*"])
        for batch in folder["batches"]:
            fetched += len(c.fetch(batch["uids"], items))
            if batch.get("parts"):
                c.fetch(batch["parts"], plan["part_items"])
            if batch.get("structure"):
                c.fetch(batch["structure"], ["BODYSTRUCTURE"])
            for t in batch["texts"]:
                item = f"BODY.PEEK[{t['section']}]<0.{plan['text_limit']}>"
                texts += len(c.fetch(t["uids"], [item]))
    if plan["drafts"]:
        c.select_folder(plan["drafts"], readonly=True)
    t_done = time.perf_counter()
    c.logout()
    return {
        "seconds": time.perf_counter() - t0,
        "login_seconds": t_login - t0,
        "commands_seconds": t_done - t_login,
        "messages": fetched,
        "texts": texts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--plan", type=Path, required=True)
    args = ap.parse_args()
    plan = json.loads(args.plan.read_text())
    print(json.dumps(run(args.host, args.port, args.user, os.environ["BENCH_IMAP_PASSWORD"], plan)))


if __name__ == "__main__":
    main()
