"""Pure facts about providers: presets, their URLs, auth headers and quirks."""
