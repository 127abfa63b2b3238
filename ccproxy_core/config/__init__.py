"""The configuration: its model, how its layers load, and the foreign formats it reads."""
