use super::*;

/// A minimal valid request with `extra` fields merged in.
fn request(extra: Value) -> Value {
    let mut body = json!({"max_tokens": 5, "messages": [{"role": "user", "content": "q"}]});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

#[test]
fn converts_a_claude_code_style_request() {
    let body = json!({
        "model": "qwen3", "max_tokens": 32000, "temperature": 1, "stream": true,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "system", "content": "Extra rules."},
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}},
                                         {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "plan", "signature": "sig"},
                {"type": "redacted_thinking", "data": "xx"},
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a", "n": 1}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "and then?"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "ok"}]},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": true}]},
            {"role": "system", "content": "Late note."}],
        "tools": [{"name": "Read", "description": "reads", "input_schema": {"type": "object"}, "strict": true,
                   "cache_control": {"type": "ephemeral"}, "defer_loading": false},
                  {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "stop_sequences": ["END"], "metadata": {"user_id": "u"},
        "context_management": {"edits": []}, "output_config": {"effort": "high"}, "service_tier": "auto",
    });
    let expected = json!({
        "model": "qwen3",
        "messages": [
            {"role": "system", "content": "You are Claude Code.\nBe brief.\nExtra rules."},
            {"role": "user", "content": "hi\nthere"},
            {"role": "assistant", "content": "Reading.", "reasoning_content": "plan",
             "tool_calls": [{"id": "toolu_1", "type": "function",
                             "function": {"name": "Read", "arguments": "{\"path\":\"a\",\"n\":1}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: boom"},
            {"role": "user", "content": "and then?"},
            {"role": "system", "content": "Late note."}],
        "tools": [{"type": "function", "function": {"name": "Read", "description": "reads",
                   "parameters": {"type": "object"}, "strict": true}}],
        "tool_choice": "required", "parallel_tool_calls": false,
        "max_tokens": 32000, "temperature": 1, "stop": ["END"], "stream": true,
        "stream_options": {"include_usage": true},
        "chat_template_kwargs": {"enable_thinking": true},
    });
    assert_eq!(to_chat_request(&body).unwrap(), expected);
}

#[test]
fn maps_tool_choice_thinking_and_output_format() {
    let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    let with = |extra: Value| {
        let mut body = request(extra);
        body["tools"] = tools.clone();
        to_chat_request(&body).unwrap()
    };
    let named = with(json!({"tool_choice": {"type": "tool", "name": "f"}}));
    assert_eq!(
        named["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(
        with(json!({"tool_choice": {"type": "none"}}))["tool_choice"],
        "none"
    );
    let off = with(json!({"thinking": {"type": "disabled"}, "stream": false}));
    assert_eq!(
        off["chat_template_kwargs"],
        json!({"enable_thinking": false})
    );
    assert_eq!(
        (&off["stream"], off.get("stream_options")),
        (&json!(false), None)
    );
    let adaptive = with(json!({"thinking": {"type": "adaptive"}}));
    assert_eq!(adaptive["chat_template_kwargs"]["enable_thinking"], true);
    let format = json!({"format": {"type": "json_schema", "schema": {"type": "object"}}});
    let schema = json!({"name": "output", "schema": {"type": "object"}, "strict": true});
    let expected = json!({"type": "json_schema", "json_schema": schema});
    assert_eq!(
        with(json!({"output_config": format}))["response_format"],
        expected
    );
    // With only server tools, neither tools nor tool_choice reach the pipeline.
    let server = json!({"tools": [{"type": "bash_20250124", "name": "bash"}], "tool_choice": {"type": "any"}});
    let server = to_chat_request(&request(server)).unwrap();
    assert_eq!(
        (server.get("tools"), server.get("tool_choice")),
        (None, None)
    );
}

#[test]
fn rejects_bad_requests_with_precise_params() {
    let user =
        |content: Value| request(json!({"messages": [{"role": "user", "content": content}]}));
    let tool_use = json!({"type": "tool_use", "id": "t", "input": {}});
    let assistant = request(json!({"messages": [{"role": "assistant", "content": [tool_use]}]}));
    let image_result =
        json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image"}]}]);
    let cases = [
        ("", json!([])),
        (
            "max_tokens",
            json!({"messages": [{"role": "user", "content": "q"}]}),
        ),
        ("max_tokens", request(json!({"max_tokens": 0}))),
        ("messages", json!({"max_tokens": 5})),
        ("messages", request(json!({"messages": []}))),
        ("messages", request(json!({"messages": "hi"}))),
        (
            "messages[0].role",
            request(json!({"messages": [{"role": "tool", "content": "q"}]})),
        ),
        (
            "messages[0].content",
            request(json!({"messages": [{"role": "user"}]})),
        ),
        ("messages[0].content", user(json!(7))),
        (
            "messages[0].content[0].type",
            user(json!([{"type": "image", "source": {}}])),
        ),
        (
            "messages[0].content[1].type",
            user(json!([{"type": "text", "text": "a"}, {"type": "document"}])),
        ),
        (
            "messages[0].content[0].type",
            user(json!([{"type": "tool_use", "id": "t", "name": "f"}])),
        ),
        (
            "messages[0].content[0].type",
            user(json!([{"type": "mystery"}])),
        ),
        (
            "messages[0].content[0].text",
            user(json!([{"type": "text"}])),
        ),
        (
            "messages[0].content[0].tool_use_id",
            user(json!([{"type": "tool_result", "content": "x"}])),
        ),
        ("messages[0].content[0].content[0].type", user(image_result)),
        ("messages[0].content[0].name", assistant),
        ("system", request(json!({"system": 3}))),
        ("stream", request(json!({"stream": "yes"}))),
        ("temperature", request(json!({"temperature": "hot"}))),
        ("stop_sequences", request(json!({"stop_sequences": [1]}))),
        (
            "tools[0].input_schema",
            request(json!({"tools": [{"name": "f"}]})),
        ),
        (
            "tools[0].name",
            request(json!({"tools": [{"input_schema": {}}]})),
        ),
        (
            "tool_choice.name",
            request(json!({"tool_choice": {"type": "tool"}})),
        ),
        (
            "tool_choice.type",
            request(json!({"tool_choice": {"type": "some"}})),
        ),
    ];
    for (param, body) in cases {
        assert_eq!(to_chat_request(&body).unwrap_err().param, param, "{body}");
    }
}

#[test]
fn converts_a_completion_to_a_message() {
    let calls = json!([
        {"id": "call_1", "type": "function", "function": {"name": "Read", "arguments": "{\"path\":\"a\"}"}},
        {"id": "toolu_2", "type": "function", "function": {"name": "Ls", "arguments": "not json"}}]);
    let message = json!({"role": "assistant", "content": "Look.", "reasoning_content": "hmm", "tool_calls": calls});
    let usage = json!({"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}});
    let choices = json!([{"index": 0, "message": message, "finish_reason": "tool_calls"}]);
    let mut message = from_chat_response(&json!({"choices": choices, "usage": usage}), "claude-x");
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    message["id"] = json!("msg_1");
    assert_eq!(
        message,
        json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": ""},
                {"type": "text", "text": "Look."},
                {"type": "tool_use", "id": "toolu_call_1", "name": "Read", "input": {"path": "a"}},
                {"type": "tool_use", "id": "toolu_2", "name": "Ls", "input": {}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 6, "output_tokens": 5, "cache_read_input_tokens": 4,
                      "cache_creation_input_tokens": 0}
        })
    );
    let reason = |finish: &str| {
        let chat = json!({"choices": [{"message": {"content": "x"}, "finish_reason": finish}]});
        from_chat_response(&chat, "m")["stop_reason"].clone()
    };
    assert_eq!(
        [reason("stop"), reason("length")],
        ["end_turn", "max_tokens"]
    );
    // Malformed input still gives a well-formed, empty message.
    let empty = from_chat_response(&json!({"choices": 3}), "m");
    assert_eq!(
        [&empty["content"], &empty["usage"]["input_tokens"]],
        [&json!([]), &json!(0)]
    );
}

#[test]
fn error_bodies_use_anthropic_types() {
    let kinds = [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
        (500, "api_error"),
    ];
    for (status, kind) in kinds {
        let expected = json!({"type": "error", "error": {"type": kind, "message": "m"}});
        assert_eq!(error_body(status, "m"), expected);
    }
    let busy = error_body_from_chat(&json!({"message": "busy", "type": "unavailable_error"}));
    assert_eq!(
        busy["error"],
        json!({"type": "overloaded_error", "message": "busy"})
    );
    assert_eq!(
        error_body_from_chat(&json!(null))["error"]["type"],
        "api_error"
    );
}
