"""ccproxy: one HTTP server between LLM clients and LLM providers."""

__version__ = "0.1.0"
