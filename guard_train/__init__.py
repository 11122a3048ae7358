"""guard_train: SFT, preference pairs, DPO, GRPO and iterative refinement for reasoning guard models."""
