"""The pending-calls rule, which both OpenAI request shapes ask of an Anthropic history.

Chat Completions wants an assistant turn's `tool_calls` followed at once by one `tool` message
per call; the Responses API wants each `function_call` answered by its `function_call_output`
before anything else is said. Anthropic histories break that two ways: a call may never get its
result (the user interrupted the tool), and Claude Code sends mid-conversation system notes that
land between a call and its result. `PendingCalls` keeps the calls of the last assistant turn
that still await a result and the notes that came meanwhile:

    expect(id)   a call of the assistant turn just read now awaits its result
    answer(id)   a result came: True if it answers an awaited call, False for an orphan
    note(item)   a note: returned to go out now, or held while calls await (nothing returned)
    settle()     the turn is over: an answer filled in for each call left without one, then
                 the held notes (returned, in that order; nothing awaits or is held after)

The wire shapes stay with the translators (chat_request, responses_upstream_input): each
passes the function that writes its filled-in answer and places what is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from attrs import define, field

from ccproxy_core.core.wire import JSON

MISSING_RESULT = "[no result: the tool call was not answered]"

_NOTHING: tuple[JSON, ...] = ()


@define
class PendingCalls:
    """The calls awaiting their results and the notes held behind them, for one conversation."""

    # The item that answers a call left without a result, by the call's id (upstream form).
    missing: Callable[[str], JSON]
    awaiting: list[str] = field(factory=list, init=False)
    held: list[JSON] = field(factory=list, init=False)

    def expect(self, call_id: str) -> None:
        self.awaiting.append(call_id)

    def answer(self, call_id: str) -> bool:
        if call_id not in self.awaiting:
            return False
        self.awaiting.remove(call_id)
        return True

    def note(self, item: JSON) -> Sequence[JSON]:
        if self.awaiting:
            self.held.append(item)
            return _NOTHING
        return (item,)

    def settle(self) -> Sequence[JSON]:
        if not self.awaiting and not self.held:
            return _NOTHING  # most messages: nothing was pending
        out = [self.missing(call_id) for call_id in self.awaiting]
        out.extend(self.held)
        self.awaiting, self.held = [], []
        return out
