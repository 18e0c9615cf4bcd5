"""Tools for the program's Pulumi stacks that need no Pulumi CLI: the offline engine that runs the
program under mocks (engine.py), the stack export as ``docker stack deploy`` files (export/,
``python -m stacktools render``), the drift report (drift.py) and the branch -> stack map of the
pipeline (pipeline.py)."""
