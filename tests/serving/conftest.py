"""The real server shared by the serving tests: ``bonemet serve`` of the session's trained
store, one per test module (helpers in :mod:`tests.serving.servers`)."""

import pytest

from tests.serving.servers import bonemet_serve


@pytest.fixture(scope="module")
def server(trained_store, tmp_path_factory):
    with bonemet_serve(trained_store, tmp_path_factory, "server") as running:
        yield running["base"]
