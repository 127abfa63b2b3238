"""What a Responses API provider answers, built item by item in the shape OpenAI streams it.

`stream_events(items)` gives the SSE events of one response (created, in_progress, per item
its added / delta / done events, completed) with sequence numbers, as the Codex fixtures and
OpenAI's API reference show them; `response(items)` the non-streamed `response` object.
Items are the finished output items (`message`, `function_call`, `reasoning`); deltas split
their text in two, so a translator sees more than one.
"""

from __future__ import annotations

from typing import Any

import orjson

JSON = dict[str, Any]
RESPONSE_ID = "resp_0a1b2c3d4e5f"
USAGE = {
    "input_tokens": 120,
    "input_tokens_details": {"cached_tokens": 100},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 10},
    "total_tokens": 150,
}


def message(text: str, item_id: str = "msg_1") -> JSON:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def function_call(name: str, arguments: JSON, call_id: str = "call_1", item_id: str = "fc_1") -> JSON:
    return {
        "id": item_id,
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": orjson.dumps(arguments).decode(),
    }


def reasoning(summary: str, encrypted: str, item_id: str = "rs_1") -> JSON:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": summary}],
        "encrypted_content": encrypted,
    }


def response(items: list[JSON], *, model: str = "gpt-5", status: str = "completed", **extra: Any) -> JSON:
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": 1795976373,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": items,
        "usage": USAGE if status == "completed" else None,
        **extra,
    }


def _halves(text: str) -> list[str]:
    cut = max(1, len(text) // 2)
    return [part for part in (text[:cut], text[cut:]) if part]


def stream_events(items: list[JSON], *, model: str = "gpt-5") -> list[bytes]:
    """The SSE events of a streamed response whose output is `items`, ending in response.completed."""
    events: list[JSON] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, **fields, "sequence_number": len(events)})

    opening = response([], model=model, status="in_progress")
    emit("response.created", response=opening)
    emit("response.in_progress", response=opening)
    for index, item in enumerate(items):
        at = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        if kind == "message":
            emit(
                "response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []}
            )
            part = item["content"][0]
            emit("response.content_part.added", **at, content_index=0, part={**part, "text": ""})
            for piece in _halves(part["text"]):
                emit("response.output_text.delta", **at, content_index=0, delta=piece, logprobs=[])
            emit("response.output_text.done", **at, content_index=0, text=part["text"], logprobs=[])
            emit("response.content_part.done", **at, content_index=0, part=part)
        elif kind == "function_call":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for piece in _halves(item["arguments"]):
                emit("response.function_call_arguments.delta", **at, delta=piece)
            emit("response.function_call_arguments.done", **at, arguments=item["arguments"])
        elif kind == "reasoning":
            emit(
                "response.output_item.added",
                output_index=index,
                item={"id": item["id"], "type": "reasoning", "summary": []},
            )
            text = item["summary"][0]["text"]
            emit(
                "response.reasoning_summary_part.added",
                **at,
                summary_index=0,
                part={"type": "summary_text", "text": ""},
            )
            for piece in _halves(text):
                emit("response.reasoning_summary_text.delta", **at, summary_index=0, delta=piece)
            emit("response.reasoning_summary_text.done", **at, summary_index=0, text=text)
            emit("response.reasoning_summary_part.done", **at, summary_index=0, part=item["summary"][0])
        emit("response.output_item.done", output_index=index, item=item)
    emit("response.completed", response=response(items, model=model))
    return [b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events]


def failed_event(sequence_number: int, code: str = "server_error", message: str = "The model broke down") -> bytes:
    failed = response([], status="failed", error={"code": code, "message": message})
    event = {"type": "response.failed", "response": failed, "sequence_number": sequence_number}
    return b"event: response.failed\ndata: " + orjson.dumps(event) + b"\n\n"
