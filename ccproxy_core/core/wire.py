"""The wire formats ccproxy reads and writes, as `TypedDict`s, and the one `JSON` alias.

Bodies stay plain dicts on the hot path (orjson -> dict -> translate -> dict -> orjson); these
types only name their shapes for the reader and for mypy. They describe what ccproxy relies
on, not every field a provider may send: unknown fields pass through untouched.

    Anthropic Messages    MessagesRequest, Message, ContentBlock, Usage, AnthropicErrorBody
    OpenAI Chat           ChatRequest, ChatCompletion, ChatChunk, ChatUsage, OpenAIErrorBody
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

JSON = dict[str, Any]
"""Any JSON object: the type of a body before its shape is checked."""


# Only mypy and the reader need the shapes: at run time, making 15 TypedDict classes cost about
# 6 ms and 85 kB of every start (every module imports this one for `JSON`).
if TYPE_CHECKING:
    from typing import Literal, NotRequired, TypedDict

    # --- Anthropic Messages -----------------------------------------------------------------------

    class ContentBlock(TypedDict, total=False):
        type: str  # text | image | tool_use | tool_result | thinking | redacted_thinking | ...
        text: str
        id: str
        name: str
        input: JSON
        tool_use_id: str
        content: str | list[JSON]
        thinking: str
        signature: str
        cache_control: JSON

    class MessageParam(TypedDict):
        role: Literal["user", "assistant", "system"]
        content: str | list[ContentBlock]

    class MessagesRequest(TypedDict, total=False):
        model: str
        messages: list[MessageParam]
        system: str | list[ContentBlock]
        max_tokens: int
        stream: bool
        tools: list[JSON]
        tool_choice: JSON
        thinking: JSON
        metadata: JSON
        temperature: float
        stop_sequences: list[str]

    class Usage(TypedDict, total=False):
        input_tokens: int
        output_tokens: int
        cache_read_input_tokens: int
        cache_creation_input_tokens: int
        cache_creation: JSON  # {"ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"}

    class Message(TypedDict):
        id: str
        type: Literal["message"]
        role: Literal["assistant"]
        model: str
        content: list[ContentBlock]
        stop_reason: str | None
        stop_sequence: str | None
        usage: Usage

    class AnthropicError(TypedDict):
        type: str
        message: str

    class AnthropicErrorBody(TypedDict):
        type: Literal["error"]
        error: AnthropicError
        request_id: NotRequired[str]

    # --- OpenAI Chat Completions ------------------------------------------------------------------

    class ChatMessage(TypedDict, total=False):
        role: str  # system | developer | user | assistant | tool
        content: str | list[JSON] | None
        tool_calls: list[JSON]
        tool_call_id: str
        name: str
        reasoning_content: str

    class ChatRequest(TypedDict, total=False):
        model: str
        messages: list[ChatMessage]
        stream: bool
        stream_options: JSON
        max_tokens: int
        max_completion_tokens: int
        tools: list[JSON]
        tool_choice: str | JSON
        response_format: JSON
        reasoning_effort: str
        temperature: float
        stop: str | list[str]
        user: str

    class ChatUsage(TypedDict, total=False):
        prompt_tokens: int
        completion_tokens: int
        total_tokens: int
        prompt_tokens_details: JSON  # {"cached_tokens": int}
        completion_tokens_details: JSON  # {"reasoning_tokens": int}

    class ChatChoice(TypedDict, total=False):
        index: int
        message: ChatMessage
        delta: ChatMessage
        finish_reason: str | None

    class ChatCompletion(TypedDict):
        id: str
        object: Literal["chat.completion"]
        created: int
        model: str
        choices: list[ChatChoice]
        usage: NotRequired[ChatUsage]

    class ChatChunk(TypedDict):
        id: str
        object: Literal["chat.completion.chunk"]
        created: int
        model: str
        choices: list[ChatChoice]
        usage: NotRequired[ChatUsage | None]

    class OpenAIError(TypedDict):
        message: str
        type: str
        param: str | None
        code: str | None

    class OpenAIErrorBody(TypedDict):
        error: OpenAIError
