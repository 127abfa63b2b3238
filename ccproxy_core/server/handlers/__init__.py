"""One module per HTTP surface; each parses, calls pure functions, and pumps bytes."""
