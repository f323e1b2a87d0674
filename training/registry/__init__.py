"""The model registry: versions, their tags and descriptions, aliases, and the policies that
move them.

- ``versions``: the registered model, its versions (tags, summary, description), aliases (the
  one module that writes them: :func:`versions.set_alias`), resolving a ``models:/`` URI, the
  history of trainings.
- ``selection``: choosing the challenger among a training's candidates (policy).
- ``gates``: the promotion policy, each gate's verdict with its interval (policy).
- ``promotion``: moving ``champion`` (``bonemet promote``): completeness, the smoke check, the
  gates, the audit record, then the alias (through ``versions.set_alias``).
- ``compare``: registered versions side by side (``bonemet compare``).
- ``card``: the TRIPOD+AI model card (facts, text, rendering).
- ``logged_model``: what a logged model declares (pip requirements, input signature).
- ``bento``: importing a registered version into the BentoML store for serving.
"""
