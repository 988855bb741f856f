"""Re-executes a benchmark helper inside its own virtual environment (shared by scripts/bench_*.py).

Each helper keeps its packages in a venv of its own under the workspace root (ignored by git), so the
system Python stays untouched and a helper's heavy dependency (torch) does not weigh on another's.
"""
import os
import subprocess
import sys


def ensure_venv(venv, packages, probe):
    """Runs the calling script inside `venv`, creating it and pip-installing `packages` when `probe`
    (a Python statement, e.g. "import torch") fails there; returns only when already inside it."""
    py = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    try:
        subprocess.check_call([py, "-c", probe], stderr=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        subprocess.check_call([py, "-m", "pip", "install", "--quiet", *packages])
    os.execv(py, [py] + sys.argv)
