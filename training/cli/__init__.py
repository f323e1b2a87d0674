"""The ``bonemet`` command line: thin commands over library functions.

``app`` is the Typer application (:mod:`training.cli.app`); the commands live by concern in
:mod:`~training.cli.data`, :mod:`~training.cli.models`, :mod:`~training.cli.serving`,
:mod:`~training.cli.study`, :mod:`~training.cli.monitor` and :mod:`~training.cli.team`, and are registered here in the order
``bonemet --help`` lists them. What they print is in :mod:`training.cli.output`.
"""

from __future__ import annotations

from training.cli import data, models, monitor, serving, study, team
from training.cli.app import app

app.command()(data.validate)
app.command()(data.simulate)
app.command()(models.train)
app.command()(models.evaluate)
app.command()(models.promote)
app.command()(models.compare)
app.command()(serving.predict)
app.command()(serving.serve)
app.command()(study.study)
app.command()(monitor.monitor)
app.command()(data.cytometry)
app.command("tracking-server")(team.tracking_server)
app.command("ui-command")(team.ui_command)


def main() -> None:  # pragma: no cover - console entry point
    app()


__all__ = ["app", "main"]
