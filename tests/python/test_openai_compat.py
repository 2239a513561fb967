"""OpenAI API compatibility, checked with the official `openai` SDK against a live server.

Every test asserts behaviour (content, token accounting, error classes and bodies), not only
that a request returned 200. Greedy decoding (temperature 0) is used wherever results are compared.
"""

from __future__ import annotations

import concurrent.futures as cf
import uuid

import openai
import pytest
import requests

QUESTION = "Name three colors of the rainbow. Answer in one short sentence."


def chat(client, model, content, **kw):
    kw.setdefault("temperature", 0)
    kw.setdefault("max_tokens", 32)
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], **kw
    )


def assert_usage_consistent(usage, max_completion=None):
    assert usage is not None, "response has no usage"
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if max_completion is not None:
        assert usage.completion_tokens <= max_completion


def collect_chat_stream(stream):
    chunks = list(stream)
    assert chunks, "stream produced no chunks"
    text = "".join(
        (c.choices[0].delta.content or "") for c in chunks if c.choices and c.choices[0].delta
    )
    return chunks, text


# --- models -------------------------------------------------------------------------------------


def test_models_list_contains_model(client, model):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert model in ids, f"{model!r} not in /v1/models: {ids}"
    for m in models.data:
        assert m.object == "model"


# --- chat completions ---------------------------------------------------------------------------


def test_chat_nonstream_text_usage_and_determinism(client, model):
    r1 = chat(client, model, QUESTION, max_tokens=32)
    assert r1.object == "chat.completion"
    assert r1.id
    assert len(r1.choices) == 1
    choice = r1.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert_usage_consistent(r1.usage, max_completion=32)

    r2 = chat(client, model, QUESTION, max_tokens=32)
    assert r2.choices[0].message.content == choice.message.content, "temperature 0 is not deterministic"
    assert r2.usage.prompt_tokens == r1.usage.prompt_tokens
    assert r2.usage.completion_tokens == r1.usage.completion_tokens


def test_chat_stream_matches_nonstream(client, model):
    params = dict(temperature=0, max_tokens=24)
    full = chat(client, model, QUESTION, **params)
    expected = full.choices[0].message.content

    chunks, text = collect_chat_stream(chat(client, model, QUESTION, stream=True, **params))
    assert text == expected, f"stream {text!r} != non-stream {expected!r}"

    ids = {c.id for c in chunks}
    assert len(ids) == 1 and next(iter(ids)), f"chunks do not share one id: {ids}"
    assert all(c.object == "chat.completion.chunk" for c in chunks)

    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant", "first delta must carry the role"
    last = with_choices[-1].choices[0]
    assert last.finish_reason == full.choices[0].finish_reason
    # finish_reason appears exactly once, on the last choice chunk.
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])


def test_chat_stream_include_usage(client, model):
    stream = chat(
        client, model, QUESTION, stream=True, max_tokens=16, stream_options={"include_usage": True}
    )
    chunks, text = collect_chat_stream(stream)
    final = chunks[-1]
    assert final.choices == [], "usage chunk must have empty choices"
    assert_usage_consistent(final.usage, max_completion=16)
    # Only the final chunk carries usage.
    assert all(c.usage is None for c in chunks[:-1])
    assert text.strip()

    full = chat(client, model, QUESTION, max_tokens=16)
    assert final.usage.prompt_tokens == full.usage.prompt_tokens
    assert final.usage.completion_tokens == full.usage.completion_tokens


def test_chat_max_tokens_gives_length(client, model):
    r = chat(client, model, "Write a long story about a dragon who learns to cook.", max_tokens=5)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 5
    assert r.choices[0].message.content


def test_chat_stop_string_honored(client, model):
    prompt = "Count from 1 to 30, separated by commas and spaces. Output only the numbers."
    base = chat(client, model, prompt, max_tokens=48).choices[0].message.content
    assert len(base) >= 12, f"model output too short to pick a stop string: {base!r}"
    # Pick a stop string from the middle of the greedy output; the stopped answer must be
    # exactly the text before its first occurrence.
    mid = len(base) // 2
    stop = base[mid : mid + 3]
    cut = base.find(stop)
    expected = base[:cut]

    r = chat(client, model, prompt, max_tokens=48, stop=[stop])
    out = r.choices[0].message.content or ""
    assert stop not in out
    assert r.choices[0].finish_reason == "stop"
    assert out == expected, f"stop={stop!r}: got {out!r}, expected {expected!r}"

    _, streamed = collect_chat_stream(chat(client, model, prompt, max_tokens=48, stop=[stop], stream=True))
    assert stop not in streamed
    assert streamed == expected


# --- legacy completions -------------------------------------------------------------------------


def test_completions_nonstream_and_stream(client, model):
    params = dict(model=model, prompt="The capital of France is", max_tokens=12, temperature=0)
    r = client.completions.create(**params)
    assert r.object == "text_completion"
    assert len(r.choices) == 1
    text = r.choices[0].text
    assert isinstance(text, str) and text.strip()
    assert r.choices[0].finish_reason in ("stop", "length")
    assert_usage_consistent(r.usage, max_completion=12)

    chunks = list(client.completions.create(stream=True, **params))
    assert chunks
    streamed = "".join(c.choices[0].text for c in chunks if c.choices)
    assert streamed == text
    assert len({c.id for c in chunks}) == 1
    last = [c for c in chunks if c.choices][-1]
    assert last.choices[0].finish_reason == r.choices[0].finish_reason


