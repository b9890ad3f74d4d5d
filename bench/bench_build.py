"""The whole `tokenmill build`, one core, against datatrove's FineWeb chain with its writer.

    python -m bench.bench_build [--quick]

Input: every WARC in shared/data/warc named `*.warc.gz` (5 files: 114 `response` records, 82 of
them HTML by their HTTP Content-Type, and 55 `revisit` records). The WET file (`*.warc.wet.gz`) is
left out: it holds Common Crawl's own plain-text extraction of the one page that
`*_whirlwind_1page.warc.gz` holds as HTML, so it is not an HTML document and would count that page
twice (tokenmill would take it as text and skip extraction, datatrove would run trafilatura on
plain text). The WAT is metadata, not documents.

What is timed, per core (one process pinned to one CPU, as `taskset -c N`, with OMP, MKL and
OpenBLAS at one thread), each a fresh process, whole (imports and start-up included; user + system
CPU of the whole process tree, and the peak RSS of its largest process, from wait4):
- tokenmill: the `tokenmill build --workers 1` command on K copies of the files, as a user runs it
  with no Prefect server configured (read -> extract -> langid -> quality, Delta Lake commits, exact
  and near dedup, the stats tables printed); per-stage seconds from the stats/stages table it wrote.
- datatrove 0.10.1: the FineWeb recipe with its JSONL writer by `LocalPipelineExecutor(tasks=1,
  workers=1)` in its own virtual environment (bench/datatrove_build.py) on the same copies, its
  LanguageFilter on the same lid.176.ftz and its Trafilatura with deduplicate=False (the copies
  repeat), as released (it pins trafilatura < 1.12). Its agreement with tokenmill is measured twice:
  as released and with tokenmill's trafilatura first on its path (trafilatura_overlay), so that the
  agreement neither credits nor blames a different extractor version.
- the fixed cost: the same commands on a one-record WARC (and `tokenmill build` on one kept page, and
  `tokenmill build --prefect`, a flow on Prefect's temporary API server, for comparison).
Every measurement runs once per round, in turn (three rounds or more); the tables give medians with
min-max, the whole-job ratio (datatrove's CPU-seconds over tokenmill's) and the stage-work ratio
(read through quality, each chain's own step clocks). K is --copies (8; --quick: 1). The input's
page sizes are tabulated with the share of tokenmill's extraction CPU per size bucket.

Agreement, against each datatrove: one untimed pass of each, recording every record's fate
(datatrove's filters get exclusion writers for their reasons, and taps around Trafilatura show
what it dropped) and the text each extract stage gave. Records are matched by WARC-Record-ID
(tokenmill's (file, offset) is mapped to it by reading the WARCs); each HTML response and each
record datatrove's reader took counts once. Then each chain's langid and quality rules judge the
other chain's extracted text, which tells a difference in the rules from a difference in the text.
Every kind of disagreement is listed with its count, where it arises, and, from KNOWN_CAUSES, why
the two differ.

Writes bench/results/build.md and prints it.
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from bench.common import publish

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("TOKENMILL_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "bench" / "results" / "build.md"
DATATROVE_SCRIPT = REPO / "bench" / "datatrove_build.py"
DATATROVE_VENV_PYTHON = REPO / ".venv-bench" / "bin" / "python"
DATATROVE_SETUP = REPO / "bench" / "setup_datatrove.sh"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
HTML_TYPES = ("text/html", "application/xhtml+xml")
ONE_RECORD = "cc-main-2024-22_whirlwind_1page.warc.gz"  # the fixed-cost input: one HTML page (Aragonese)
# ... and one that is kept (an English news article of the extraction benchmark), so that the
# near-dedup stage runs too
ONE_KEPT_PAGE = "extraction/html/16c30add7e96315e9cc957d85aa876ccb6b70055f0ddab51547a586117cc1f56.html.gz"

# datatrove's step and reason names -> tokenmill's stage:reason vocabulary, so the two verdicts of
# a record compare as strings ("quality:gopher_quality:min_doc_words" on both sides).
DATATROVE_STEPS = {
    "trafilatura": "extract", "langid": "langid", "gopher_repetition": "quality:gopher_repetition",
    "gopher_quality": "quality:gopher_quality", "c4": "quality:c4", "fineweb": "quality:fineweb",
}
DATATROVE_REASONS = {
    "empty_or_failed": "no_text_or_timeout",
    "gopher_short_doc": "min_doc_words", "gopher_long_doc": "max_doc_words",
    "gopher_below_avg_threshold": "min_avg_word_length", "gopher_above_avg_threshold": "max_avg_word_length",
    "gopher_too_many_hashes": "hash_word_ratio", "gopher_too_many_ellipsis": "ellipsis_word_ratio",
    "gopher_too_many_bullets": "bullet_lines_ratio", "gopher_too_many_end_ellipsis": "ellipsis_lines_ratio",
    "gopher_below_alpha_threshold": "alpha_words_ratio", "gopher_enough_stop_words": "min_stop_words",
    **{f"duplicated_{n}_n_grams": f"dup_{n}_gram" for n in range(5, 11)},
    "too_few_sentences": "min_num_sentences", "list_ratio": "new_line_ratio",
}

# Why tokenmill and datatrove decide differently, by kind of disagreement: (tokenmill verdict,
# datatrove verdict, where, cause), verdicts as fnmatch patterns over "kept" or "stage:reason",
# `where` as `Compared.where` finds it for every record of the kind; the first match explains it.
# Each was found on shared/data/warc by putting the same decoded HTML through trafilatura 1.11
# (datatrove's venv) and 2.3.1 (ours), and each chain's rules through the other's text.
TEXT_DIFFERS = (
    "the extracted texts differ: datatrove pins trafilatura < 1.12 (1.11), tokenmill runs 2.3.1; the same "
    "decoded HTML gives each chain's text in each version, and each chain's rules agree with the other's on "
    "the same text"
)
KNOWN_CAUSES: list[tuple[str, str, str, str]] = [
    ("read:http_status", "kept", "reader",
     "datatrove's WarcReader never reads the HTTP status line (it checks only the record type and payload type), "
     "so error pages go down the chain; data.gov.uk's 403 page carries the whole site template and passes every "
     "filter. tokenmill rejects non-2xx responses when reading"),
    ("kept", "read:not_read", "reader",
     "where a record has no WARC-Identified-Payload-Type (every non-Common-Crawl WARC), datatrove's WarcReader "
     "asks libmagic, which calls these pages application/javascript (blank lines and `<!--[if IE]>` comments "
     "before `<html>`) and skips them; tokenmill trusts the HTTP Content-Type text/html and sniffs only an "
     "uninformative one"),
    ("extract:no_text", "kept", "text",
     "login/registration form page: trafilatura 1.11 keeps the forms' help text as main text, 2.3.1 in "
     "precision mode finds none"),
    ("langid:lang_low_score", "kept", "text",
     "home page: trafilatura 1.11 returns the navigation menu (447 characters, plainly English), 2.3.1 a single "
     "teaser line of 34 characters whose English probability is below 0.65"),
    ("quality:gopher_repetition:*", "kept", "text",
     "listing pages: trafilatura 2.3.1 puts each list item on one line and leaves out the filter headings and "
     "trailing sections that 1.11 keeps, so the same boilerplate phrases ('Login to make a comment ...', "
     "'Find out about') are a larger share of a shorter text and exceed Gopher's top/duplicate n-gram limits"),
    ("kept", "quality:c4:min_num_sentences", "text",
     "trafilatura 1.11 in precision mode drops the headings and list items ('What is linked data?', "
     "'- Overview of Linked Data') that 2.3.1 keeps, leaving fewer than C4's 5 sentences"),
    ("kept", "quality:fineweb:char_dup_ratio", "text",
     "trafilatura 1.11 breaks lines at inline `<code>` elements, so file names ('setup.py', '__init__.py') "
     "become lines of their own that repeat, over FineWeb's 1 % duplicate-line characters; 2.3.1 keeps "
     "inline code inside its sentence"),
]


# ---- the input ---------------------------------------------------------------------------------


def warc_inputs() -> list[Path]:
    """The WARC files of the shared data (not the WET or WAT, whose names end .warc.wet.gz / .wat.gz)."""
    return sorted(p.resolve() for p in (SHARED / "warc").glob("*.warc.gz"))


@dataclass(frozen=True)
class Response:
    """One WARC `response` record, located as tokenmill's reader locates it."""

    source: str
    offset: int
    record_id: str
    url: str | None
    status: str | None
    content_type: str

    @property
    def is_html(self) -> bool:
        return self.content_type.split(";")[0].strip().lower() in HTML_TYPES


