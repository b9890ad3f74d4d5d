"""Benchmark of PII redaction: tokenmill's `PiiRedactor` against datatrove's `PIIFormatter`, same texts.

    python -m bench.bench_pii [--quick] [--pairs N]

Texts: every English document the build's stages make of ../shared/data/warc and
../shared/data/extraction/html (real crawled pages, extracted), the SMS Spam Collection messages
(real e-mail addresses) and the text of the Common Crawl WAT file (real IP addresses in crawl
metadata), 1 MB of each of the shared prose files; repeated to about 20 MB (5 MB with --quick).
Both redactors run with FineWeb's settings (e-mails and public IPv4 addresses, the same
replacements; tokenmill also looks for IPv6, which datatrove does not) in one process pinned to
one core (`taskset -c 0`, one thread), alternating tokenmill (A) and datatrove (B) for `--pairs`
pairs; the table gives the median of the per-pair ratios with the min-max. The counts of
replacements on the same texts show where the two disagree. datatrove runs from its own venv
(`bench/setup_datatrove.sh`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_dedup import _run_json, ensure_datatrove  # one way to run a pinned peer, not two
from bench.common import cpu_model, load_note, publish

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "pii.md"
SHARED = Path(os.environ.get("TOKENMILL_SHARED_DATA", REPO.parent / "shared" / "data"))

DATATROVE_SCRIPT = r'''
import json, sys, time
from datatrove.pipeline.formatters import PIIFormatter
texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8")]
pii = PIIFormatter()  # FineWeb's settings: e-mails and public IPv4 addresses
started = time.process_time()
out = [pii.format(t) for t in texts]
seconds = time.process_time() - started
def placeholders(text, names):
    return sum(text.count(name) for name in names)
emails = ("email@example.com", "firstname.lastname@example.org")
ips = ("22.214.171.124", "126.96.36.199", "188.8.131.52", "184.108.40.206", "220.127.116.11", "18.104.22.168")
print(json.dumps({"seconds": seconds, "chars": sum(map(len, texts)), "texts": len(texts),
                  "emails": sum(placeholders(o, emails) - placeholders(t, emails) for o, t in zip(out, texts)),
                  "ips": sum(placeholders(o, ips) - placeholders(t, ips) for o, t in zip(out, texts))}))
'''


def corpus_texts(shared: Path) -> list[str]:
    """The real texts the benchmark redacts (see the module doc)."""
    from bench.rule_choices import english_texts

    inputs = [str(p) for p in sorted((shared / "warc").glob("*.warc*.gz")) if ".wat." not in p.name]
    texts = [text for _, text in english_texts(inputs + [str(shared / "extraction" / "html")])[0]]
    sms = (shared / "quality" / "sms_spam_collection" / "SMSSpamCollection").read_text(errors="replace")
    texts += [line.split("\t", 1)[-1] for line in sms.splitlines()]
    with gzip.open(shared / "warc" / "cc-main-2024-22_whirlwind.warc.wat.gz", "rt", errors="replace") as wat:
        texts += wat.read().split("\r\n\r\n")
    for name in ("prose/wikitext2_valid.txt", "prose/tinyshakespeare.txt", "prose/gutenberg/pg14263_katrine.txt"):
        prose = (shared / name).read_text(encoding="utf-8", errors="replace")[:1_000_000]
        texts += prose.split("\n\n")
    return [t for t in texts if t.strip()]


def worker_tokenmill(path: str) -> dict:
    from pipeline.config import PiiConfig
    from pipeline.pii import PiiRedactor

    texts = [json.loads(line)["text"] for line in open(path, encoding="utf-8")]
    redactor = PiiRedactor(PiiConfig())
    redactor.redact("warm up a@example.com 8.8.8.8")
    started = time.process_time()
    out = [redactor.redact(t) for t in texts]
    seconds = time.process_time() - started
    return {"seconds": seconds, "emails": sum(o[1] for o in out), "ips": sum(o[2] for o in out),
            "chars": sum(map(len, texts)), "texts": len(texts)}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 MB of text instead of 20 MB")
    parser.add_argument("--pairs", type=int, default=3, help="A B pairs (>= 3)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker_tokenmill(args.worker)))
        return ""

    texts = corpus_texts(SHARED)
    target = (5 if args.quick else 20) * 1_000_000
    size = sum(map(len, texts))
    texts = texts * max(1, round(target / size))
    datatrove = ensure_datatrove()
    with tempfile.TemporaryDirectory(prefix="bench-pii-") as tmp:
        corpus = Path(tmp) / "texts.jsonl"
        corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
        script = Path(tmp) / "datatrove_pii.py"
        script.write_text(DATATROVE_SCRIPT)
        ours, theirs = [], []
        for _ in range(args.pairs):
            ours.append(_run_json([sys.executable, "-m", "bench.bench_pii", "--worker", str(corpus)]))
            if datatrove is not None:
                theirs.append(_run_json([str(datatrove), str(script), str(corpus)]))

    a = ours[0]
    mb = a["chars"] / 1e6
    tm_rate = [mb / r["seconds"] for r in ours]
    lines = [
        "# PII redaction benchmark",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; one core (`taskset -c 0`, one thread), CPU time of the "
        f"redaction loop only. {args.pairs} A/B pairs, alternating. {load_note()}",
        f"Command: `python -m bench.bench_pii{' --quick' if args.quick else ''}`",
        f"Texts: {a['texts']:,} texts, {mb:,.1f} M characters (the shared crawl's extracted English pages, "
        "SMS Spam Collection, Common Crawl WAT metadata, WikiText-2, tinyshakespeare, Katrine; repeated).",
        "",
    ]
    if theirs:
        dt_rate = [mb / r["seconds"] for r in theirs]
        ratios = sorted(t / d for t, d in zip(tm_rate, dt_rate))
        lines += [
            "| | tokenmill PiiRedactor | datatrove 0.10.1 PIIFormatter | ratio (median, min-max) |",
            "|---|---|---|---|",
            f"| M characters/s, one core | {statistics.median(tm_rate):,.1f} | {statistics.median(dt_rate):,.1f} | "
            f"{statistics.median(ratios):.1f}x ({ratios[0]:.1f}-{ratios[-1]:.1f}) |",
            f"| e-mail addresses replaced | {a['emails']:,} | {theirs[0]['emails']:,} | |",
            f"| IP addresses replaced (tokenmill: IPv4 and IPv6; datatrove: IPv4) | {a['ips']:,} | {theirs[0]['ips']:,} | |",
            "",
        ]
    else:
        lines += [f"| tokenmill M characters/s, one core | {statistics.median(tm_rate):,.1f} | datatrove not installed |", ""]
    return publish("\n".join(lines), RESULTS)


if __name__ == "__main__":
    main()
