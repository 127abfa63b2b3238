"""SDK mode: `/claude/...` and `/sdk/...` served by the local Claude Code CLI.

The CLI is driven through its documented stream-json protocol (`claude -p --input-format
stream-json --output-format stream-json --verbose`), not through the `claude-agent-sdk` wheel:
that wheel is 178 MB because it bundles its own copy of the CLI, and the user already has one.

    command.py       pure: the argv and environment of one CLI process (safety flags live here)
    conversation.py  pure: a client's messages -> the one user turn the CLI is sent
    sessions.py      pure: a client's session id -> CLI session UUID, turns already seen
    protocol.py      pure: CLI NDJSON messages -> Anthropic Messages stream events, usage record
    models.py        the model names and aliases the CLI accepts
    process.py       I/O: one CLI process (NDJSON in and out, process-group kill) and one turn
    runner.py        I/O: which process serves a turn: warm sessions, concurrency, interrupts, TTL
"""