def read_responses(paths: list[Path]) -> list[Response]:
    """Every response record of the files, with the (file, byte offset) tokenmill's reader gives it."""
    from warcio.archiveiterator import ArchiveIterator

    found = []
    for path in paths:
        with open(path, "rb") as handle:
            records = ArchiveIterator(handle, arc2warc=True)
            for record in records:
                if record.rec_type != "response":
                    continue
                http = record.http_headers
                found.append(
                    Response(
                        source=str(path),
                        offset=records.offset,
                        record_id=record.rec_headers.get_header("WARC-Record-ID"),
                        url=record.rec_headers.get_header("WARC-Target-URI"),
                        status=http.get_statuscode() if http else None,
                        content_type=(http.get_header("Content-Type") if http else record.content_type) or "",
                    )
                )
    return found


def corpus_copies(paths: list[Path], repeat: int, folder: Path) -> list[Path]:
    """`repeat` copies of each file under other names (hard links where possible): both chains read
    them all, and tokenmill's resume and exact dedup see distinct inputs, as in a real crawl."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for rep in range(repeat):
        for path in paths:
            copy = folder / f"copy{rep}_{path.name}"
            if not copy.exists():
                try:
                    os.link(path, copy)
                except OSError:
                    shutil.copyfile(path, copy)
            copies.append(copy)
    return copies


# ---- measurements, each in a fresh process pinned to one CPU ---------------------------------------


def measure_tokenmill(paths: list[str], repeat: int, decisions: bool) -> dict:
    """tokenmill's per-record stages over the files, `repeat` times; per-stage seconds and counts."""
    from pipeline.config import BuildConfig, QualityConfig
    from pipeline.process import DocumentPipeline
    from pipeline.readers import expand_inputs

    units = expand_inputs(paths)
    stages: dict[str, dict] = defaultdict(lambda: {"in": 0, "dropped": 0, "seconds": 0.0})
    outcomes = []
    cpu_started = time.process_time()
    started = time.perf_counter()
    # datatrove's own rules (the defaults fix two of them), so keep/drop decisions compare like for like
    pipeline = DocumentPipeline(BuildConfig(quality=QualityConfig.datatrove_identical()))
    for rep in range(repeat):
        for unit in units:
            out = pipeline.process_unit(unit)
            t0 = time.perf_counter()
            out.docs_table()
            out.rejects_table()
            stages["tables"]["seconds"] += time.perf_counter() - t0
            stages["tables"]["in"] += out.records
            for name, counter in out.stages.items():
                stages[name]["in"] += counter.records_in
                stages[name]["dropped"] += counter.dropped
                stages[name]["seconds"] += counter.seconds
            if decisions and rep == 0:
                outcomes += [{"source": d["source"], "offset": d["source_offset"], "verdict": "kept"} for d in out.docs]
                outcomes += [{"source": r["source"], "offset": r["source_offset"],
                              "verdict": f"{r['stage']}:{r['reason']}"} for r in out.rejects]
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if decisions:
        texts = extracted_texts(pipeline, units)
        for outcome in outcomes:
            outcome["text"] = texts.get((outcome["source"], outcome["offset"]))
    return {"seconds": seconds, "cpu_seconds": cpu, "stages": dict(stages), "outcomes": outcomes}


