"""Anthropic Messages API, checked with the official `anthropic` SDK against a live server:
plain and streamed messages, system prompts and stop sequences, a tool_use round trip (forced
with tool_choice "any", so even a tiny model makes a valid call), token counting, and the SDK's
error classes."""

from __future__ import annotations

import anthropic
import pytest

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
ASK = "What is the weather in Paris?"
# The SDK no longer takes `temperature` as an argument; the API still does.
GREEDY = {"temperature": 0}


@pytest.fixture(scope="module")
def claude(target):
    return anthropic.Anthropic(base_url=target.root, api_key=target.api_key, max_retries=0, timeout=180.0)


def test_message_has_text_usage_and_stop_reason(claude, model):
    m = claude.messages.create(
        model=model,
        max_tokens=24,
        system="You are terse.",
        messages=[{"role": "user", "content": "Name a colour of the rainbow."}],
        extra_body=GREEDY,
    )
    assert m.type == "message" and m.role == "assistant" and m.model == model
    assert m.content[0].type == "text" and m.content[0].text.strip()
    assert m.stop_reason in ("end_turn", "max_tokens")
    assert m.usage.input_tokens > 0 and 0 < m.usage.output_tokens <= 24


def test_max_tokens_is_reported(claude, model):
    m = claude.messages.create(
        model=model, max_tokens=3, messages=[{"role": "user", "content": "Count from one to twenty."}]
    )
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 3


def test_stream_rebuilds_the_same_text(claude, model):
    kw = dict(model=model, max_tokens=24, extra_body=GREEDY, messages=[{"role": "user", "content": "Say hello."}])
    with claude.messages.stream(**kw) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed and final.content[0].text == streamed
    assert final.usage.output_tokens > 0
    assert claude.messages.create(**kw).content[0].text == streamed


def test_tool_use_round_trip(claude, model):
    first = claude.messages.create(
        model=model,
        max_tokens=64,
        extra_body=GREEDY,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": ASK}],
    )
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input["city"], str) and use.id

    answer = claude.messages.create(
        model=model,
        max_tokens=32,
        extra_body=GREEDY,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": ASK},
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C and sunny"}]},
        ],
        tool_choice={"type": "none"},
    )
    assert answer.stop_reason in ("end_turn", "max_tokens")
    assert answer.content[0].type == "text" and answer.content[0].text.strip()


def test_streamed_tool_use_arrives_as_input_json(claude, model):
    with claude.messages.stream(
        model=model,
        max_tokens=64,
        extra_body=GREEDY,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": ASK}],
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert "input_json" in kinds
    use = next(b for b in final.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input["city"], str)
    assert final.stop_reason == "tool_use"


def test_count_tokens_counts_the_rendered_prompt(claude, model):
    short = claude.messages.count_tokens(model=model, messages=[{"role": "user", "content": "hi"}])
    longer = claude.messages.count_tokens(
        model=model, messages=[{"role": "user", "content": "hi " * 50}], tools=[WEATHER]
    )
    assert 0 < short.input_tokens < longer.input_tokens


def test_errors_use_anthropic_classes_and_shape(claude, model):
    with pytest.raises(anthropic.NotFoundError) as e:
        claude.messages.create(model="no-such-model", max_tokens=4, messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model=model, max_tokens=4, messages=[{"role": "robot", "content": "hi"}])
    assert e.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(
            model=model,
            max_tokens=4,
            messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}]}],
        )
    # Still serving afterwards.
    assert claude.messages.create(model=model, max_tokens=2, messages=[{"role": "user", "content": "hi"}]).content
