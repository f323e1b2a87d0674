"""Where runs and versions are stored: the MLflow store.

- ``backend``: the tracking URI, experiments with a project-local artifact location, a
  training's owner tags, reaping runs whose process was killed, dataset inputs.
- ``server``: the ``bonemet tracking-server`` (a team's server on PostgreSQL) and
  ``bonemet ui-command`` command lines.
"""