def extracted_texts(pipeline, units) -> dict[tuple[str, int], str | None]:
    """(source, offset) -> the text tokenmill's extract stage gives each record (None: it rejected it)."""
    from pipeline.extract import Extractor
    from pipeline.readers import read_unit
    from pipeline.records import Rejection

    extractor = Extractor(pipeline.cfg.extract)
    texts = {}
    for unit in units:
        for item in read_unit(unit, pipeline.cfg.read):
            if not isinstance(item, Rejection):
                extracted = extractor(item)
                texts[item.source, item.source_offset] = None if isinstance(extracted, Rejection) else extracted.text
    return texts


def extraction_costs(paths: list[str]) -> dict:
    """Each HTML record's body size and the CPU-seconds tokenmill's extraction takes on it (after one
    untimed pass, so that no one-time set-up is charged to the first page)."""
    from pipeline.config import BuildConfig
    from pipeline.extract import Extractor
    from pipeline.readers import expand_inputs, read_unit
    from pipeline.records import Rejection

    cfg = BuildConfig()
    extractor = Extractor(cfg.extract)
    records = [r for unit in expand_inputs(paths) for r in read_unit(unit, cfg.read)
               if not isinstance(r, Rejection) and r.kind == "html"]
    for record in records:
        extractor(record)
    costs = []
    for record in records:
        started = time.process_time()
        extractor(record)
        costs.append((len(record.body), time.process_time() - started))
    return {"costs": costs}


def judge_tokenmill(texts_file: str) -> dict:
    """tokenmill's langid and quality verdict ("kept" or "stage:reason") on each {id, text} of a JSONL file."""
    from pipeline.config import BuildConfig, QualityConfig
    from pipeline.langid import LanguageIdentifier
    from pipeline.quality import QualityFilter

    cfg = BuildConfig(quality=QualityConfig.datatrove_identical())
    langid, quality = LanguageIdentifier(cfg.langid), QualityFilter(cfg.quality)
    verdicts = {}
    with open(texts_file, encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            reason = langid.reject_reason(*langid.predict(item["text"]))
            if reason is not None:
                verdicts[item["id"]] = f"langid:{reason}"
                continue
            reason = quality(item["text"]).reason
            verdicts[item["id"]] = "kept" if reason is None else f"quality:{reason}"
    return {"verdicts": verdicts}


MEASURES = {"tokenmill": measure_tokenmill, "judge": judge_tokenmill, "extraction_costs": extraction_costs}


def become_subreaper() -> None:
    """Processes a measured process leaves behind (multiprocessing's forkserver, which outlives its
    parent for a moment, with the workers it forked) are re-parented to this process instead of
    init, so that waiting for them adds their CPU to RUSAGE_CHILDREN (prctl PR_SET_CHILD_SUBREAPER)."""
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)


