"""OpenAI Responses API (stateless), checked with the official `openai` SDK: text, streaming
through the SDK's event helper, a function-call round trip, `responses.parse` into a pydantic
model, and a request shaped like Codex CLI's (developer items, tool types Paddock ignores)."""

from __future__ import annotations

import json

import openai
import pydantic
import pytest

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def test_text_response(client, model):
    r = client.responses.create(model=model, input="Name a colour of the rainbow.", max_output_tokens=16, temperature=0)
    assert r.object == "response" and r.status in ("completed", "incomplete")
    assert r.output_text.strip()
    assert r.usage.input_tokens > 0 and 0 < r.usage.output_tokens <= 16


def test_stream_events_rebuild_the_final_response(client, model):
    with client.responses.stream(
        model=model, input="Say hello.", instructions="Be brief.", max_output_tokens=16, temperature=0
    ) as stream:
        events = list(stream)
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    # 16 tokens may cut the answer short: then the last event is response.incomplete, which the
    # SDK's get_final_response() does not accept, so the final response is read from it.
    last = events[-1]
    assert last.type in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert deltas and "".join(deltas) == last.response.output_text
    assert last.response.usage.output_tokens > 0


def test_function_call_round_trip(client, model):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.responses.create(
        model=model, input=ask, tools=[WEATHER], tool_choice="required", max_output_tokens=64, temperature=0
    )
    calls = [o for o in first.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert isinstance(json.loads(calls[0].arguments)["city"], str)

    history = ask + [c.model_dump(exclude_none=True) for c in calls[:1]]
    history.append({"type": "function_call_output", "call_id": calls[0].call_id, "output": "18C, sunny"})
    answer = client.responses.create(model=model, input=history, tools=[WEATHER], max_output_tokens=32, temperature=0)
    assert answer.output_text.strip() or any(o.type == "function_call" for o in answer.output)


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_parse_into_a_pydantic_model(client, model):
    r = client.responses.parse(model=model, input="Invent a person.", text_format=Person, max_output_tokens=64, temperature=0)
    assert isinstance(r.output_parsed, Person)


def test_codex_style_request_is_accepted(client, model):
    r = client.responses.create(
        model=model,
        instructions="You are a coding agent.",
        input=[
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Answer briefly."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say ok."}]},
        ],
        tools=[WEATHER, {"type": "web_search"}],
        store=False,
        include=["reasoning.encrypted_content"],
        reasoning={"summary": "auto"},
        prompt_cache_key="paddock-test",
        parallel_tool_calls=True,
        max_output_tokens=16,
        stream=False,
    )
    assert r.status in ("completed", "incomplete")


def test_stateful_features_are_refused_clearly(client, model):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=model, input="hi", previous_response_id="resp_123", max_output_tokens=4)
    assert "previous_response_id" in json.dumps(e.value.body)
