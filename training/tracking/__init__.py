"""MLflow tracking and the model registry.

- ``store``: the tracking URI, experiments, a training's owner tags, reaping runs whose process
  was killed, dataset inputs.
- ``server``: the ``bonemet tracking-server`` and ``bonemet ui-command`` command lines.
- ``registry``: the registered model, its versions (tags, summary and card), aliases, resolving a
  ``models:/`` URI, the history of trainings.
- ``gates``: the promotion policy and its gates, choosing the challenger, promoting the champion.
- ``compare``: registered versions side by side (``bonemet compare``).
- ``logged_model``: what a logged model declares (pip requirements, input signature).
- ``model_card``: the TRIPOD+AI model card (facts, text, rendering).
- ``bento``: importing a registered version into the BentoML store for serving.
- ``cytometry_run``: the MLflow run of a ``bonemet cytometry`` batch.
"""