def run_process(args: list[str], cwd: Path, env: dict[str, str], one_cpu: bool = True) -> tuple[str, dict]:
    """Run one process on one CPU (all of them: `one_cpu` False, as bench_scaling does) with one
    thread per process; its stdout, and what the whole process cost:
    wall seconds, CPU-seconds (user + system of the whole process tree: datatrove's extraction
    sandboxes, Prefect's temporary server, tokenmill's forkserver and workers) and the peak resident
    memory of its largest process."""
    cpu = min(os.sched_getaffinity(0))
    become_subreaper()
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as errors:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        child = subprocess.Popen(
            args, cwd=cwd, env={**env, **ONE_THREAD}, stdout=out, stderr=errors, text=True,
            # What `taskset -c N` does; child processes inherit it.
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if one_cpu else None,
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss
        while True:  # processes it left running (a forkserver) are ours now: wait for them too
            try:
                peak = max(peak, os.wait4(-1, 0)[2].ru_maxrss)
            except ChildProcessError:
                break
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if child.returncode != 0:
            errors.seek(0)
            tail = errors.read()[-3000:]
            raise RuntimeError(f"{' '.join(args[:3])} ... failed (exit {child.returncode}):\n{tail}")
        out.seek(0)
        tree_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        cost = {"wall": seconds, "cpu": tree_cpu, "max_rss_mb": peak / 1024}
        return out.read(), cost


def run_child(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict:
    """A measurement process whose last stdout line is its JSON result; with its whole-process
    cost under "process"."""
    stdout, cost = run_process(args, cwd, {**os.environ, **(env or {})})
    return {**json.loads(stdout.strip().splitlines()[-1]), "process": cost}


def run_tokenmill_cli(inputs: list[Path], work: Path, prefect: bool = False) -> dict:
    """`tokenmill build --workers 1` as a user runs it (no Prefect server configured; with `prefect`,
    `--prefect`: a flow on Prefect's temporary API), into a fresh warehouse; its whole-process cost,
    and the per-stage seconds and counts it recorded in stats/stages."""
    from warehouse.layout import DatasetPaths
    from warehouse.read import scan

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(REPO), PREFECT_HOME=str(work / "prefect"), TOKENMILL_HOME=str(work))
    args = [sys.executable, "-m", "flows.cli", "build", *map(str, inputs), "--warehouse", str(work / "wh"),
            "--dataset", "bench", "--workers", "1", *(["--prefect"] if prefect else [])]
    _, cost = run_process(args, work, env)
    rows = scan(DatasetPaths(str(work / "wh"), "bench"), "stages").collect()
    stages = {
        name: {"in": int(group["records_in"].sum()), "dropped": int(group["dropped"].sum()),
               "seconds": float(group["seconds"].sum())}
        for (name,), group in rows.group_by("stage")
    }
    return {"seconds": cost["wall"], "cpu_seconds": cost["cpu"], "process": cost, "stages": stages}


def run_tokenmill(paths: list[Path], repeat: int, decisions: bool = False) -> dict:
    kwargs = {"paths": [str(p) for p in paths], "repeat": repeat, "decisions": decisions}
    return run_child([sys.executable, "-m", "bench.bench_build", "--measure", "tokenmill", "--args", json.dumps(kwargs)], REPO)


def run_datatrove(python: Path, paths: list[Path], repeat: int, ftz: Path, decisions: bool = False,
                  overlay: Path | None = None) -> dict:
    """datatrove's chain in its venv; with `overlay`, the packages there (tokenmill's trafilatura)
    come first on its path."""
    warc_dir = paths[0].parent
    with tempfile.TemporaryDirectory(prefix="bench-build-datatrove-") as work:
        args = [str(python), str(DATATROVE_SCRIPT), "--warc-dir", str(warc_dir), "--repeat", str(repeat),
                "--ftz", str(ftz), "--work", work]
        args += [a for p in paths for a in ("--file", p.name)]
        if decisions:  # decisions, not speed: the machine's load must not time pages out
            args += ["--decisions", "--extract-timeout", "60"]
        return run_child(args, Path(work), {"PYTHONPATH": str(overlay)} if overlay else None)


def trafilatura_overlay(dt_python: Path) -> Path:
    """A folder holding tokenmill's trafilatura version, to put first on datatrove's path.

    datatrove 0.10.1 pins trafilatura < 1.12; tokenmill runs 2.3.1, and the two versions extract
    different text from some pages. Running datatrove's chain once more on tokenmill's version
    separates what the pipelines decide differently from what the extractor versions do
    differently. The two versions need the same dependencies (htmldate, courlan, justext, lxml),
    which datatrove's venv already has, so only trafilatura itself goes in (--no-deps)."""
    from importlib.metadata import version

    wanted = version("trafilatura")
    folder = dt_python.parent.parent / f"overlay-trafilatura-{wanted}"
    if not (folder / "trafilatura" / "__init__.py").exists():
        subprocess.run([str(dt_python), "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(folder),
                        f"trafilatura=={wanted}"], check=True)
    return folder


def datatrove_python() -> Path:
    """The python of a venv with datatrove: TOKENMILL_DATATROVE_PYTHON, else .venv-bench, which
    bench/setup_datatrove.sh makes (or finds complete and leaves alone) first."""
    override = os.environ.get("TOKENMILL_DATATROVE_PYTHON")
    if override:
        return Path(override)
    if DATATROVE_SETUP.exists():
        subprocess.run(["bash", str(DATATROVE_SETUP)], cwd=REPO, check=True)
    if not DATATROVE_VENV_PYTHON.exists():
        raise SystemExit(f"no datatrove environment at {DATATROVE_VENV_PYTHON} (made by {DATATROVE_SETUP})")
    return DATATROVE_VENV_PYTHON


# ---- agreement ---------------------------------------------------------------------------------------


@dataclass
class Compared:
    """One record's fate in each chain, and each chain's rules on the text the other extracted."""

    response: Response
    tokenmill: str                      # "kept" or "stage:reason"
    datatrove: str
    tokenmill_text: str | None          # what each extract stage gave (None: no text)
    datatrove_text: str | None
    tokenmill_rules_on_their_text: str | None = None   # tokenmill's langid+quality on datatrove's text
    datatrove_rules_on_our_text: str | None = None     # datatrove's filters on tokenmill's text

    @property
    def agrees(self) -> bool:
        return (self.tokenmill == "kept") == (self.datatrove == "kept")

    @property
    def kind(self) -> tuple[str, str]:
        return self.tokenmill, self.datatrove

    @property
    def where(self) -> str:
        """Which part of the chains makes the difference: "reader", "text", "rules" or "extract"."""
        if self.tokenmill.startswith("read:") or self.datatrove.startswith("read:"):
            return "reader"
        ours_on_theirs, theirs_on_ours = self.tokenmill_rules_on_their_text, self.datatrove_rules_on_our_text
        if ours_on_theirs is not None and _kept(ours_on_theirs) != _kept(self.datatrove):
            return "rules"
        if theirs_on_ours is not None and _kept(theirs_on_ours) != _kept(self.tokenmill):
            return "rules"
        if ours_on_theirs is None and theirs_on_ours is None:
            return "extract"
        return "text"


def _kept(verdict: str) -> bool:
    return verdict == "kept"


def datatrove_verdict(decision: dict | None) -> str:
    """datatrove's fate of a record in tokenmill's words: "kept" or "stage:reason"."""
    if decision is None:
        return "read:not_read"
    step = decision["step"]
    if step == "kept":
        return "kept"
    if step == "langid":
        wanted = decision.get("language") == "en"
        return f"langid:{'lang_low_score' if wanted else 'lang_not_wanted'}"
    reason = decision["reason"]
    return f"{DATATROVE_STEPS[step]}:{DATATROVE_REASONS.get(reason, reason)}"


def pair_records(responses: list[Response], tokenmill: list[dict], datatrove: dict[str, dict]) -> list[Compared]:
    """Every HTML response, and every record datatrove's reader took, with both chains' fates."""
    ours = {(o["source"], o["offset"]): o for o in tokenmill}
    pairs = []
    for response in responses:
        theirs = datatrove.get(response.record_id)
        if not response.is_html and theirs is None:
            continue
        mine = ours.get((response.source, response.offset), {"verdict": "missing"})
        pairs.append(Compared(
            response=response,
            tokenmill=mine["verdict"],
            datatrove=datatrove_verdict(theirs),
            tokenmill_text=mine.get("text"),
            datatrove_text=(theirs or {}).get("text"),
        ))
    return pairs


def cross_judge(pairs: list[Compared], dt_python: Path, ftz: Path) -> None:
    """Fill in each chain's langid and quality verdict on the other chain's extracted text."""
    with tempfile.TemporaryDirectory(prefix="bench-build-judge-") as tmp:
        theirs, ours = Path(tmp) / "datatrove_texts.jsonl", Path(tmp) / "tokenmill_texts.jsonl"
        for path, attr in ((theirs, "datatrove_text"), (ours, "tokenmill_text")):
            with open(path, "w", encoding="utf-8") as out:
                for i, pair in enumerate(pairs):
                    if getattr(pair, attr):
                        out.write(json.dumps({"id": str(i), "text": getattr(pair, attr)}) + "\n")
        args = [sys.executable, "-m", "bench.bench_build", "--measure", "judge", "--args", json.dumps({"texts_file": str(theirs)})]
        for i, verdict in run_child(args, REPO)["verdicts"].items():
            pairs[int(i)].tokenmill_rules_on_their_text = verdict
        args = [str(dt_python), str(DATATROVE_SCRIPT), "--judge", str(ours), "--ftz", str(ftz), "--work", tmp]
        for i, decision in run_child(args, Path(tmp))["verdicts"].items():
            pairs[int(i)].datatrove_rules_on_our_text = datatrove_verdict(decision)


def cause_of(tm: str, dt: str, where: set[str], same_extractor: bool = False) -> str:
    """The known cause of a kind of disagreement; for an unlisted kind that only differing text
    explains, the general cause of differing text. Text causes are trafilatura version differences,
    so they do not apply when both chains ran the same version."""
    for tm_pattern, dt_pattern, known_where, cause in KNOWN_CAUSES:
        if same_extractor and known_where == "text":
            continue
        if fnmatchcase(tm, tm_pattern) and fnmatchcase(dt, dt_pattern) and where == {known_where}:
            return cause
    if where == {"text"} and not same_extractor:
        return TEXT_DIFFERS
    return "unexplained: not in KNOWN_CAUSES, investigate"


def percent(part: int, whole: int) -> str:
    return f"{part} of {whole} ({100 * part / whole:.1f} %)" if whole else "–"


def agreement_rows(pairs: list[Compared], same_extractor: bool = False) -> list[str]:
    """Agreement figures, the table of disagreement kinds with causes, and drops for other reasons.
    With `same_extractor` (both chains on one trafilatura version) differing text has no known cause."""
    agreeing = [p for p in pairs if p.agrees]
    extracted_both = [p for p in pairs if not p.tokenmill.startswith("read:") and not p.datatrove.startswith("read:")]
    ours_on_theirs = [p for p in pairs if p.tokenmill_rules_on_their_text is not None]
    theirs_on_ours = [p for p in pairs if p.datatrove_rules_on_our_text is not None]
    rows = [
        "| compared | same keep/drop decision |",
        "|---|---:|",
        f"| **whole chain**: every HTML response, and every record datatrove's reader took | **{percent(len(agreeing), len(pairs))}** |",
        f"| records both readers passed on to extraction | {percent(sum(p.agrees for p in extracted_both), len(extracted_both))} |",
        f"| the rules alone, on datatrove's extracted text: tokenmill's langid + quality vs datatrove's filters "
        f"| {percent(sum(_kept(p.tokenmill_rules_on_their_text) == _kept(p.datatrove) for p in ours_on_theirs), len(ours_on_theirs))} |",
        f"| the rules alone, on tokenmill's extracted text: datatrove's filters vs tokenmill's langid + quality "
        f"| {percent(sum(_kept(p.datatrove_rules_on_our_text) == _kept(p.tokenmill) for p in theirs_on_ours), len(theirs_on_ours))} |",
        "",
        f"Kept by both: {sum(_kept(p.tokenmill) for p in agreeing)}; dropped by both: {sum(not _kept(p.tokenmill) for p in agreeing)}, "
        f"of them {sum(p.tokenmill == p.datatrove != 'kept' for p in agreeing)} at the same stage for the same rule.",
        "",
    ]
    kinds: dict[tuple[str, str], list[Compared]] = defaultdict(list)
    for pair in pairs:
        if not pair.agrees:
            kinds[pair.kind].append(pair)
    if kinds:
        rows += [
            "Disagreements. *where*: reader = one reader never passed the record on; text = the extracted texts "
            "differ and each chain's rules agree with the other's on the same text; rules = on the same text the "
            "rules decide differently; extract = neither chain extracted text.",
            "",
            "| tokenmill | datatrove | records | where | why they differ | examples |",
            "|---|---|---:|---|---|---|",
        ]
        for (tm, dt), members in sorted(kinds.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            where = ", ".join(f"{w} {n}" for w, n in Counter(p.where for p in members).most_common())
            urls = " ".join(sorted({f"<{p.response.url}>" for p in members})[:3])
            cause = cause_of(tm, dt, {p.where for p in members}, same_extractor)
            rows.append(f"| {tm} | {dt} | {len(members)} | {where} | {cause} | {urls} |")
        rows.append("")
    return rows


# ---- the report ------------------------------------------------------------------------------------


def machine(dt_versions: dict) -> str:
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    ours = ", ".join(f"{p} {version(p)}" for p in ("trafilatura", "fasttext", "warcio"))
    theirs = ", ".join(f"{p} {v}" for p, v in dt_versions.items())
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}; tokenmill: {ours}; datatrove side: {theirs}"


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg()) + f" (1 / 5 / 15 min, {os.cpu_count()} cores)"


