"""The stack configuration: ``model.py`` (``StackConfig``) assembled from its sections, their
value types and rules, and ``loader.py``, which reads the ``brandclub:*`` keys into it.
``secret_rules.py`` and ``units.py`` need the standard library alone."""
