"""Training: the trainer and its config, Hungarian matching, the losses, torch box operations
and checkpoint averaging (docs/DESIGN.md "Training")."""
