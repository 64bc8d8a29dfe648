"""Type stubs of photonqa (the native functions are documented in _photonqa.pyi)."""

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ._photonqa import (
    DataError as DataError,
    GateError as GateError,
    PhotonqaError as PhotonqaError,
    Scenario as Scenario,
    ScenarioError as ScenarioError,
    __version__ as __version__,
    analyze as analyze,
    metrics as metrics,
    reconstruct as reconstruct,
    roundtrip as roundtrip,
    stages as stages,
)

class Results:
    """The outcome of :func:`run`: what ``photonqa run`` writes into ``out``."""

    rows: List[Dict[str, Any]]
    columns: List[str]
    recommendation: Dict[str, Any]
    answer: str
    measured: int
    skipped: int
    out: Path
    report_path: Path
    def __init__(self, native: Dict[str, Any]) -> None: ...
    def to_pandas(self) -> Any:
        """``results.csv`` as a pandas DataFrame (pandas imported lazily)."""
    def _repr_html_(self) -> str:
        """The answer and the rate-distortion plot, for Jupyter."""

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
    """Runs every working point of ``scenario`` into ``out`` [default: runs/<name>], as
    ``photonqa run`` does, and returns its :class:`Results`. Ctrl-C stops it at its next chunk
    with KeyboardInterrupt, keeping the points measured (``resume=True`` runs the rest)."""

def check(
    scenario: Union[Scenario, str, os.PathLike],
    baseline: Union[str, os.PathLike],
    *,
    out: Union[str, os.PathLike, None] = None,
    threads: Optional[int] = None,
    memory_budget: int = 1 << 30,
    allow_commands: bool = False,
) -> Dict[str, Any]:
    """Reruns ``scenario`` and compares it with ``baseline``, as ``photonqa check``: ``passed``,
    ``report``, ``notes`` and ``drifts``. Raises :class:`GateError` for an unreadable
    baseline."""