def median_range(values: list[float], fmt: str = "{:.1f}") -> str:
    values = sorted(values)
    return f"{fmt.format(statistics.median(values))} ({fmt.format(values[0])}–{fmt.format(values[-1])})"


DT_STAGE_STEPS = ("Warc", "Trafilatura", "Language", "Gopher Repetition", "Gopher Quality", "C4", "FineWeb")
TM_STAGE_STEPS = ("read", "extract", "langid", "quality")


def stage_seconds(run: dict) -> float:
    """Seconds in the per-record stages, read through quality, of one run (either chain)."""
    if "stages" in run:
        return sum(run["stages"].get(name, {}).get("seconds", 0.0) for name in TM_STAGE_STEPS)
    return sum(step["seconds"] for step in run["steps"] if any(key in step["name"] for key in DT_STAGE_STEPS))


def step_rows(ours: list[dict], theirs: list[dict], repeat: int, same: list[dict] | None = None) -> list[str]:
    """Per-step seconds per pass and docs/s (documents entering the step), medians over the runs;
    then the whole process, whose CPU-seconds beyond its steps are start-up, commits and the rest."""

    def tm_step(name: str) -> tuple[float, float]:
        seconds = statistics.median(r["stages"].get(name, {}).get("seconds", 0.0) for r in ours) / repeat
        docs = ours[0]["stages"].get(name, {}).get("in", 0) / repeat
        return seconds, docs

    def dt_step(index: int) -> tuple[float, float]:
        seconds = statistics.median(r["steps"][index]["seconds"] for r in theirs) / repeat
        return seconds, theirs[0]["steps"][index]["in"] / repeat

    def cell(seconds: float, docs: float) -> str:
        rate = f"{docs / seconds:,.0f}" if seconds > 0 else "–"
        return f"{seconds:.2f} | {docs:.0f} | {rate}"

    names = [s["name"] for s in theirs[0]["steps"]]
    dt_index = {key: next(i for i, n in enumerate(names) if key in n) for key in (*DT_STAGE_STEPS, "Jsonl")}
    quality_seconds = sum(dt_step(dt_index[k])[0] for k in ("Gopher Repetition", "Gopher Quality", "C4", "FineWeb"))
    tm_stages = statistics.median(stage_seconds(r) for r in ours) / repeat
    dt_stages = statistics.median(stage_seconds(r) for r in theirs) / repeat
    stage_ratios = [stage_seconds(b) / stage_seconds(a) for a, b in zip(ours, theirs)]
    rows = [
        "| step | tokenmill s/pass | docs in | docs/s | datatrove s/pass | docs in | docs/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| read WARC (+ decode) | {cell(*tm_step('read'))} | {cell(*dt_step(dt_index['Warc']))} |",
        f"| extract (trafilatura) | {cell(*tm_step('extract'))} | {cell(*dt_step(dt_index['Trafilatura']))} |",
        f"| language id | {cell(*tm_step('langid'))} | {cell(*dt_step(dt_index['Language']))} |",
        f"| quality: all four filters | {cell(*tm_step('quality'))} | {cell(quality_seconds, dt_step(dt_index['Gopher Repetition'])[1])} |",
    ]
    for key in ("Gopher Repetition", "Gopher Quality", "C4", "FineWeb"):
        rows.append(f"| &nbsp;&nbsp;{key} | – | – | – | {cell(*dt_step(dt_index[key]))} |")
    rows += [
        f"| **stage work, read → quality** | **{tm_stages:.2f}** | | | **{dt_stages:.2f}** | | "
        f"**datatrove / tokenmill {median_range(stage_ratios, '{:.2f}')}×** |",
        f"| exact dedup (at commit) | {cell(*tm_step('exact_dedup'))} | – | – | – |",
        f"| near dedup (MinHash LSH, whole dataset) | {cell(*tm_step('dedup'))} | – | – | – |",
        f"| write JSONL | – | – | – | {cell(*dt_step(dt_index['Jsonl']))} |",
    ]
    tm_cpu = statistics.median(r["process"]["cpu"] for r in ours) / repeat
    dt_cpu = statistics.median(r["process"]["cpu"] for r in theirs) / repeat
    rows.append(f"| whole process, CPU-seconds (imports, start-up, commits, stats printed) | {tm_cpu:.2f} | | "
                f"| {dt_cpu:.2f} | | |")
    if same:
        extract_index = next(i for i, s in enumerate(same[0]["steps"]) if "Trafilatura" in s["name"])
        same_extract = statistics.median(r["steps"][extract_index]["seconds"] for r in same) / repeat
        same_cpu = statistics.median(r["process"]["cpu"] for r in same) / repeat
        rows.append(f"\ndatatrove on tokenmill's trafilatura {same[0]['versions']['trafilatura']}: extraction "
                    f"{same_extract:.2f} s per pass, stage work {statistics.median(stage_seconds(r) for r in same) / repeat:.2f} s, "
                    f"whole process {same_cpu:.2f} CPU-s per pass (tokenmill's extract step also "
                    "takes the title and the date, which datatrove's does not).")
    timeouts = statistics.median(r["steps"][dt_index["Trafilatura"]]["timeouts"] for r in theirs) / repeat
    if timeouts:
        rows.append(f"\ndatatrove's Trafilatura timed out (its default 1 s per page) on {timeouts:.0f} page(s) per pass; "
                    "each costs the full second plus a new sandbox process.")
    return rows


