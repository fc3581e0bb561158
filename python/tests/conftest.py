"""Fixtures for the Python package's tests: the end-to-end tests' helpers and
Fashion-MNIST fixtures (tests/conftest.py), loaded under another module name
so both suites keep their own `conftest`. Run with the venv's interpreter
after `pip install .` (scripts/test.sh does both)."""
import importlib.util
import pathlib
import sys

_path = pathlib.Path(__file__).resolve().parents[2] / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("shardset_e2e_conftest", _path)
e2e = importlib.util.module_from_spec(_spec)
sys.modules["shardset_e2e_conftest"] = e2e
_spec.loader.exec_module(e2e)

# Fixtures are found by name in this module.
bin_path = e2e.bin_path
fmnist_tree = e2e.fmnist_tree
fmnist_train_native = e2e.fmnist_train_native
