"""Client keys: one key per person or tool, each with its own budgets, limits and model list."""
