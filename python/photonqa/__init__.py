"""photonqa: how hard can photon-science data be compressed before the science changes?

The functions compute exactly what the ``photonqa`` command line computes (the same Rust
library), on NumPy arrays or scenario files:

- :func:`metrics`, :func:`analyze`, :func:`reconstruct`: ``photonqa metrics``, ``analyze`` and
  ``reconstruct`` on arrays in memory (C-contiguous arrays are read in place, not copied);
- :class:`Scenario`, :func:`run`, :func:`check`: ``photonqa validate``, ``run`` and ``check``;
- :func:`roundtrip`: one pipeline on an array in memory, as ``photonqa run`` measures a point;
- :func:`stages`: ``photonqa stages``.

Errors raise :class:`PhotonqaError` or one of its subclasses, with the CLI's one-line message.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ._photonqa import (
    DataError,
    GateError,
    PhotonqaError,
    Scenario,
    ScenarioError,
    __version__,
    analyze,
    metrics,
    reconstruct,
    roundtrip,
    stages,
)
from ._photonqa import check as _check
from ._photonqa import run as _run

__all__ = [
    "DataError",
    "GateError",
    "PhotonqaError",
    "Results",
    "Scenario",
    "ScenarioError",
    "__version__",
    "analyze",
    "check",
    "metrics",
    "reconstruct",
    "roundtrip",
    "run",
    "stages",
]


def _cell(text: str):
    """A cell of results.csv: an int, a float (``inf``, ``nan`` included), None when empty,
    else the text."""
    if text == "":
        return None
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


class Results:
    """The outcome of :func:`run`: what ``photonqa run`` writes into ``out``.

    Attributes:
        rows: one dict per working point in sweep order (the lines of ``results.jsonl``,
            which are in the order the points finished, sorted by ``index``; non-finite
            metrics as ``float('inf')`` / ``float('nan')`` instead of JSON's strings).
        columns: the scalar metric and analysis columns of ``results.csv``.
        recommendation: ``recommendation.json``: the chosen point, or why none passes.
        answer: the CLI's one-line answer (``recommended: ...``).
        measured: points measured by this call; skipped: points a resumed run already had.
        out: the output directory; report_path: its ``report.html``.
    """

    def __init__(self, native: Dict[str, Any]):
        self.rows: List[Dict[str, Any]] = native["rows"]
        self.columns: List[str] = native["columns"]
        self.recommendation: Dict[str, Any] = native["recommendation"]
        self.answer: str = native["answer"]
        self.measured: int = native["measured"]
        self.skipped: int = native["skipped"]
        self.out = Path(native["out"])
        self.report_path = self.out / "report.html"

    def to_pandas(self):
        """``results.csv`` as a pandas DataFrame, one row per working point, every column;
        numbers are read back bit for bit (Python's own parsing), empty cells are missing
        values. pandas is imported here: it is optional."""
        import csv

        import pandas

        with open(self.out / "results.csv", newline="") as file:
            header, *records = list(csv.reader(file))
        return pandas.DataFrame([[_cell(c) for c in r] for r in records], columns=header)

    def _repr_html_(self) -> str:
        """The answer and the rate-distortion plots (PNG, inline), for Jupyter."""
        import base64

        parts = [f"<p><b>{html.escape(self.answer)}</b></p>"]
        # The rate-distortion plots the report draws, one per distortion metric.
        for plot in sorted((self.out / "plots").glob("rd-*.png")):
            data = base64.b64encode(plot.read_bytes()).decode("ascii")
            alt = html.escape(f"rate-distortion plot ({plot.stem[3:]})")
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{alt}">')
        parts.append(
            f"<p>{len(self.rows)} working points; report: "
            f"<code>{html.escape(str(self.report_path))}</code></p>"
        )
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"Results({len(self.rows)} points in {self.out}; {self.answer})"


def run(
    scenario: Union[Scenario, str, os.PathLike],
    out: Union[str, os.PathLike, None] = None,
    *,
    resume: bool = False,
    threads: Optional[int] = None,
    progress: bool = True,
    memory_budget: int = 1 << 30,
    allow_commands: bool = False,
) -> Results:
    """Runs every working point of ``scenario`` into ``out``, as ``photonqa run`` does.

    Args:
        scenario: a :class:`Scenario`, or the path of a scenario file.
        out: the output directory [default: ``runs/<scenario name>``].
        resume: continue an interrupted run in ``out`` (measured points are kept).
        threads: worker threads [default: all cores], lowered to fit ``memory_budget``.
        progress: draw the progress bar on stderr (when it is a terminal).
        memory_budget: bytes the chunks in flight may occupy.
        allow_commands: run the scenario's shell commands (``--allow-commands``).

    Returns:
        :class:`Results`; ``out`` holds ``results.jsonl``, ``results.csv``,
        ``recommendation.json`` and ``report.html``, as the CLI writes them.

    Raises:
        KeyboardInterrupt: on Ctrl-C, once the run has stopped at its next chunk; the points
            measured before it are kept in ``out`` and ``resume=True`` runs the rest.
    """
    if not isinstance(scenario, Scenario):
        scenario = Scenario.load(scenario)
    if out is None:
        out = Path("runs") / scenario.name
    return Results(
        _run(
            scenario,
            out,
            resume=resume,
            threads=threads,
            progress=progress,
            memory_budget=memory_budget,
            allow_commands=allow_commands,
        )
    )


def check(
    scenario: Union[Scenario, str, os.PathLike],
    baseline: Union[str, os.PathLike],
    *,
    out: Union[str, os.PathLike, None] = None,
    threads: Optional[int] = None,
    memory_budget: int = 1 << 30,
    allow_commands: bool = False,
) -> Dict[str, Any]:
    """Reruns ``scenario`` (a :class:`Scenario` or a file) and compares every metric of every
    point with ``baseline``, as ``photonqa check`` does.

    Returns:
        ``passed`` (bool), ``report`` (the CLI's text), ``notes`` and ``drifts``: one dict per
        failed comparison with ``point_id`` (None for a column), ``name``, ``old``, ``new``,
        ``kind`` and ``description``.
    """
    if not isinstance(scenario, Scenario):
        scenario = Scenario.load(scenario)
    return _check(
        scenario,
        baseline,
        out=out,
        threads=threads,
        memory_budget=memory_budget,
        allow_commands=allow_commands,
    )