SIZE_BUCKETS = ((0, 10_000, "< 10 KB"), (10_000, 50_000, "10–50 KB"), (50_000, 100_000, "50–100 KB"),
                (100_000, 350_000, "100–350 KB"), (350_000, math.inf, "≥ 350 KB"))


def size_rows(costs: list[tuple[int, float]]) -> list[str]:
    """HTML records by body size: how many, their share of the bytes and of tokenmill's extraction CPU."""
    total_bytes = sum(size for size, _ in costs) or 1
    total_cpu = sum(cpu for _, cpu in costs) or 1
    rows = ["| HTML body size | records | share of records | share of HTML bytes | share of extraction CPU "
            "| extraction CPU-ms per record (median) |", "|---|---:|---:|---:|---:|---:|"]
    for low, high, label in SIZE_BUCKETS:
        bucket = [(size, cpu) for size, cpu in costs if low <= size < high]
        if not bucket:
            continue
        rows.append(
            f"| {label} | {len(bucket)} | {100 * len(bucket) / len(costs):.0f} % "
            f"| {100 * sum(b for b, _ in bucket) / total_bytes:.0f} % | {100 * sum(c for _, c in bucket) / total_cpu:.0f} % "
            f"| {1000 * statistics.median(c for _, c in bucket):.0f} |"
        )
    sizes = sorted(size for size, _ in costs)
    rows.append("")
    rows.append(f"Sizes: median {sizes[len(sizes) // 2] / 1000:.0f} KB, p90 {sizes[int(0.9 * (len(sizes) - 1))] / 1000:.0f} KB, "
                f"largest {sizes[-1] / 1000:.0f} KB; extraction {total_cpu:.2f} CPU-s per pass in all.")
    return rows


