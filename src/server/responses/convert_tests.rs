use super::request::*;
use super::response::*;
use serde_json::{json, Value};

fn chat(body: Value) -> Value {
    to_chat_request(&body).unwrap()
}

/// Only `keys` of an object, to compare the fields a test is about.
fn pick(value: &Value, keys: &[&str]) -> Value {
    let fields = keys
        .iter()
        .map(|k| (k.to_string(), value.get(*k).cloned().unwrap_or(Value::Null)));
    Value::Object(fields.collect())
}

fn call(id: &str, name: &str, arguments: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
}

#[test]
fn string_input_with_instructions() {
    let c = chat(json!({"model": "m", "instructions": "Be brief.", "input": "Hi", "stream": true}));
    let messages =
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]);
    let expected = json!({"model": "m", "messages": messages, "stream": true, "stream_options": {"include_usage": true}});
    assert_eq!(c, expected);
}

#[test]
fn calls_join_the_assistant_turn_before_them() {
    let input = json!([
        {"role": "user", "content": "Weather?"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{\"city\":\"Oslo\"}"},
        {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "rain"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "sun"}]},
        {"type": "function_call", "call_id": "c3", "name": "w", "arguments": "{}"},
    ]);
    let expected = json!([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [call("c1", "w", "{\"city\":\"Oslo\"}"), call("c2", "w", "{}")]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        {"role": "tool", "tool_call_id": "c2", "content": "sun"},
        {"role": "assistant", "content": null, "tool_calls": [call("c3", "w", "{}")]},
    ]);
    assert_eq!(chat(json!({ "input": input }))["messages"], expected);
}

#[test]
fn reasoning_goes_on_the_next_assistant_turn_or_nowhere() {
    let input = json!([
        {"role": "user", "content": "a"},
        {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "dropped"}]},
        {"role": "user", "content": "b"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "only a summary"}]},
        {"role": "assistant", "content": "c"},
    ]);
    let expected = json!([
        {"role": "user", "content": "a"}, {"role": "user", "content": "b"},
        {"role": "assistant", "content": "c", "reasoning_content": "only a summary"},
    ]);
    assert_eq!(chat(json!({ "input": input }))["messages"], expected);
}

