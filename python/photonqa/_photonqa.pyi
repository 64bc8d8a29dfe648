"""Type stubs of the native module (photonqa re-exports everything here)."""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

class PhotonqaError(Exception):
    """Base class of photonqa's errors; the message is the CLI's one-line error."""

class ScenarioError(PhotonqaError):
    """A scenario that cannot be read or is invalid (``file:line:column: message``)."""

class DataError(PhotonqaError):
    """An input array that cannot be read or used (``label: message``)."""

class GateError(PhotonqaError):
    """A baseline that cannot be read, or a run that cannot be compared with it."""

def metrics(
    original: npt.NDArray[Any],
    decoded: npt.NDArray[Any],
    *,
    data_range: Optional[float] = None,
    ssim_window: str = "gaussian",
    metrics: Optional[Sequence[str]] = None,
    max_rel_floor: Optional[float] = None,
    memory_budget: int = 1 << 30,
) -> Dict[str, Any]:
    """Distortion metrics between two arrays: the dict ``photonqa metrics --json`` prints.

    ``original`` and ``decoded`` are NumPy arrays of rank 2 or 3 and the same shape, of dtype
    uint8/16/32/64, int8/16/32/64, float32 or float64 (they may differ). C-contiguous arrays
    are read in place (slab by slab, as the CLI reads a file); any other layout is copied
    once into C order. The GIL is released while the metrics are computed.

    Args:
        data_range: R of PSNR, NRMSE and SSIM [default: max - min of the original].
        ssim_window: ``"gaussian"`` (Wang et al. 2004) or ``"uniform"`` (scikit-image's
            default).
        metrics: compute only these metrics (names as in scenarios) [default: all].
        max_rel_floor: floor of the relative error's denominator [default: 1e-3 of R].
        memory_budget: bytes the slabs in flight may occupy.

    Returns:
        Every metric by name, then ``data_range``, ``max_rel_floor``, ``count`` and
        ``nonfinite_decoded``; non-finite values are floats (``inf``, ``nan``), metrics the
        data cannot give are ``{"skipped": reason}``.

    Raises:
        TypeError: an argument is not a NumPy array of a supported dtype.
        ValueError: an unknown ``ssim_window``.
        DataError: a rank other than 2-3, or an empty array.
        PhotonqaError: anything else the CLI reports (shape mismatch, NaN in the original,
            an unknown metric, a data range <= 0).
    """

def analyze(
    array: npt.NDArray[Any],
    *,
    method: str = "otsu",
    classes: Optional[int] = None,
    value: Optional[float] = None,
    pore_class: int = 0,
    connectivity: str = "face",
    memory_budget: int = 1 << 30,
) -> Dict[str, Any]:
    """Science of one array: the dict ``photonqa analyze --json`` prints (Otsu's threshold,
    phase fractions, porosity, the pores and their sizes).

    Args:
        method: ``"otsu"``, ``"multiotsu"`` (with ``classes`` 3..5, default 3) or ``"value"``
            (with ``value``, the threshold).
        pore_class: the class that is pore space (0: at or below the lowest threshold).
        connectivity: ``"face"`` (scipy.ndimage.label's default) or ``"full"``.
        memory_budget: bytes the slabs in flight may occupy.

    Raises:
        ValueError: an invalid combination of method, classes and value, or connectivity.
        TypeError, DataError, PhotonqaError: as :func:`metrics`.
    """

def reconstruct(
    sinogram: npt.NDArray[Any],
    *,
    theta: Optional[Sequence[float]] = None,
    filter: str = "ramp",
) -> npt.NDArray[np.float64]:
    """Filtered back-projection of a parallel-beam sinogram, as ``photonqa reconstruct``
    (scikit-image's ``iradon``).

    Args:
        sinogram: shape ``(angles, detector)``, any supported dtype (converted to float64).
        theta: the angle of each row in degrees [default: ``angles`` equal steps over
            [0, 180)].
        filter: ``"ramp"``, ``"shepp-logan"``, ``"cosine"``, ``"hamming"`` or ``"hann"``.

    Returns:
        The slice, float64, ``(detector, detector)``, 0 outside the inscribed circle.
    """

