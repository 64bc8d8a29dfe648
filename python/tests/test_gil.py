"""`photonqa.metrics` releases the GIL while it computes: another Python thread runs meanwhile.

The metrics run in a worker thread; the main thread counts the turns of its loop taken while
the worker is inside the call. Python's switch interval is raised for the test so that a
thread holding the GIL is never asked to give it up: the main thread then runs only when the
worker releases the GIL itself, which photonqa does for the whole computation, and holding it
would leave the main thread no turn at all inside the call."""

import sys
import threading
import time

import numpy as np

import photonqa


def test_metrics_release_the_gil_while_they_compute():
    rng = np.random.default_rng(11)
    original = rng.random((64, 128, 128), dtype=np.float32)
    decoded = original + rng.normal(0.0, 0.01, original.shape).astype(np.float32)
    inside = threading.Event()
    results = []

    def compute():
        inside.set()
        results.append(photonqa.metrics(original, decoded))
        inside.clear()

    turns_inside = 0
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        worker = threading.Thread(target=compute)
        worker.start()
        while worker.is_alive():
            if inside.is_set():
                turns_inside += 1
            # Sleeping releases the GIL: the worker takes it back when the call returns.
            time.sleep(0.001)
        worker.join()
    finally:
        sys.setswitchinterval(previous)
    assert results and results[0]["count"] == original.size
    # About one turn per millisecond of the call: about 2 s in the dev build, 0.06 s in a
    # release build; holding the GIL leaves at most the turn taken as the call begins.
    assert turns_inside >= 10, turns_inside