#[test]
fn errors_name_the_field() {
    let image = json!({"role": "user", "content": [{"type": "input_text", "text": "see"}, {"type": "input_image", "image_url": "x"}]});
    let cases = [
        (json!({"input": ["hi", image]}), "input[0]"),
        (
            json!({"input": [{"role": "user", "content": "a"}, image]}),
            "input[1].content[1].type",
        ),
        (
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0].type",
        ),
        (
            json!({"input": "a", "previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (
            json!({"input": [{"role": "tool", "content": "a"}]}),
            "input[0].role",
        ),
        (
            json!({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
            "input[0].call_id",
        ),
        (
            json!({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}),
            "input[0].output",
        ),
        (
            json!({"input": [{"type": "web_search_call"}]}),
            "input[0].type",
        ),
        (json!({"input": []}), "input"),
        (json!({}), "input"),
        (
            json!({"input": "a", "max_output_tokens": 0}),
            "max_output_tokens",
        ),
        (json!({"input": "a", "temperature": "hot"}), "temperature"),
        (
            json!({"input": "a", "tool_choice": {"type": "web_search_preview"}}),
            "tool_choice",
        ),
        (
            json!({"input": "a", "text": {"format": {"type": "json_schema", "name": "x"}}}),
            "text.format.schema",
        ),
        (
            json!({"input": "a", "tools": [{"type": "function"}]}),
            "tools[0].name",
        ),
    ];
    for (body, param) in cases {
        assert_eq!(to_chat_request(&body).unwrap_err().param, param, "{body}");
    }
}

#[test]
fn images_in_tool_output_become_a_note() {
    let out = chat(json!({"input": [
        {"type": "function_call", "call_id": "c", "name": "view_image", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image", "image_url": "data:"}]},
    ]}));
    let tool = &out["messages"][1];
    assert_eq!(
        tool["content"],
        "[input_image left out: this model reads text only]"
    );
}

#[test]
fn settings_map_to_chat_fields() {
    let c = chat(json!({
        "input": "a", "max_output_tokens": 50, "temperature": 0.2, "top_p": 0.9,
        "parallel_tool_calls": false, "tool_choice": {"type": "function", "name": "f"},
        "tools": [{"type": "function", "name": "f", "description": "d", "strict": true}],
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
        "reasoning": {"effort": "minimal"},
    }));
    let function = json!({"name": "f", "description": "d", "strict": true, "parameters": {"type": "object", "properties": {}}});
    let schema = json!({"name": "out", "schema": {"type": "object"}, "strict": true});
    let expected = json!({
        "max_tokens": 50, "temperature": 0.2, "top_p": 0.9, "parallel_tool_calls": false,
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "tools": [{"type": "function", "function": function}],
        "response_format": {"type": "json_schema", "json_schema": schema},
        "chat_template_kwargs": {"enable_thinking": false}, "stream": null,
    });
    let keys: Vec<&str> = expected
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(pick(&c, &keys), expected);
    let plain = chat(json!({"input": "a", "text": {"format": {"type": "text"}}}));
    assert_eq!(
        plain,
        json!({"messages": [{"role": "user", "content": "a"}]})
    );
}

/// The shape Codex CLI 0.169 sends on its second turn (trimmed).
#[test]
fn codex_cli_request_converts() {
    let text = |role: &str, kind: &str, text: &str| json!({"type": "message", "role": role, "content": [{"type": kind, "text": text}]});
    let c = chat(json!({
        "model": "qwen3", "instructions": "You are Codex.",
        "input": [
            text("developer", "input_text", "<permissions>"), text("developer", "input_text", "<skills>"),
            text("user", "input_text", "<environment_context>"), text("user", "input_text", "list files"),
            {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "use ls"}], "encrypted_content": null},
            text("assistant", "output_text", "Listing."),
            {"type": "function_call", "status": "completed", "id": "fc_1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}", "call_id": "call_1"},
            {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "a.txt"},
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "description": "Runs a command", "strict": false, "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
            {"type": "namespace", "name": "multi_agent_v1", "tools": []},
            {"type": "web_search", "external_web_access": false},
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
        ],
        "tool_choice": "auto", "parallel_tool_calls": true, "store": false, "stream": true,
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "conv-1",
        "reasoning": {"summary": "auto"}, "client_metadata": {"x": "y"},
    }));
    let expected = json!([
        {"role": "system", "content": "You are Codex.\n\n<permissions>\n\n<skills>"},
        {"role": "user", "content": "<environment_context>"},
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": "Listing.", "reasoning_content": "use ls", "tool_calls": [call("call_1", "exec_command", "{\"cmd\":\"ls\"}")]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
    ]);
    assert_eq!(c["messages"], expected);
    let tools = c["tools"].as_array().unwrap();
    assert_eq!(
        (tools.len(), &tools[0]["function"]["name"]),
        (1, &json!("exec_command"))
    );
    let keys = [
        "tool_choice",
        "parallel_tool_calls",
        "stream_options",
        "chat_template_kwargs",
    ];
    let expected = json!({"tool_choice": "auto", "parallel_tool_calls": true, "stream_options": {"include_usage": true}, "chat_template_kwargs": null});
    assert_eq!(pick(&c, &keys), expected);
}

#[test]
fn odd_json_never_panics() {
    let bodies = [
        json!(null),
        json!([]),
        json!("input"),
        json!({"input": null}),
        json!({"input": [null, 1, "x", {"type": 5}, {"content": []}]}),
        json!({"input": [{"role": "user", "content": [null, {"type": "input_text"}]}]}),
        json!({"input": "a", "tools": "all"}),
        json!({"input": "a", "tools": [null, 3]}),
        json!({"input": "a", "text": "json", "reasoning": "high", "tool_choice": 1}),
        json!({"input": [{"type": "function_call", "call_id": 1, "name": null, "arguments": []}]}),
        json!({"choices": [null], "usage": [1]}),
        json!({"choices": [{"message": {"tool_calls": [null, 1]}}]}),
    ];
    for body in bodies {
        let _ = to_chat_request(&body);
        let _ = from_chat_response(&body, &body);
    }
}

fn chat_completion(finish: &str) -> Value {
    let message = json!({"role": "assistant", "content": "Hello", "reasoning_content": "think", "tool_calls": [call("call_9", "f", "{\"a\":1}")]});
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1764100000, "model": "smollm2",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "prompt_tokens_details": {"cached_tokens": 4}},
    })
}

#[test]
fn chat_completion_becomes_a_response() {
    let request = json!({"model": "alias", "input": "hi", "instructions": "sys", "tools": [{"type": "web_search"}], "temperature": 0.5, "metadata": {"k": "v"}, "store": true});
    let r = from_chat_response(&chat_completion("tool_calls"), &request);
    let expected = json!({
        "object": "response", "created_at": 1764100000, "status": "completed", "model": "smollm2",
        "error": null, "incomplete_details": null, "instructions": "sys", "temperature": 0.5,
        "tools": [{"type": "web_search"}], "metadata": {"k": "v"}, "store": false, "tool_choice": "auto",
        "parallel_tool_calls": true, "text": {"format": {"type": "text"}}, "output_text": null,
        "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
            "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15},
    });
    let keys: Vec<&str> = expected
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(pick(&r, &keys), expected);
    assert!(r["id"].as_str().is_some_and(|id| id.starts_with("resp_")));
    let output = r["output"].as_array().unwrap();
    let ids: Vec<_> = output
        .iter()
        .filter_map(|i| i["id"].as_str()?.split('_').next())
        .collect();
    assert_eq!(ids, ["rs", "msg", "fc"]);
    assert_eq!(
        output[0]["content"],
        json!([{"type": "reasoning_text", "text": "think"}])
    );
    assert_eq!(
        output[1]["content"],
        json!([{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}])
    );
    let fc = json!({"type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{\"a\":1}", "status": "completed"});
    assert_eq!(
        pick(
            &output[2],
            &["type", "call_id", "name", "arguments", "status"]
        ),
        fc
    );
}

#[test]
fn length_makes_the_response_incomplete() {
    let r = from_chat_response(&chat_completion("length"), &json!({"input": "hi"}));
    let expected =
        json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}});
    assert_eq!(pick(&r, &["status", "incomplete_details"]), expected);
    assert_eq!(
        (&r["output"][1]["status"], &r["output"][2]["status"]),
        (&json!("completed"), &json!("incomplete"))
    );
}
