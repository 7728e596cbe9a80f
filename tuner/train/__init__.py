"""The trainer: plain PyTorch, trials side by side, device placement and metrics."""
