import sys
import pathlib

# The benchmark helpers import the top-level test helpers (conftest, oracle).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
