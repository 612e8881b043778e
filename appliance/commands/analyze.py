"""``pocketcheck analyze``: captures in, verdict out, and the report folder with ``--out``.

Two modes, told apart by the arguments:

- **one session** (the default): every FILE is part of the same session
  (a capture split in several files); one verdict, one report folder;
- **triage** (``--each``, ``--jobs N``, or any argument that is a folder):
  every capture is its own session, analysed in parallel in worker
  processes (each with its own C core and its own copy of the indicators,
  loaded once), one report folder per capture under ``--out``, a summary
  table, and the exit code 0 (all green), 1 (some red or amber) or 2 (some
  capture could not be analysed).

The work is :mod:`appliance.check`'s pipeline, the same the box runs after
each session.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import sys
import time
from pathlib import Path

from .. import check, report
from .. import indicators as ind
from ..analysis import Thresholds
from ..errors import PocketcheckError
from ..rules import LEVELS

# Files a folder argument contributes (files named on the command line are always taken).
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
# Width of the summary's "top finding" column (longer text runs over).
TOP_WIDTH = 64
# Exit codes of a triage run.
EXIT_GREEN, EXIT_FINDINGS, EXIT_FAILED, EXIT_STOPPED = 0, 1, 2, 130


def register(subparsers) -> None:
    """Adds ``pocketcheck analyze`` to the CLI.

    Args:
        subparsers: the CLI's sub-parser collection.
    """
    p = subparsers.add_parser(
        "analyze", help="check captures for stalkerware traffic and write a report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Analyses capture files as one session: prints the verdict and alerts, "
                    "or writes a full report with --out.\n\n"
                    "Triage (--each, --jobs N, or a FOLDER argument): every capture is its own session, "
                    "analysed in parallel,\none report folder per capture under --out, a summary table; "
                    "exit code 0 all green, 1 some red or amber,\n2 some capture could not be analysed.")
    p.add_argument("files", nargs="+", metavar="FILE_OR_FOLDER",
                   help="pcap or pcapng files of one session; in triage, captures or folders of captures "
                        f"({', '.join(CAPTURE_SUFFIXES)}, searched recursively)")
    p.add_argument("--each", action="store_true", help="triage: every capture is a separate session")
    p.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="triage with N worker processes (default: every core)")
    p.add_argument("--iocs", action="append", default=[], metavar="FILE",
                   help="indicator file to use besides the shipped set (repeatable)")
    p.add_argument("--out", metavar="DIR", help="write the report folder here (triage: one folder per capture "
                                                "in DIR, which must be new or empty)")
    p.add_argument("--lang", choices=("en", "fr"), default="en", help="language of the text and HTML report")
    p.add_argument("--json", action="store_true",
                   help="print report.json on stdout (triage: one JSON object per capture instead of the table)")
    p.add_argument("--config", metavar="FILE", help="YAML/JSON file overriding heuristics thresholds")
    p.add_argument("--box-id", default=None, help="identifier of this box in the report")
    p.add_argument("--key-dir", default=None, help="where the box's signing key lives (created if missing)")
    p.add_argument("--encrypt-to", action="append", default=[], metavar="RECIPIENT",
                   help="also write an age-encrypted archive of the report for this public key (age1...)")
    # Fixed report time, for reproducible reports (tests, golden screenshots).
    p.add_argument("--report-time", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_analyze)


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 256:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 256")
    return n


def _cmd_analyze(args) -> int:
    thresholds = Thresholds.from_file(args.config) if args.config else Thresholds()
    if args.each or args.jobs or any(os.path.isdir(f) for f in args.files):
        return _triage(args, thresholds)
    iocs = ind.load(args.iocs, include_default=True) if args.iocs else ind.load_default()
    checked = check.run(args.files, iocs, thresholds, box_id=args.box_id, generated_at=args.report_time)
    doc = checked.doc
    if args.out:
        check.write(checked, args.out, lang=args.lang, key_dir=args.key_dir, encrypt_to=args.encrypt_to)
    if args.json:
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.text_summary(doc, args.lang))
        if args.out:
            sys.stdout.write(report.catalogue(args.lang)["cli"]["written"].format(dir=args.out) + "\n")
    return 0


# ---- triage ----------------------------------------------------------------------
@dataclasses.dataclass
class Row:
    """One capture of a triage run: what the summary table shows (and ``--json`` prints)."""

    file: str
    folder: str | None = None
    verdict: str | None = None
    top: dict | None = None       # the most serious alert: level, rule, host, family
    packets: int = 0
    seconds: float = 0.0
    error: str | None = None      # set: the capture could not be (fully) analysed
    worker: int = 0               # the worker process's pid
    peak_rss_kb: int = 0          # its peak resident memory so far (ru_maxrss)
    worker_cpu_s: float = 0.0     # its CPU time so far (user + system)


def captures(arguments) -> list[Path]:
    """Expands triage arguments into capture files.

    Args:
        arguments: files (taken whatever their name) and folders (searched recursively for
            :data:`CAPTURE_SUFFIXES`, hidden entries skipped), in order.

    Returns:
        The files, each once, in argument order (a folder's in sorted order).

    Raises:
        PocketcheckError: a folder holds no capture.
    """
    out: list[Path] = []
    seen = set()
    for arg in arguments:
        p = Path(arg)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*")
                           if q.suffix.lower() in CAPTURE_SUFFIXES and q.is_file()
                           and not any(part.startswith(".") for part in q.relative_to(p).parts))
            if not found:
                raise PocketcheckError(f"{p}: no capture files ({', '.join(CAPTURE_SUFFIXES)}) in this folder")
        else:
            found = [p]  # a missing or unreadable file fails in its own row
        for q in found:
            key = os.path.abspath(q)
            if key not in seen:
                seen.add(key)
                out.append(q)
    return out


def folder_names(paths) -> list[str]:
    """Returns one report folder name per capture: its name without the suffix, made unique.

    Names are compared without case (a FAT stick does not tell ``A`` from ``a``);
    a clash gets ``-2``, ``-3``...

    Args:
        paths: capture paths.

    Returns:
        Safe folder names, in the same order.
    """
    names, used = [], set()
    for p in paths:
        base = re.sub(r"[^A-Za-z0-9._+-]", "_", Path(p).stem).lstrip(".") or "capture"
        name, n = base, 1
        while name.lower() in used:
            n += 1
            name = f"{base}-{n}"
        used.add(name.lower())
        names.append(name)
    return names


# One worker's state, set once by _worker_init: the indicators are loaded
# (and compiled into the C matcher) once per process, not once per capture.
_WORKER: dict = {}


def _worker_init(iocs_files, thresholds, options) -> None:
    # Ctrl-C goes to the whole process group: the parent alone decides what
    # stops, so a worker never dies with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["iocs"] = ind.load(iocs_files, include_default=True) if iocs_files else ind.load_default()
    _WORKER["thresholds"] = thresholds
    _WORKER["options"] = options


def _top_alert(doc: dict) -> dict | None:
    if not doc["alerts"]:
        return None
    a = max(doc["alerts"], key=lambda a: LEVELS.index(a["level"]))  # first of the most serious
    return {"level": a["level"], "rule": a["rule"], "host": a.get("name") or a.get("ip") or "",
            "family": a.get("family") or ""}


def _analyse_one(path: str, folder: str | None) -> Row:
    """Runs in a worker: one capture through the pipeline, its report folder, its row."""
    opts = _WORKER["options"]
    row = Row(file=path, worker=os.getpid())
    t0 = time.perf_counter()
    try:
        checked = check.run([path], _WORKER["iocs"], _WORKER["thresholds"], box_id=opts["box_id"],
                            generated_at=opts["report_time"])
        row.verdict = checked.doc["verdict"]
        row.top = _top_alert(checked.doc)
        row.packets = sum(f.stats.get("packets", 0) for f in checked.files)
        bad = [f for f in checked.files if f.status != "eof"]
        if bad:  # analysed up to the damage: the report says so, the row counts as failed
            row.error = bad[0].error or f"the capture is damaged ({bad[0].status})"
        if folder is not None:
            check.write(checked, folder, lang=opts["lang"], key_dir=opts["key_dir"],
                        encrypt_to=opts["encrypt_to"])
            row.folder = folder
    except (PocketcheckError, OSError) as exc:
        row.error = _plain(exc, path)
    except Exception as exc:  # noqa: BLE001 - one capture's bug must not stop the others' rows
        row.error = f"internal error ({type(exc).__name__}: {exc})"
    row.seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    row.peak_rss_kb, row.worker_cpu_s = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    return row


def _plain(exc: BaseException, path: str) -> str:
    """One line for a failed capture, naming the file by its name alone (the row has its path)."""
    if isinstance(exc, OSError) and not isinstance(exc, PocketcheckError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).replace(path, Path(path).name).split())


def default_jobs() -> int:
    """The cores this process may run on (the default of ``--jobs``)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _triage(args, thresholds: Thresholds) -> int:
    cat = report.catalogue(args.lang)["cli"]["triage"]
    paths = captures(args.files)
    out = Path(args.out) if args.out else None
    if out is not None:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise PocketcheckError(f"{out}: the triage folder exists and is not empty")
        out.mkdir(parents=True, exist_ok=True)
        # Created once here: workers creating it at the same time would sign with different keys.
        report.load_or_create_key(args.key_dir)
    if args.encrypt_to:
        report.check_recipients(args.encrypt_to)
    # Loaded once here too, so that a bad --iocs file is one error, not one per capture.
    ind.load(args.iocs, include_default=True) if args.iocs else ind.load_default()
    folders = [str(out / n) for n in folder_names(paths)] if out is not None else [None] * len(paths)
    jobs = min(args.jobs or default_jobs(), len(paths))
    options = {"box_id": args.box_id, "report_time": args.report_time, "lang": args.lang,
               "key_dir": args.key_dir, "encrypt_to": list(args.encrypt_to)}
    progress = _Progress(len(paths), cat) if sys.stderr.isatty() else None
    rows: dict[int, Row] = {}
    # forkserver: workers start from a clean process (no inherited threads or
    # open readers), and faster than spawn since the server imports pocketcheck once.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    running: list[cf.ProcessPoolExecutor] = []

    def run_pool(indices, workers: int, step) -> None:
        pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                      initargs=(list(args.iocs), thresholds, options))
        running[:] = [pool]
        futures = {pool.submit(_analyse_one, str(paths[i]), folders[i]): i for i in indices}
        for fut in cf.as_completed(futures):
            i = futures[fut]
            try:
                rows[i] = fut.result()
            except cf.process.BrokenProcessPool:
                rows[i] = Row(file=str(paths[i]), error=cat["worker_died"])
            if step is not None:
                step(paths[i].name)
        pool.shutdown()

    try:
        run_pool(range(len(paths)), jobs, progress.step if progress is not None else None)
        # A worker that dies (killed, out of memory, a crash in the C core) breaks
        # the whole pool, and every capture not finished yet fails with it: those
        # are tried again with a fresh pool, then, if one breaks that too, each
        # alone, so that only a capture that kills its worker fails.
        for workers in (jobs, 1):
            for again in _chunks([i for i in sorted(rows) if rows[i].error == cat["worker_died"]], workers):
                _remove_stages(out)
                for i in again:
                    if folders[i] is not None:
                        shutil.rmtree(folders[i], ignore_errors=True)  # only ever written by a dead worker
                run_pool(again, min(workers, len(again)), None)
    except KeyboardInterrupt:
        if running:
            _stop(running[0])
        _remove_stages(out)
        if progress is not None:
            progress.clear()
        print(cat["stopped"].format(done=len(rows), total=len(paths)), file=sys.stderr)
        return EXIT_STOPPED
    _remove_stages(out)
    if progress is not None:
        progress.clear()
    ordered = [rows[i] for i in range(len(paths))]
    if args.json:
        for r in ordered:
            sys.stdout.write(json.dumps(dataclasses.asdict(r), ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(table(ordered, args.lang))
    if any(r.error for r in ordered):
        return EXIT_FAILED
    return EXIT_FINDINGS if any(r.verdict != "green" for r in ordered) else EXIT_GREEN


def _chunks(indices: list[int], workers: int) -> list[list[int]]:
    """All indices in one pool of several workers; one pool per index when alone."""
    if not indices:
        return []
    return [indices] if workers > 1 else [[i] for i in indices]


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Ctrl-C: drops the captures not started and ends the workers."""
    # The executor has no public way to end running workers before Python 3.14,
    # and shutdown() forgets them: they are taken first.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
    else:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.join(5)
    pool.shutdown(wait=False, cancel_futures=True)


def _remove_stages(out: Path | None) -> None:
    """Removes what a stopped worker left of a report folder it was writing (report.write's staging folders)."""
    if out is not None:
        for stage in list(out.glob(".report-*")) + list(out.glob(".sealed-*")):
            shutil.rmtree(stage, ignore_errors=True)


class _Progress:
    """A one-line progress bar on stderr (only drawn on a terminal)."""

    def __init__(self, total: int, cat: dict):
        self.total, self.done, self.cat, self.t0 = total, 0, cat, time.monotonic()

    def step(self, name: str) -> None:
        self.done += 1
        width = 24
        filled = width * self.done // self.total
        line = self.cat["progress"].format(bar="#" * filled + "." * (width - filled), done=self.done,
                                           total=self.total, seconds=time.monotonic() - self.t0, file=name)
        sys.stderr.write("\r\x1b[K" + line[:120])
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


def table(rows, lang: str = "en") -> str:
    """Returns the triage summary as a text table: file, verdict, top finding, packets, time.

    Args:
        rows: :class:`Row` objects, in the order to show.
        lang: the language of the headers and words.

    Returns:
        The table and a one-line count, ending with a newline.
    """
    full = report.catalogue(lang)
    cat = full["cli"]["triage"]
    lines = [(cat["file"], cat["verdict"], cat["top"], cat["packets"], cat["time"])]
    for r in rows:
        if r.error and r.verdict is None:
            verdict, top = cat["failed"], r.error
        else:
            verdict = cat["colour"][r.verdict]
            top = cat["nothing"]
            if r.top is not None:
                top = f"[{full['levels'][r.top['level']]}] {full['rules'][r.top['rule']]['title']}: {r.top['host']}"
                if r.top["family"]:
                    top += f" ({r.top['family']})"
            if r.error:
                verdict, top = f"{verdict} ({cat['failed']})", f"{r.error}; {top}"
        packets = str(r.packets) if r.verdict is not None else "-"
        lines.append((r.file, verdict, top, packets, f"{r.seconds:.1f} s"))
    widths = [max(len(line[c]) for line in lines) for c in range(4)]
    widths[2] = min(widths[2], TOP_WIDTH)  # a longer finding or reason runs over, the others stay aligned
    text = []
    for line in lines:
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1]), line[2].ljust(widths[2]),
                 line[3].rjust(widths[3]), line[4]]
        text.append("  ".join(cells).rstrip())
    counts = {v: sum(1 for r in rows if r.verdict == v and not r.error) for v in ("red", "amber", "green")}
    text.append("")
    text.append(cat["summary"].format(total=len(rows), failed=sum(1 for r in rows if r.error), **counts))
    return "\n".join(text) + "\n"
