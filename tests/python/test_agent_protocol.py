"""What coding agents need from /v1/chat/completions beyond plain chat, checked with the official
`openai` SDK against a live server and a real (tiny) model: tool calls forced by grammar and
round-tripped, streamed tool calls assembled by the SDK's helpers, structured output parsed
into pydantic models, embeddings, and llama-server's extra endpoints.

SmolLM2-135M has no tool support in its template: tools reach it through Paddock's generic tool
prompt, and the grammar makes its answer a valid call anyway. That is the point of the test.
"""

from __future__ import annotations

import json
import math

import openai
import pydantic
import pytest
import requests

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a timezone.",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}
ASK = "What is the weather in Paris right now, in Celsius?"


def ask_weather(client, model, **kw):
    kw.setdefault("tool_choice", "required")
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": ASK}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        temperature=0,
        max_tokens=96,
        parallel_tool_calls=False,
        **kw,
    )


def test_required_tool_choice_gives_a_valid_call_and_the_result_round_trips(client, model):
    first = ask_weather(client, model)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.id.startswith("call")
    assert call.function.name in ("get_weather", "get_time")
    args = json.loads(call.function.arguments)
    schema = WEATHER_TOOL if call.function.name == "get_weather" else TIME_TOOL
    assert set(args) == set(schema["function"]["parameters"]["required"])
    assert all(isinstance(v, str) for v in args.values())

    answer = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "user", "content": ASK},
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18 degrees, sunny"},
        ],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice="none",
        temperature=0,
        max_tokens=40,
    )
    message = answer.choices[0].message
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert message.tool_calls is None
    assert message.content and message.content.strip()


def test_named_tool_choice_calls_that_tool(client, model):
    r = ask_weather(client, model, tool_choice={"type": "function", "function": {"name": "get_time"}})
    calls = r.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_time"]
    assert isinstance(json.loads(calls[0].function.arguments)["tz"], str)


def test_auto_tool_choice_can_answer_in_text(client, model):
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Say hello."}],
        tools=[WEATHER_TOOL],
        temperature=0,
        max_tokens=24,
    )
    choice = r.choices[0]
    # A tiny model may or may not call; either way the answer is well-formed.
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        json.loads(choice.message.tool_calls[0].function.arguments)
    else:
        assert choice.message.content


class Weather(pydantic.BaseModel):
    city: str
    unit: str


def test_streamed_tool_call_is_assembled_by_the_sdk_helper(client, model):
    tool = openai.pydantic_function_tool(Weather, name="get_weather", description="Weather for a city.")
    with client.chat.completions.stream(
        model=model,
        messages=[{"role": "user", "content": ASK}],
        tools=[tool],
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0,
        max_tokens=96,
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in kinds
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert isinstance(call.function.parsed_arguments, Weather)
    assert final.choices[0].finish_reason == "tool_calls"


def test_raw_stream_sends_id_and_name_before_arguments(client, model):
    stream = ask_weather(client, model, stream=True)
    calls = [c.choices[0].delta.tool_calls for c in stream if c.choices and c.choices[0].delta.tool_calls]
    assert calls, "no tool call deltas"
    first = calls[0][0]
    assert first.index == 0 and first.id and first.function.name
    args = "".join(d[0].function.arguments or "" for d in calls)
    json.loads(args)


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_parse_with_a_pydantic_schema_returns_a_valid_object(client, model):
    r = client.chat.completions.parse(
        model=model,
        messages=[{"role": "user", "content": "Invent a person. Reply in JSON."}],
        response_format=Person,
        temperature=0,
        max_tokens=64,
    )
    person = r.choices[0].message.parsed
    assert isinstance(person, Person)
    assert person.name


def test_json_object_mode_returns_a_json_object(client, model):
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": 'Reply with the JSON object {"ok": true} and nothing else.'}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=120,
    )
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content), dict)


@pytest.mark.parametrize(
    "body, param",
    [
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]}, "tools[0].function.parameters"),
        ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER_TOOL] * 2}, "tools[1].function.name"),
        ({"tools": [dict(WEATHER_TOOL, function=dict(WEATHER_TOOL["function"], name=f"t{i}")) for i in range(129)]}, "tools"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format.json_schema.schema"),
    ],
)
def test_bad_tool_requests_are_clear_400s(client, model, body, param):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4, **body
        )
    assert e.value.body["param"] == param, e.value.body


def test_tool_result_without_a_matching_call_is_refused(client, model):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "1"}],
            max_tokens=4,
        )
    assert e.value.body["param"] == "messages[1].tool_call_id"
    assert client.models.list().data  # still serving


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_embeddings_put_similar_sentences_closer(client, model):
    texts = ["The cat sits on the mat.", "A cat is sitting on a mat.", "Quarks carry a colour charge."]
    r = client.embeddings.create(model=model, input=texts)
    assert [d.index for d in r.data] == [0, 1, 2]
    a, b, c = (d.embedding for d in r.data)
    assert abs(sum(x * x for x in a) - 1) < 1e-3  # normalised
    assert cosine(a, b) > cosine(a, c) and cosine(a, b) > cosine(b, c)
    assert r.usage.prompt_tokens > 0

    singles = [client.embeddings.create(model=model, input=t).data[0].embedding for t in texts]
    for batched, single in zip((a, b, c), singles):
        assert max(abs(x - y) for x, y in zip(batched, single)) < 1e-5


def test_embeddings_take_token_ids_and_float_encoding(client, model, target):
    tokens = requests.post(f"{target.root}/tokenize", json={"content": "hello world"}).json()["tokens"]
    by_ids = client.embeddings.create(model=model, input=[tokens], encoding_format="float")
    by_text = client.embeddings.create(model=model, input="hello world", encoding_format="float")
    assert len(by_ids.data[0].embedding) == len(by_text.data[0].embedding)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=model, input=[[10**9]])


def test_llama_server_extras(target, model):
    toks = requests.post(f"{target.root}/tokenize", json={"content": "Hello world", "with_pieces": True}).json()
    pieces = "".join(t["piece"] for t in toks["tokens"])
    assert pieces == "Hello world"
    ids = [t["id"] for t in toks["tokens"]]
    text = requests.post(f"{target.root}/detokenize", json={"tokens": ids}).json()["content"]
    assert text == "Hello world"
    bad = requests.post(f"{target.root}/detokenize", json={"tokens": [-5]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tokens"

    prompt = requests.post(
        f"{target.root}/apply-template",
        json={"messages": [{"role": "user", "content": "Hi there"}], "tools": [WEATHER_TOOL]},
    ).json()["prompt"]
    assert "Hi there" in prompt and "get_weather" in prompt and "<tool_call>" in prompt

    props = requests.get(f"{target.root}/props").json()
    assert props["total_slots"] >= 1 and props["default_generation_settings"]["n_ctx"] > 0
