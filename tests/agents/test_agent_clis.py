"""Real coding-agent CLIs, unchanged, complete a task that needs a tool call on a live server.

  Claude Code (@anthropic-ai/claude-code)  Anthropic Messages   POST /v1/messages
  Codex CLI   (@openai/codex)              OpenAI Responses     POST /v1/responses
  opencode    (opencode-ai)                chat completions     POST /v1/chat/completions (streamed
                                                                 tool calls, plus a concurrent
                                                                 title request)

Each CLI starts in an empty work dir and is asked to run `echo paddock > proof.txt` through its
own shell tool. The prompt spells out the exact call, because the test model is tiny (SmolLM2
135M): with no tool template, tools reach it through Paddock's generic `<tool_call>` prompt, and
once the model opens `<tool_call>` a lazy grammar makes the call valid. A test passes when
  - the file exists with the right content (the CLI really ran the tool the model called),
  - the CLI's JSON output shows the tool call and its result, and it finished cleanly,
  - the server saw the CLI's own API (recorded by the pass-through in conftest.py), answered
    every request with 200, and got the tool result back in a later request.

The CLIs send no temperature; scripts/agent-tests.sh starts the server with `--temp 0`, so the
model's answer to a given request is repeatable. Codex's and opencode's is the call (the test
command runs them). Claude Code's is not: it puts a date reminder before the prompt, and the 135M
model copies that instead (its tool task is opt-in; the test command runs its plain-answer test,
test_claude_code_chat, instead). When a run
ends cleanly but the model called no tool (or another command), the run is repeated in a fresh
dir, up to AGENT_ATTEMPTS times (default 3) within AGENT_BUDGET seconds per test (default 300).
Anything else (a CLI error, a non-200 answer, a call that did not reach the shell, a timeout)
fails at once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conftest import Recorder, Run, Sandbox, Target, cli_path, run_cli

COMMAND = "echo paddock > proof.txt"
PROOF = "proof.txt"
EXPECTED = "paddock"


def copy_prompt(tool: str, args: dict) -> str:
    """The call written out for the model to copy (repetition makes a 135M model copy it more often)."""
    call = "<tool_call>\n" + json.dumps({"name": tool, "arguments": args}) + "\n</tool_call>"
    return (call + "\n\n") * 3 + "Reply with exactly this and nothing else:\n" + call


def attempts() -> int:
    return max(1, int(os.environ.get("AGENT_ATTEMPTS", "3")))


def budget() -> float:
    return float(os.environ.get("AGENT_BUDGET", "300"))


class ModelDidNotCall(Exception):
    """The run ended cleanly, but the model did not make the expected call: worth another try."""


def proof_text(sandbox: Sandbox) -> str | None:
    p = sandbox.work / PROOF
    return p.read_text() if p.exists() else None


def check_server_saw(recorder: Recorder, route: str, forbidden: tuple[str, ...]) -> list:
    calls = recorder.model_calls(route)
    assert calls, f"the CLI never called POST {route}; requests:\n{recorder.summary()}"
    for r in forbidden:
        assert not recorder.model_calls(r), f"the CLI also used POST {r}:\n{recorder.summary()}"
    # A request the CLI itself abandons when it exits (opencode's title request) ends with
    # "client went away"; every request must still have been answered with 200.
    bad = [
        e
        for e in recorder.exchanges
        if e.status != 200 or (e.error and not e.error.startswith("client went away"))
    ]
    assert not bad, "requests not answered with 200:\n" + "\n".join(
        "  " + e.brief() + "\n    " + e.response[:500].decode("utf-8", "replace") for e in bad
    )
    return calls


def retry(fn, sandbox_factory) -> None:
    """Run fn(sandbox, timeout) in fresh sandboxes until the model makes the call: at most
    attempts() runs, all within budget() seconds (a later run only starts with 60s left)."""
    deadline = time.time() + budget()
    last = None
    for i in range(1, attempts() + 1):
        left = deadline - time.time()
        if i > 1 and left < 60:
            break
        try:
            fn(sandbox_factory(i), left)
            if i > 1:
                print(f"the model made the call on attempt {i}")
            return
        except ModelDidNotCall as e:
            last = e
            print(f"attempt {i}/{attempts()}: the model did not make the call ({e})")
    pytest.fail(f"the model did not make the call in {i} attempt(s); last: {last}", pytrace=False)


@pytest.fixture
def sandboxes(tmp_path: Path):
    def make(i: int) -> Sandbox:
        work, home = tmp_path / f"work{i}", tmp_path / f"home{i}"
        work.mkdir()
        home.mkdir()
        return Sandbox(work, home)

    return make


# --- Claude Code -----------------------------------------------------------------------------


def claude_env(target: Target, recorder: Recorder, sb: Sandbox, max_output_tokens: int) -> dict:
    """Claude Code pointed at the server through the recorder, every model role on the served
    model, nothing sent elsewhere."""
    return sb.env(
        ANTHROPIC_BASE_URL=recorder.url,
        ANTHROPIC_AUTH_TOKEN=target.api_key,
        ANTHROPIC_MODEL=target.model,
        ANTHROPIC_SMALL_FAST_MODEL=target.model,
        ANTHROPIC_DEFAULT_HAIKU_MODEL=target.model,
        CLAUDE_CONFIG_DIR=str(sb.home / ".claude"),
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
        DISABLE_AUTOUPDATER="1",
        CLAUDE_CODE_MAX_OUTPUT_TOKENS=str(max_output_tokens),
    )


def test_claude_code_tool_call(target: Target, recorder: Recorder, sandboxes) -> None:
    claude = cli_path("claude")

    def attempt(sb: Sandbox, timeout: float) -> None:
        recorder.reset()
        env = claude_env(target, recorder, sb, max_output_tokens=160)  # bounds a rambling model
        argv = [
            str(claude), "-p", "--output-format", "stream-json", "--verbose",
            "--no-session-persistence",
            # Two built-in tools keep the prompt near 2.5k tokens (all of them: ~21k, minutes of
            # CPU prefill); only `echo` commands are allowed to run.
            # acceptEdits: the shell's `> proof.txt` counts as an edit of the work dir.
            "--tools=Bash,Write", "--allowedTools=Bash(echo:*)", "--permission-mode=acceptEdits",
            # Claude Code's own 2.5k-token system prompt drowns a 135M model's attention: a
            # one-line one (its documented flag) leaves the tools, their schemas and the
            # request shapes as they are.
            "--system-prompt", "You run the user's shell commands by calling the Bash tool.",
            copy_prompt("Bash", {"command": COMMAND}),
        ]
        run = run_cli(argv, sb, env, recorder, timeout)
        events = run.events()
        uses = [
            b
            for e in events
            if e.get("type") == "assistant"
            for b in e["message"].get("content", [])
            if b.get("type") == "tool_use"
        ]
        results = [
            b
            for e in events
            if e.get("type") == "user" and isinstance(e["message"].get("content"), list)
            for b in e["message"]["content"]
            if b.get("type") == "tool_result"
        ]
        final = [e for e in events if e.get("type") == "result"]
        calls = check_server_saw(recorder, "/v1/messages", ("/v1/chat/completions", "/v1/responses"))
        called = any(u["name"] == "Bash" and u["input"].get("command") == COMMAND for u in uses)
        # The model rambling past max_tokens without a call ends the run with Claude Code's
        # "exceeded the output token maximum" error: the model's doing, not the server's.
        rambled = any(e.get("error") == "max_output_tokens" for e in events if e.get("type") == "assistant")
        if not called and (run.returncode == 0 or rambled):
            said = final[-1].get("result") if final else None
            raise ModelDidNotCall(f"tool_use blocks: {[u.get('input') for u in uses]}; said: {said!r:.200}")
        assert run.returncode == 0, f"claude exited {run.returncode}\n{run.tails()}"
        assert final and final[-1].get("subtype") == "success" and not final[-1].get("is_error"), (
            f"no successful result event\n{run.tails()}"
        )
        assert proof_text(sb) is not None, f"Bash was called but {PROOF} is missing\n{run.tails()}"
        assert proof_text(sb).strip() == EXPECTED, f"{PROOF}: {proof_text(sb)!r}"
        assert results and not any(r.get("is_error") for r in results), f"tool results: {results}"
        # The tool result went back to the server in Anthropic's shape.
        sent_back = [
            b
            for c in calls
            for m in (c.body or {}).get("messages", [])
            if m.get("role") == "user" and isinstance(m.get("content"), list)
            for b in m["content"]
            if b.get("type") == "tool_result"
        ]
        assert sent_back, f"no request carried a tool_result block:\n{recorder.summary()}"
        assert all(c.body.get("stream") is True for c in calls), "Claude Code streams every turn"
        assert final[-1].get("num_turns", 0) >= 2

    retry(attempt, sandboxes)


def sse_events(raw: bytes) -> list[dict]:
    """The JSON `data:` payloads of a recorded server-sent-event stream."""
    return [
        json.loads(line[5:])
        for line in raw.decode("utf-8", "replace").splitlines()
        if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]")
    ]


def test_claude_code_chat(target: Target, recorder: Recorder, sandbox: Sandbox) -> None:
    """A plain answer, no tool: what Claude Code shows is exactly what the server streamed.

    Runs in the test command, unlike the tool task above: SmolLM2 cannot make Claude Code's
    call (it copies the date reminder Claude Code puts before every first user message), but
    this still drives the real client through Paddock's Anthropic API end to end: its request
    shapes (`?beta=true`, system blocks, adaptive thinking, context_management, cache_control,
    tools) are accepted, and its stream parser, stop reason and usage accounting read
    Paddock's events as they read Anthropic's."""
    claude = cli_path("claude")
    env = claude_env(target, recorder, sandbox, max_output_tokens=400)
    argv = [
        str(claude), "-p", "--output-format", "json", "--no-session-persistence",
        "--tools=Bash,Write", "--system-prompt", "You are a helpful assistant.",
        "Say hello in one short sentence.",
    ]
    run = run_cli(argv, sandbox, env, recorder, budget())
    assert run.returncode == 0, f"claude exited {run.returncode}\n{run.tails()}"
    result = run.events()[-1]
    assert result.get("type") == "result" and result.get("subtype") == "success", run.tails()
    assert not result.get("is_error"), f"Claude Code reported an error: {result.get('result')!r}"
    assert result.get("stop_reason") == "end_turn"
    calls = check_server_saw(recorder, "/v1/messages", ("/v1/chat/completions", "/v1/responses"))
    assert len(calls) == 1, recorder.summary()
    call = calls[0]
    assert "beta=true" in call.path and call.body.get("stream") is True
    assert [t["name"] for t in call.body["tools"]] == ["Bash", "Write"]
    assert any("You are a helpful assistant." in b.get("text", "") for b in call.body["system"])
    events = sse_events(call.response)
    streamed = "".join(
        e["delta"].get("text", "")
        for e in events
        if e.get("type") == "content_block_delta" and e["delta"].get("type") == "text_delta"
    )
    assert streamed.strip(), f"the server streamed no text: {events[:5]}"
    assert result["result"] == streamed, (result["result"], streamed)
    # Claude Code's usage is the sum of what message_start and message_delta reported.
    start = next(e for e in events if e.get("type") == "message_start")["message"]["usage"]
    end = next(e for e in events if e.get("type") == "message_delta")["usage"]
    assert result["usage"]["output_tokens"] == end["output_tokens"] > 0
    assert (
        result["usage"]["input_tokens"] + result["usage"]["cache_read_input_tokens"]
        == start["input_tokens"] + start.get("cache_read_input_tokens", 0)
        > 500  # Claude Code's tool schemas alone are longer than that
    ), (result["usage"], start)


# --- Codex CLI -------------------------------------------------------------------------------

CODEX_CONFIG = """\
model = "{model}"
model_provider = "paddock"
approval_policy = "never"
# Codex's Linux sandbox needs its codex-linux-sandbox helper and bubblewrap, which its npm
# package does not bring here ("bwrap: execvp codex-linux-sandbox: No such file or directory");
# the test's work dir is a throwaway and only `echo` runs.
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.paddock]
name = "Paddock"
base_url = "{base_url}"
wire_api = "responses"
env_key = "PADDOCK_API_KEY"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
"""


def test_codex_tool_call(target: Target, recorder: Recorder, sandboxes) -> None:
    codex = cli_path("codex")

    def attempt(sb: Sandbox, timeout: float) -> None:
        recorder.reset()
        codex_home = sb.home / ".codex"
        codex_home.mkdir()
        (codex_home / "config.toml").write_text(
            CODEX_CONFIG.format(model=target.model, base_url=recorder.url + "/v1")
        )
        env = sb.env(CODEX_HOME=str(codex_home), PADDOCK_API_KEY=target.api_key, RUST_LOG="error")
        argv = [
            str(codex), "exec", "--json", "--skip-git-repo-check", "--ephemeral",
            "-C", str(sb.work),
            copy_prompt("exec_command", {"cmd": COMMAND}),
        ]
        run = run_cli(argv, sb, env, recorder, timeout)
        assert run.returncode == 0, f"codex exited {run.returncode}\n{run.tails()}"
        events = run.events()
        assert any(e.get("type") == "turn.completed" for e in events), f"no turn.completed\n{run.tails()}"
        failed = [e for e in events if e.get("type") in ("turn.failed", "error")]
        assert not failed, f"codex reported errors: {failed}"
        commands = [
            e["item"]
            for e in events
            if e.get("type") == "item.completed" and e["item"].get("type") == "command_execution"
        ]
        calls = check_server_saw(recorder, "/v1/responses", ("/v1/chat/completions", "/v1/messages"))
        if not any(COMMAND in c.get("command", "") for c in commands):
            texts = [e["item"].get("text") for e in events if e.get("type") == "item.completed"
                     and e["item"].get("type") == "agent_message"]
            raise ModelDidNotCall(f"commands run: {[c.get('command') for c in commands]}; said: {texts}")
        ran = next(c for c in commands if COMMAND in c.get("command", ""))
        assert ran.get("exit_code") == 0 and ran.get("status") == "completed", f"command: {ran}"
        assert proof_text(sb) is not None and proof_text(sb).strip() == EXPECTED, (
            f"{PROOF}: {proof_text(sb)!r}\n{run.tails()}"
        )
        # Stateless Responses as Codex uses it: the call and its output come back in `input`.
        outputs = [
            i
            for c in calls
            for i in ((c.body or {}).get("input") or [])
            if isinstance(i, dict) and i.get("type") == "function_call_output"
        ]
        assert outputs, f"no request carried a function_call_output:\n{recorder.summary()}"
        assert all(c.body.get("store") is False and c.body.get("stream") is True for c in calls)

    retry(attempt, sandboxes)


# --- opencode --------------------------------------------------------------------------------


def test_opencode_tool_call(target: Target, recorder: Recorder, sandboxes) -> None:
    opencode = cli_path("opencode")

    def attempt(sb: Sandbox, timeout: float) -> None:
        recorder.reset()
        model = f"paddock/{target.model}"
        config = {
            "$schema": "https://opencode.ai/config.json",
            "autoupdate": False,
            "share": "disabled",
            "model": model,
            "small_model": model,
            # Only `echo …` may run. opencode takes the last rule that matches, and drops a tool
            # from the request whose last rule is "*": "deny", so the catch-all comes first.
            # (The edit tools are dropped on purpose: the shell's `>` is all the task needs.)
            "permission": {"bash": {"*": "deny", "echo *": "allow"}, "edit": "deny", "webfetch": "deny"},
            # opencode's own system prompt (~7k tokens) drowns a 135M model: its agent config
            # takes a one-line one; tools and request shapes stay as they are.
            "agent": {"build": {"prompt": "You run the user's shell commands by calling the bash tool."}},
            "provider": {
                "paddock": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "Paddock",
                    "options": {"baseURL": recorder.url + "/v1", "apiKey": target.api_key},
                    "models": {
                        target.model: {
                            "name": target.model,
                            "tool_call": True,
                            "limit": {"context": 16384, "output": 256},
                        }
                    },
                }
            },
        }
        cfg = sb.home / "opencode.json"
        cfg.write_text(json.dumps(config, indent=1))
        env = sb.env(
            OPENCODE_CONFIG=str(cfg),
            OPENCODE_DISABLE_AUTOUPDATE="1",
            OPENCODE_DISABLE_MODELS_FETCH="1",
            OPENCODE_DISABLE_LSP_DOWNLOAD="1",
            OPENCODE_DISABLE_DEFAULT_PLUGINS="1",
            OPENCODE_DISABLE_SHARE="1",
            OPENCODE_DISABLE_CLAUDE_CODE="1",
        )
        argv = [str(opencode), "run", "--pure", "--format", "json", "-m", model]
        # The prompt goes in on stdin: `opencode run` wraps a message argument that holds a
        # space in quotes and escapes its quotes, which would garble the JSON to copy.
        run = run_cli(argv, sb, env, recorder, timeout, stdin=copy_prompt("bash", {"command": COMMAND}))
        assert run.returncode == 0, f"opencode exited {run.returncode}\n{run.tails()}"
        events = run.events()
        errors = [e for e in events if e.get("type") == "error"]
        assert not errors, f"opencode reported errors: {errors}"
        tools = [e["part"] for e in events if e.get("type") == "tool_use" and "part" in e]
        calls = check_server_saw(recorder, "/v1/chat/completions", ("/v1/responses", "/v1/messages"))
        agent_calls = [c for c in calls if (c.body or {}).get("tools")]
        side_calls = [c for c in calls if not (c.body or {}).get("tools")]
        assert agent_calls, f"no chat request with tools:\n{recorder.summary()}"
        ok = [
            t
            for t in tools
            if t.get("tool") == "bash" and (t.get("state") or {}).get("input", {}).get("command") == COMMAND
        ]
        if not ok:
            said = [e["part"].get("text") for e in events if e.get("type") == "text" and "part" in e]
            raise ModelDidNotCall(
                f"tools: {[(t.get('tool'), (t.get('state') or {}).get('input')) for t in tools]}; said: {said}"
            )
        assert ok[0]["state"].get("status") == "completed", f"bash call: {ok[0]['state']}"
        assert proof_text(sb) is not None and proof_text(sb).strip() == EXPECTED, (
            f"{PROOF}: {proof_text(sb)!r}\n{run.tails()}"
        )
        assert all(c.body.get("stream") is True for c in calls), "opencode streams every request"
        # The streamed call came back as a tool result (role "tool") in the next request.
        assert any(
            m.get("role") == "tool" for c in agent_calls for m in c.body.get("messages", [])
        ), f"no request carried the tool result:\n{recorder.summary()}"
        # opencode's title request runs beside the agent's first turn; both were served.
        assert side_calls, f"no title request:\n{recorder.summary()}"
        first = min(agent_calls, key=lambda c: c.started)
        overlapped = [s for s in side_calls if s.started < first.ended and s.ended > first.started]
        print(f"title requests overlapping the first agent turn: {len(overlapped)}/{len(side_calls)}")

    retry(attempt, sandboxes)
