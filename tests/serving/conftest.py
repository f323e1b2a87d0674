"""The real server fixture shared by the serving tests (defined in test_service.py)."""

from tests.serving.test_service import server  # noqa: F401 - pytest fixture re-export
