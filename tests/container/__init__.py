"""The container tests (a package, so that their conftest.py is `container.conftest` and does not
replace tests/conftest.py as the module `conftest` that the other tests import from)."""
