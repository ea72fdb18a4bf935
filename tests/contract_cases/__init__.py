"""One small, fast case per domain for tests/test_contract.py.

Each module ``<domain>.py`` defines ``run(tmp_path) -> DomainResult`` (calls ``run_<domain>`` on
small inputs it makes or finds in ../shared/data), ``ENTRY`` (the dotted name of the
``run_<domain>`` function) and ``INPUT_ROLES`` (the roles its provenance lists with a SHA-256).
"""
