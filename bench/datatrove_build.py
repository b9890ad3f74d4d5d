"""datatrove's FineWeb document chain over WARC files, timed: the peer side of `bench.bench_build`.

Runs inside a separate virtual environment that has datatrove (it pins trafilatura < 1.12, so it can
never share tokenmill's), as a subprocess of `bench/bench_build.py`; it must not import tokenmill.

    python bench/datatrove_build.py --warc-dir DIR --file a.warc.gz --file b.warc.gz \
        --repeat 3 --ftz /abs/lid.176.ftz --work /tmp/dt [--decisions]
    python bench/datatrove_build.py --judge texts.jsonl --ftz /abs/lid.176.ftz --work /tmp/dt

In: WARC files (named relative to --warc-dir), each read --repeat times in one task, and the path
of the fastText lid.176.ftz that tokenmill uses. The chain is the FineWeb recipe (../shared/BENCH.md):
WarcReader -> Trafilatura(favour_precision=True, deduplicate=False) -> LanguageFilter(en) ->
GopherRepetitionFilter -> GopherQualityFilter -> C4QualityFilter(filter_no_terminal_punct=False)
-> FineWebQualityFilter -> JsonlWriter, run by LocalPipelineExecutor(tasks=1, workers=1) (--tasks
and --workers change both: bench/bench_scaling.py runs tasks=2, workers=2, each task taking every
other file of the list).

Out: one JSON line on stdout: wall and CPU seconds of the executor's run (CPU: this process and
its Trafilatura sandbox processes, which it has joined by then), documents read, the per-step
times and counts of its stats.json, and package versions. With --decisions (not for timing: it
adds writers), also `decisions`: for every document the reader produced, the step that dropped it
and datatrove's reason, or kept, and Trafilatura's text; keyed by WARC-Record-ID. With --judge,
`verdicts`: the filters' decision on given texts (see `judge`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from importlib.metadata import version
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    LanguageFilter,
)
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.lid import FT176LID

# The filter steps in chain order, with the short names the bench and the decisions use.
FILTER_STEPS = ("langid", "gopher_repetition", "gopher_quality", "c4", "fineweb")


def local_lid_filter(ftz: str) -> type[LanguageFilter]:
    """A LanguageFilter whose FT176LID loads the given local model instead of downloading lid.176.bin.

    datatrove resolves MODEL_URL through fsspec and copies it into its asset cache, so a file://
    URL works offline; its own MODEL_SUBFOLDER keeps the copy apart from a real lid.176.bin.
    """

    class LocalFT176LID(FT176LID):
        MODEL_URL = f"file://{Path(ftz).resolve()}"
        MODEL_SUBFOLDER = "ft176-tokenmill-bench-ftz"

    class LocalLanguageFilter(LanguageFilter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.model = LocalFT176LID(self.languages)

    return LocalLanguageFilter


class IdTap(PipelineStep):
    """Passes documents through unchanged, appending each id to a file: shows where a document vanished.

    Trafilatura drops a page (empty extraction, timeout, error) without a reason or an exclusion
    writer, so a tap before and after it is the only way to see which pages it dropped.
    """

    name = "id tap"
    type = "TAP"

    def __init__(self, path: Path, keep_text: bool = False):
        super().__init__()
        self.path = path
        self.keep_text = keep_text

    def run(self, data, rank: int = 0, world_size: int = 1):
        with open(self.path, "a", encoding="utf-8") as out:
            for doc in data:
                seen = {"id": doc.id, "url": doc.metadata.get("url"), "date": doc.metadata.get("date")}
                if self.keep_text:
                    seen["text"] = doc.text
                out.write(json.dumps(seen) + "\n")
                yield doc


def build_pipeline(warc_dir: str, paths_file: Path, ftz: str, work: Path, decisions: bool,
                   extract_timeout: float = 1.0) -> list:
    def excluded(step: str):
        return JsonlWriter(str(work / "excluded" / step), output_filename="${rank}.jsonl", compression=None) if decisions else None

    lid_filter = local_lid_filter(ftz)
    steps = [
        WarcReader(warc_dir, paths_file=str(paths_file), compression="gzip"),
        Trafilatura(favour_precision=True, deduplicate=False, timeout=extract_timeout),
        lid_filter(languages=["en"], exclusion_writer=excluded("langid")),
        GopherRepetitionFilter(exclusion_writer=excluded("gopher_repetition")),
        GopherQualityFilter(exclusion_writer=excluded("gopher_quality")),
        C4QualityFilter(filter_no_terminal_punct=False, exclusion_writer=excluded("c4")),
        FineWebQualityFilter(exclusion_writer=excluded("fineweb")),
        JsonlWriter(str(work / "output"), output_filename="${rank}.jsonl", compression=None if decisions else "gzip"),
    ]
    if decisions:
        steps.insert(1, IdTap(work / "read_ids.jsonl"))
        steps.insert(3, IdTap(work / "extracted_ids.jsonl", keep_text=True))
    return steps


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def collect_decisions(work: Path) -> dict[str, dict]:
    """WARC-Record-ID -> {step, reason, url, date, ...} from one pass; step "kept" for kept documents.

    Steps: "trafilatura" (reason "empty_or_failed": empty text, timeout or error, which datatrove
    does not tell apart per document), one of FILTER_STEPS with datatrove's own reason (none for
    the language filter: its top language and score come instead), or "kept".
    """
    decisions = {d["id"]: {"step": "trafilatura", "reason": "empty_or_failed", "url": d["url"], "date": d["date"]}
                 for d in read_jsonl(work / "read_ids.jsonl")}
    for doc in read_jsonl(work / "extracted_ids.jsonl"):
        # "kept" is overwritten below if a filter dropped it; the text is Trafilatura's output.
        decisions[doc["id"]].update(step="kept", reason="", text=doc["text"])
    for step in FILTER_STEPS:
        for doc in read_jsonl(work / "excluded" / step / "00000.jsonl"):
            meta = doc["metadata"]
            decisions[doc["id"]].update(
                step=step, reason=meta.get("filter_reason", ""),
                language=meta.get("language"), language_score=meta.get("language_score"),
            )
    return decisions


def judge(texts_file: Path, ftz: str) -> dict[str, dict]:
    """The recipe's filters, in chain order, on each {id, text} of a JSONL file: id -> {step, reason, language}.

    For telling a difference in extracted text from a difference in the rules: tokenmill's text
    of a page, judged by datatrove's own filters.
    """
    from datatrove.data import Document

    filters = [
        ("langid", local_lid_filter(ftz)(languages=["en"])),
        ("gopher_repetition", GopherRepetitionFilter()),
        ("gopher_quality", GopherQualityFilter()),
        ("c4", C4QualityFilter(filter_no_terminal_punct=False)),
        ("fineweb", FineWebQualityFilter()),
    ]
    verdicts = {}
    for item in read_jsonl(texts_file):
        doc = Document(text=item["text"], id=item["id"])
        verdict = {"step": "kept", "reason": ""}
        for step, step_filter in filters:
            try:
                result = step_filter.filter(doc)
            except Exception as exc:  # datatrove divides by zero on some degenerate texts
                result = (False, f"error {type(exc).__name__}")
            kept, reason = result if isinstance(result, tuple) else (result, "")
            if not kept:
                verdict = {"step": step, "reason": reason or "", "language": doc.metadata.get("language")}
                break
        verdicts[item["id"]] = verdict
    return verdicts


def step_table(stats: list[dict]) -> list[dict]:
    """stats.json's blocks -> [{name, seconds, in, out}] in chain order."""
    rows = []
    for block in stats:
        counts = block.get("stats", {})

        def count(key: str) -> int:
            value = counts.get(key, 0)
            return int(value["total"] if isinstance(value, dict) else value)

        time_stats = block.get("time_stats", 0)
        seconds = time_stats.get("total", 0.0) if isinstance(time_stats, dict) else float(time_stats)
        dropped = {k[len("dropped_"):]: count(k) for k in counts if k.startswith("dropped_")}
        rows.append({
            "name": block["name"],
            "seconds": seconds,
            "in": count("total") or count("documents"),
            "out": count("forwarded") or count("documents"),
            "dropped": dropped,
            "timeouts": count("timeout"),
        })
    return rows


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (Trafilatura's sandbox)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warc-dir")
    parser.add_argument("--file", action="append", help="WARC file name under --warc-dir")
    parser.add_argument("--repeat", type=int, default=1, help="read the file list this many times")
    parser.add_argument("--ftz", required=True, help="lid.176.ftz path (the one tokenmill uses)")
    parser.add_argument("--work", required=True, help="an empty scratch folder")
    parser.add_argument("--decisions", action="store_true", help="record each document's fate (not for timing)")
    parser.add_argument("--extract-timeout", type=float, default=1.0,
                        help="Trafilatura's seconds per page (datatrove's default 1; a decision pass on a "
                             "loaded machine takes more, so that load does not decide a page's fate)")
    parser.add_argument("--tasks", type=int, default=1, help="LocalPipelineExecutor's tasks (the file list is split among them)")
    parser.add_argument("--workers", type=int, default=1, help="LocalPipelineExecutor's worker processes")
    parser.add_argument("--judge", help="instead of the chain: the filters' verdicts on the {id, text} lines of this JSONL")
    opts = parser.parse_args(argv)

    work = Path(opts.work)
    work.mkdir(parents=True, exist_ok=True)
    # datatrove copies the model into the huggingface asset cache; keep that inside the scratch folder.
    os.environ.setdefault("HF_ASSETS_CACHE", str(work / "hf-assets"))
    if opts.judge:
        print(json.dumps({"verdicts": judge(Path(opts.judge), opts.ftz)}))
        return
    if not opts.warc_dir or not opts.file:
        parser.error("--warc-dir and --file are needed to run the chain")
    paths_file = work / "paths.txt"
    paths_file.write_text("".join(f"{name}\n" for _ in range(opts.repeat) for name in opts.file), encoding="utf-8")

    executor = LocalPipelineExecutor(
        pipeline=build_pipeline(opts.warc_dir, paths_file, opts.ftz, work, opts.decisions, opts.extract_timeout),
        tasks=opts.tasks,
        workers=opts.workers,
        logging_dir=str(work / "logs"),
    )
    cpu_started = cpu_seconds()
    started = time.perf_counter()
    executor.run()
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started

    stats = json.loads((work / "logs" / "stats.json").read_text(encoding="utf-8"))
    steps = [s for s in step_table(stats) if not s["name"].endswith(IdTap.name)]
    result = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "documents_read": steps[0]["out"],
        "steps": steps,
        "versions": {p: version(p) for p in ("datatrove", "trafilatura", "spacy", "warcio", "fasttext-numpy2-wheel")},
        "python": sys.version.split()[0],
    }
    if opts.decisions:
        result["decisions"] = collect_decisions(work)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