def test_completions_max_tokens_gives_length(client, model):
    r = client.completions.create(
        model=model, prompt="Once upon a time", max_tokens=5, temperature=0
    )
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 5


# --- errors -------------------------------------------------------------------------------------


def error_body(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"not an OpenAI error body: {body}"
    err = body["error"]
    assert isinstance(err.get("message"), str) and err["message"], f"error.message missing: {body}"
    assert isinstance(err.get("type"), str) and err["type"], f"error.type missing: {body}"
    return err


def test_unknown_model_is_not_found(client):
    # OpenAI answers 404 model_not_found; llama-server in single-model mode ignores "model".
    with pytest.raises(openai.NotFoundError) as ei:
        chat(client, "no-such-model-" + uuid.uuid4().hex[:8], "hi", max_tokens=4)
    error_body(ei.value)


def test_bad_param_type_is_bad_request(client, model):
    with pytest.raises(openai.BadRequestError) as ei:
        chat(client, model, "hi", max_tokens=4, extra_body={"temperature": "hot"})
    error_body(ei.value)


def test_malformed_body_is_bad_request(target, model):
    # Raw HTTP: messages must be an array.
    r = requests.post(
        target.base_url + "/chat/completions",
        json={"model": model, "messages": "not a list", "max_tokens": 4},
        headers={"Authorization": f"Bearer {target.api_key}"},
        timeout=60,
    )
    assert r.status_code == 400, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["message"] and err["type"]


def test_prompt_longer_than_context_is_bad_request(client, model):
    # ~12k tokens: more than the 4096-token context the test server runs with.
    long_text = " ".join(f"item{i}" for i in range(6000))
    with pytest.raises(openai.BadRequestError) as ei:
        chat(client, model, long_text, max_tokens=4)
    err = error_body(ei.value)
    assert err["type"]


def test_n_greater_than_one_is_bad_request(client, model):
    # Paddock's contract: one choice per request; n>1 is refused rather than silently ignored.
    # (OpenAI and llama-server both generate n choices; this is a deliberate Paddock limit.)
    with pytest.raises(openai.BadRequestError) as ei:
        chat(client, model, "hi", max_tokens=4, n=2)
    error_body(ei.value)


# --- prefix reuse -------------------------------------------------------------------------------


def test_second_turn_reuses_prefix_cache(client, model):
    nonce = uuid.uuid4().hex  # makes the prefix new to the server, so turn 1 is cold
    code = "\n".join(
        f"fn helper_{i}(x: u32) -> u32 {{ x.wrapping_mul({i}) ^ 0x{i:04x} }}" for i in range(40)
    )
    messages = [
        {"role": "system", "content": f"Session {nonce}. You are a code reviewer.\n{code}"},
        {"role": "user", "content": "Which helper multiplies by 7? Answer briefly."},
    ]
    r1 = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=16)
    assert r1.usage.prompt_tokens > 500, f"prefix too short to be meaningful: {r1.usage.prompt_tokens}"
    cached1 = getattr(getattr(r1.usage, "prompt_tokens_details", None), "cached_tokens", None) or 0

    messages += [
        {"role": "assistant", "content": r1.choices[0].message.content},
        {"role": "user", "content": "And which one multiplies by 9?"},
    ]
    r2 = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=16)
    details = r2.usage.prompt_tokens_details
    assert details is not None, "usage.prompt_tokens_details missing"
    assert details.cached_tokens is not None, "usage.prompt_tokens_details.cached_tokens missing"
    assert details.cached_tokens > 0
    # The whole first prompt is a prefix of the second; most of it must come from the cache.
    assert details.cached_tokens >= 0.8 * r1.usage.prompt_tokens, (details.cached_tokens, r1.usage.prompt_tokens)
    assert details.cached_tokens < r2.usage.prompt_tokens
    assert cached1 < 0.5 * r1.usage.prompt_tokens, "first turn should have been (mostly) cold"


# --- concurrency --------------------------------------------------------------------------------


def test_concurrent_streams_complete(client, model):
    prompts = ["Describe the sea in one sentence.", "Describe a forest in one sentence."]

    def run(p):
        chunks, text = collect_chat_stream(
            chat(client, model, p, max_tokens=24, stream=True, stream_options={"include_usage": True})
        )
        return chunks, text

    with cf.ThreadPoolExecutor(max_workers=len(prompts)) as ex:
        results = list(ex.map(run, prompts))
    ids = set()
    for chunks, text in results:
        assert text.strip()
        assert_usage_consistent(chunks[-1].usage, max_completion=24)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish and finish[-1] in ("stop", "length")
        ids.add(chunks[0].id)
    assert len(ids) == len(prompts), "concurrent requests must get distinct ids"
