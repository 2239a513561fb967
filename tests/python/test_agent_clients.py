"""Real agent frameworks from PyPI, unchanged, completing a small task with a tool call on the
live server: openai-agents (Responses API, strict tools, max_output_tokens) and
langchain-openai (chat completions, max_completion_tokens). A tiny model cannot be trusted to
choose to call a tool, so the task forces the call and the check is that the framework ran it."""

from __future__ import annotations

import asyncio

import pytest


def test_openai_agents_runs_a_tool(target, model):
    agents = pytest.importorskip("agents")
    from openai import AsyncOpenAI

    agents.set_tracing_disabled(True)
    calls = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        calls.append(city)
        return f"18C and sunny in {city}"

    client = AsyncOpenAI(base_url=target.base_url, api_key=target.api_key, max_retries=0)
    agent = agents.Agent(
        name="weather",
        instructions="Use the get_weather tool.",
        tools=[get_weather],
        model=agents.OpenAIResponsesModel(model=model, openai_client=client),
        model_settings=agents.ModelSettings(tool_choice="required", max_tokens=64, temperature=0),
        tool_use_behavior="stop_on_first_tool",
    )
    result = asyncio.run(agents.Runner.run(agent, "What is the weather in Paris?"))
    assert calls, "the agent never ran the tool"
    assert result.final_output == f"18C and sunny in {calls[0]}"


def test_langchain_openai_binds_and_calls_a_tool(target, model):
    lc = pytest.importorskip("langchain_openai")
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"18C in {city}"

    llm = lc.ChatOpenAI(
        model=model, base_url=target.base_url, api_key=target.api_key, temperature=0, max_completion_tokens=64, max_retries=0
    )
    reply = llm.bind_tools([get_weather], tool_choice="required").invoke("What is the weather in Paris?")
    assert reply.tool_calls and reply.tool_calls[0]["name"] == "get_weather"
    result = get_weather.invoke(reply.tool_calls[0])
    assert "18C" in result.content