def roundtrip(
    array: npt.NDArray[Any],
    pipeline: List[Dict[str, Any]],
    *,
    chunk_slices: Optional[int] = None,
    memory_budget: int = 1 << 30,
    threads: Optional[int] = None,
) -> Tuple[npt.NDArray[Any], Dict[str, Any]]:
    """Encodes and decodes ``array`` through ``pipeline`` as ``photonqa run`` measures a
    working point: the same chunks (``chunk_slices`` rows, default as a run chooses), the same
    fitted parameters, the same decoded values and byte counts.

    Args:
        pipeline: stage dicts as the ``[[pipeline]]`` tables of a scenario, without sweeps,
            e.g. ``[{"stage": "sz3", "abs_error": 1e-3}, {"stage": "zstd"}]``
            (:func:`stages` lists them).

    Returns:
        ``(decoded, rate)``: the decoded array (dtype and shape of ``array``) and the rate as
        in ``results.jsonl`` (``original_bytes``, ``compressed_bytes``, ``ratio``,
        ``bits_per_value``, ``encode_mb_s``, ``decode_mb_s``; with a ``command`` stage's
        ``side_files``, paths relative to the working directory, also ``side_bytes``,
        ``amortize_over`` and ``ratio_payload``, the ratio of the stream alone, while
        ``ratio`` and ``bits_per_value`` count the side files' share).

    Raises:
        ScenarioError: an invalid pipeline (the position is in the TOML it is written as).
        PhotonqaError: a stage that fails on the data.
    """

def stages() -> List[Dict[str, Any]]:
    """Every pipeline stage, as ``photonqa stages`` lists them: dicts with ``id``, ``kind``,
    ``lossless``, ``aliases``, ``summary`` and ``params`` (``name``, ``kind``, ``default``,
    ``doc``)."""

class Scenario:
    """A validated scenario (the TOML schema of ``photonqa run``)."""

    @staticmethod
    def load(path: Union[str, os.PathLike]) -> "Scenario":
        """Reads and validates a scenario file; relative input paths are relative to its
        folder. Raises :class:`ScenarioError`."""
    @staticmethod
    def from_toml(text: str, path: Union[str, os.PathLike, None] = None) -> "Scenario":
        """Validates scenario text; ``path`` names it in errors and anchors relative input
        paths. Raises :class:`ScenarioError`."""
    @staticmethod
    def from_dict(
        scenario: Dict[str, Any], path: Union[str, os.PathLike, None] = None
    ) -> "Scenario":
        """Validates a scenario given as a dict of its TOML tables (``{"scenario": {...},
        "input": {...}, "pipeline": [{...}], ...}``), written as TOML and read as
        :meth:`from_toml` reads it. Raises :class:`ScenarioError`."""
    @property
    def name(self) -> str:
        """``[scenario] name``."""
    @property
    def path(self) -> os.PathLike:
        """The scenario file (or the ``path`` it was given as text under)."""
    def validate(self) -> Dict[str, Any]:
        """Opens the input and builds every working point's chain, running nothing (as
        ``photonqa validate``): ``working_points``, ``input``, ``dtype``, ``shape``,
        ``commands``. Raises :class:`DataError` or :class:`PhotonqaError`."""
    def working_points(self) -> List[Dict[str, Any]]:
        """The working points in sweep order: ``index``, ``id``, ``swept``
        (``{"stage.param": value}``) and ``pipeline`` (every stage's configuration)."""

def run(
    scenario: Scenario,
    out: Union[str, os.PathLike],
    *,
    resume: bool = False,
    threads: Optional[int] = None,
    progress: bool = True,
    memory_budget: int = 1 << 30,
    allow_commands: bool = False,
) -> Dict[str, Any]:
    """The native run behind :func:`photonqa.run` (which wraps its dict in ``Results``)."""

def check(
    scenario: Scenario,
    baseline: Union[str, os.PathLike],
    *,
    out: Union[str, os.PathLike, None] = None,
    threads: Optional[int] = None,
    memory_budget: int = 1 << 30,
    allow_commands: bool = False,
) -> Dict[str, Any]:
    """Reruns ``scenario`` and compares it with ``baseline``, as ``photonqa check``.

    Returns:
        ``passed`` (bool), ``report`` (the CLI's text), ``notes`` and ``drifts``: one dict per
        failed comparison with ``point_id`` (None for a column), ``name``, ``old``, ``new``,
        ``kind`` and ``description``.

    Raises:
        GateError: the baseline cannot be read (before anything runs).
    """
