"""Pure decisions: no I/O, no clocks of their own (see the package docstring)."""
