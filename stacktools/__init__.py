"""Tools for the program's Pulumi stacks that need no Pulumi CLI: the offline engine that runs the
program under mocks (engine.py), the stack export as ``docker stack deploy`` files (export/,
``python -m stacktools render``), the drift report (drift.py), and the delivery pipeline's
facts and checks: the branch -> stack map (pipeline.py), the GitHub environments and their
secrets (environments.py), the state backends CI can use (backend.py), the committed stack
ciphertext (stack_secrets.py), the preview's pull-request comment (preview_comment.py) and the
workflow lint (workflow_lint.py)."""
