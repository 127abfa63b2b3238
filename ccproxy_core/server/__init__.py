"""The aiohttp shell: every socket, task and clock read of the running proxy lives here."""
