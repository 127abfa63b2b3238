"""Pure, sans-I/O converters between the Anthropic Messages and OpenAI dialects."""