def alternate(rounds: int, *runs) -> tuple[list[dict], ...]:
    """Each run once per round, in turn, so that drift in the machine's speed hits all alike."""
    results: tuple[list[dict], ...] = tuple([] for _ in runs)
    for _ in range(rounds):
        for run, out in zip(runs, results):
            out.append(run())
    return results


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one pass over the input per run (noisy figures)")
    parser.add_argument("--pairs", type=int, default=3, help="alternating tokenmill/datatrove pairs (>= 3)")
    parser.add_argument("--copies", type=int, default=8, help="copies of the input files each run reads (--quick: 1)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--args", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.measure:
        print(json.dumps(MEASURES[opts.measure](**json.loads(opts.args))))
        return ""

    from pipeline.langid import default_model_path

    paths = warc_inputs()
    if not paths:
        raise SystemExit(f"no *.warc.gz under {SHARED / 'warc'}")
    responses = read_responses(paths)
    n_html = sum(r.is_html for r in responses)
    ftz = default_model_path()
    dt_python = datatrove_python()
    overlay = trafilatura_overlay(dt_python)

    # Untimed decision passes first: they give the agreement, warm the file cache, and time one pass.
    tm_decisions = run_tokenmill(paths, 1, decisions=True)
    dt_decisions = run_datatrove(dt_python, paths, 1, ftz, decisions=True)
    dt_same_decisions = run_datatrove(dt_python, paths, 1, ftz, decisions=True, overlay=overlay)
    pairs = pair_records(responses, tm_decisions["outcomes"], dt_decisions["decisions"])
    same_pairs = pair_records(responses, tm_decisions["outcomes"], dt_same_decisions["decisions"])
    cross_judge(pairs, dt_python, ftz)
    cross_judge(same_pairs, dt_python, ftz)
    costs = run_child([sys.executable, "-m", "bench.bench_build", "--measure", "extraction_costs",
                       "--args", json.dumps({"paths": [str(p) for p in paths]})], REPO)["costs"]
    repeat = 1 if opts.quick else max(1, opts.copies)

    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        tmp = Path(tmp)
        corpus = corpus_copies(paths, repeat, tmp / "corpus")
        one_record = [p for p in paths if p.name == ONE_RECORD]
        kept_page = tmp / "page.html"
        kept_page.write_bytes(gzip.decompress((SHARED / ONE_KEPT_PAGE).read_bytes()))
        ours, theirs, ours_one, ours_one_prefect, theirs_one, ours_kept = alternate(
            max(opts.pairs, 1),
            lambda: run_tokenmill_cli(corpus, tmp / "tokenmill"),
            lambda: run_datatrove(dt_python, corpus, 1, ftz),
            lambda: run_tokenmill_cli(one_record, tmp / "tokenmill-one"),
            lambda: run_tokenmill_cli(one_record, tmp / "tokenmill-one-prefect", prefect=True),
            lambda: run_datatrove(dt_python, one_record, 1, ftz),
            lambda: run_tokenmill_cli([kept_page], tmp / "tokenmill-kept"),
        )
    docs = n_html * repeat
    dt_traf, same_traf = dt_decisions["versions"]["trafilatura"], dt_same_decisions["versions"]["trafilatura"]

    def cpu(r: dict) -> float:
        return r["process"]["cpu"]

    def cpu_rate(r: dict) -> float:
        return docs / cpu(r)

    def wall_rate(r: dict) -> float:
        return docs / r["process"]["wall"]

    def rss(runs: list[dict]) -> str:
        return median_range([r["process"]["max_rss_mb"] for r in runs], "{:.0f}")

    cpu_ratios = [cpu(b) / cpu(a) for a, b in zip(ours, theirs)]
    wall_ratios = [wall_rate(a) / wall_rate(b) for a, b in zip(ours, theirs)]
    stage_ratios = [stage_seconds(b) / stage_seconds(a) for a, b in zip(ours, theirs)]
    core = min(os.sched_getaffinity(0))
    command = "python -m bench.bench_build" + (" --quick" if opts.quick else "")
    files = ", ".join(p.name for p in paths)
    report = "\n".join(
        [
            "# Document build benchmark: the whole `tokenmill build` against datatrove's chain, one core",
            "",
            f"Machine: {machine(dt_decisions['versions'])}. {time.strftime('%Y-%m-%d %H:%M')}. "
            + ("**The machine was shared** with other jobs while measuring (load average below): wall times are "
               "inflated and noisy, CPU-seconds much less so." if os.getloadavg()[1] > 0.9 * (os.cpu_count() or 1)
               else "No other work ran while measuring (load average below)."),
            f"Command: `{command}` (part of `make bench`). Each run is a fresh process pinned to CPU {core} "
            f"(as `taskset -c {core}`), OMP/MKL/OpenBLAS threads 1; {len(ours)} rounds, each running every "
            "measurement below once in turn (tokenmill and datatrove alternate).",
            f"Input: {files} ({sum(p.stat().st_size for p in paths) / 1e6:.1f} MB gzipped; {len(responses)} responses, "
            f"{n_html} of them HTML), {repeat} copies of each file (hard links under other names) = {docs} HTML "
            "documents entering each chain per run; both chains read the same copies. The WET is left out (it is "
            "plain text of a page the WARCs already hold as HTML).",
            "tokenmill: `tokenmill build COPIES --workers 1` as a user runs it (no Prefect server configured: the "
            "build's steps in-process, flows/build_steps.py): read → extract → langid → quality, commits to Delta "
            "Lake, exact dedup, near dedup, stats tables printed. datatrove 0.10.1: WarcReader → "
            "Trafilatura(favour_precision, deduplicate=False) → LanguageFilter(en, same lid.176.ftz) → "
            "GopherRepetition → GopherQuality → C4(filter_no_terminal_punct=False) → FineWebQuality → JsonlWriter, "
            "`LocalPipelineExecutor(tasks=1, workers=1)` (bench/datatrove_build.py), in its own venv. CPU-seconds "
            "are the whole process tree's (user + system, imports included, with its worker and server processes), "
            "from wait4 as their subreaper; peak RSS is the largest single process's.",
            "",
            "| per core (1 CPU, 1 thread), whole process | HTML docs per CPU-second, median (min–max) "
            "| CPU-seconds per run | wall seconds per run | peak RSS, MB |",
            "|---|---:|---:|---:|---:|",
            f"| tokenmill build | {median_range([cpu_rate(r) for r in ours])} | {median_range([cpu(r) for r in ours])} "
            f"| {median_range([r['process']['wall'] for r in ours])} | {rss(ours)} |",
            f"| datatrove 0.10.1 (trafilatura {dt_traf}, as released) | {median_range([cpu_rate(r) for r in theirs])} "
            f"| {median_range([cpu(r) for r in theirs])} | {median_range([r['process']['wall'] for r in theirs])} | {rss(theirs)} |",
            f"| **whole job: datatrove CPU / tokenmill CPU, as released** | **{median_range(cpu_ratios, '{:.2f}')}×** | | "
            f"wall: {median_range(wall_ratios, '{:.2f}')}× | |",
            f"| **stage work (read → quality): datatrove / tokenmill** | **{median_range(stage_ratios, '{:.2f}')}×** | | | |",
            "",
            "Fixed cost: the same commands on a one-record file (" + ONE_RECORD + ", one HTML page):",
            "",
            "| one-record file, whole process | CPU-seconds, median (min–max) | wall seconds | peak RSS, MB |",
            "|---|---:|---:|---:|",
            f"| tokenmill build | **{median_range([cpu(r) for r in ours_one], '{:.2f}')}** "
            f"| {median_range([r['process']['wall'] for r in ours_one])} | {rss(ours_one)} |",
            f"| tokenmill build, one English news page (kept: the near-dedup stage runs too) | "
            f"**{median_range([cpu(r) for r in ours_kept], '{:.2f}')}** "
            f"| {median_range([r['process']['wall'] for r in ours_kept])} | {rss(ours_kept)} |",
            f"| tokenmill build --prefect (a flow on Prefect's temporary API server) | "
            f"{median_range([cpu(r) for r in ours_one_prefect], '{:.2f}')} "
            f"| {median_range([r['process']['wall'] for r in ours_one_prefect])} | {rss(ours_one_prefect)} |",
            f"| datatrove 0.10.1 | {median_range([cpu(r) for r in theirs_one], '{:.2f}')} "
            f"| {median_range([r['process']['wall'] for r in theirs_one])} | {rss(theirs_one)} |",
            "",
            f"Load average while measuring: {load_average()}.",
            "",
            "Per step, seconds per pass over the input and documents per second entering the step (medians over "
            "the runs; the steps' own clocks, so wall time inside the pinned process):",
            "",
            *step_rows(ours, theirs, repeat),
            "",
            "## Page sizes and where extraction time goes",
            "",
            "The input's HTML records by body size, and tokenmill's extraction CPU on them (one more pass, each "
            "page timed alone after an untimed pass):",
            "",
            *size_rows(costs),
            "",
            "## Keep/drop agreement (one pass each, records matched by WARC-Record-ID)",
            "",
            f"Twice: against datatrove as released (trafilatura {dt_traf}), where part of the disagreement is the two "
            f"trafilatura versions extracting different text, and against datatrove on tokenmill's trafilatura "
            f"{same_traf}, where what remains is what the two pipelines decide differently.",
            "",
            f"### datatrove on tokenmill's trafilatura {same_traf}: the pipelines compared",
            "",
            *agreement_rows(same_pairs, same_extractor=True),
            f"### datatrove as released (trafilatura {dt_traf})",
            "",
            *agreement_rows(pairs),
            "",
        ]
    )
    return publish(report, RESULTS)


if __name__ == "__main__":
    main()
