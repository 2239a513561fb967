use super::*;

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "smollm2",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null})
}

fn usage_chunk() -> Value {
    json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 0}}})
}

/// The contract's chunks for one answer: thinking, text, then calls `(id, name, fragments)`.
fn chunks(
    thinking: &[&str],
    text: &[&str],
    calls: &[(&str, &str, &[&str])],
    finish: &str,
) -> Vec<Value> {
    let mut out = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    out.extend(
        thinking
            .iter()
            .map(|t| chunk(json!({"reasoning_content": t}), None)),
    );
    out.extend(text.iter().map(|t| chunk(json!({"content": t}), None)));
    for (i, (id, name, fragments)) in calls.iter().enumerate() {
        let start = json!({"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": ""}});
        out.push(chunk(json!({ "tool_calls": [start] }), None));
        for f in *fragments {
            let piece = json!({"index": i, "function": {"arguments": f}});
            out.push(chunk(json!({ "tool_calls": [piece] }), None));
        }
    }
    out.push(chunk(json!({}), Some(finish)));
    out.push(usage_chunk());
    out
}

fn run(request: &Value, chunks: &[Value]) -> Vec<Event> {
    let mut stream = ResponseStream::new(request);
    let mut events: Vec<Event> = chunks.iter().flat_map(|c| stream.push(c)).collect();
    events.extend(stream.finish());
    events
}

fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|(kind, _)| *kind).collect()
}

fn without_ids(mut response: Value) -> Value {
    for key in ["id", "created_at"] {
        response.as_object_mut().map(|r| r.remove(key));
    }
    for item in response["output"].as_array_mut().into_iter().flatten() {
        item.as_object_mut().map(|i| i.remove("id"));
    }
    response
}

/// The SDK's bookkeeping: every event numbered in order, named in its data, and the final
/// response's items the same (ids included) as the items streamed.
fn check_consistent(events: &[Event]) {
    for (n, (kind, data)) in events.iter().enumerate() {
        assert_eq!(
            (data["type"].as_str(), data["sequence_number"].as_u64()),
            (Some(*kind), Some(n as u64))
        );
    }
    let done: Vec<_> = events
        .iter()
        .filter(|(k, _)| *k == "response.output_item.done")
        .map(|(_, d)| d["item"].clone())
        .collect();
    let last = &events.last().unwrap().1["response"];
    assert_eq!(last["output"], Value::Array(done));
    assert_eq!(last["id"], events[0].1["response"]["id"]);
}

const START: [&str; 2] = ["response.created", "response.in_progress"];
const TEXT: [&str; 6] = [
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
];

#[test]
fn text_answer() {
    let request = json!({"model": "alias", "input": "hi", "stream": true});
    let events = run(&request, &chunks(&[], &["Hel", "lo"], &[], "stop"));
    let expected = [
        &START[..],
        &TEXT,
        &["response.output_item.done", "response.completed"],
    ]
    .concat();
    assert_eq!(types(&events), expected);
    check_consistent(&events);
    assert_eq!(events[4].1["delta"], "Hel");
    assert_eq!(events[6].1["text"], "Hello");
    let chat = json!({"created": 1, "model": "smollm2", "choices": [{"message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
        "usage": usage_chunk()["usage"]});
    let expected = response::from_chat_response(&chat, &request);
    assert_eq!(
        without_ids(events[9].1["response"].clone()),
        without_ids(expected)
    );
}

#[test]
fn reasoning_then_text() {
    let events = run(&json!({}), &chunks(&["th", "ink"], &["Hi"], &[], "stop"));
    let reasoning = [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ];
    let text = [&TEXT[..3], &TEXT[4..]].concat();
    let expected = [
        &START[..],
        &reasoning,
        &text,
        &["response.output_item.done", "response.completed"],
    ]
    .concat();
    assert_eq!(types(&events), expected);
    check_consistent(&events);
    assert_eq!(
        events[6].1,
        json!({"type": "response.reasoning_text.done", "sequence_number": 6,
        "item_id": events[2].1["item"]["id"], "output_index": 0, "content_index": 0, "text": "think"})
    );
    assert_eq!(events[9].1["output_index"], 1);
}

#[test]
fn text_then_two_calls_match_the_non_streaming_response() {
    let calls: [(&str, &str, &[&str]); 2] =
        [("call_a", "f", &["{\"x\":", "1}"]), ("call_b", "g", &[])];
    let request = json!({"input": "hi", "tools": [{"type": "function", "name": "f"}]});
    let events = run(&request, &chunks(&[], &["Hi"], &calls, "tool_calls"));
    let call_a = [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ];
    let call_b = [call_a[0], call_a[3], call_a[4]];
    let text = [&TEXT[..3], &TEXT[4..], &["response.output_item.done"]].concat();
    let expected = [&START[..], &text, &call_a, &call_b, &["response.completed"]].concat();
    assert_eq!(types(&events), expected);
    check_consistent(&events);
    let added = &events[8].1["item"];
    assert_eq!(
        (
            added["call_id"].clone(),
            added["name"].clone(),
            added["arguments"].clone()
        ),
        (json!("call_a"), json!("f"), json!(""))
    );
    assert_eq!(events[11].1["arguments"], "{\"x\":1}");
    assert_eq!(events[11].1["name"], "f");
    let chat = json!({"created": 1, "model": "smollm2", "usage": usage_chunk()["usage"], "choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Hi", "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
        {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": ""}}]}}]});
    let final_response = events.last().unwrap().1["response"].clone();
    assert_eq!(
        without_ids(final_response),
        without_ids(response::from_chat_response(&chat, &request))
    );
}

#[test]
fn length_ends_incomplete() {
    let events = run(&json!({}), &chunks(&[], &["Hi"], &[], "length"));
    let (kind, last) = events.last().unwrap();
    assert_eq!(*kind, "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(last["response"]["output"][0]["status"], "incomplete");
}

#[test]
fn error_fails_the_response() {
    let mut stream = ResponseStream::new(&json!({}));
    let mut events = stream.push(&chunk(json!({"content": "Hi"}), None));
    let error = json!({"error": {"message": "too long", "type": "exceed_context_size_error", "code": "context_length_exceeded"}});
    events.extend(stream.push(&error));
    assert_eq!(
        types(&events),
        [&START[..], &TEXT[..3], &["response.failed"]].concat()
    );
    let failed = &events[5].1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["error"],
        json!({"code": "context_length_exceeded", "message": "too long"})
    );
    assert_eq!(failed["output"], json!([]));
    assert!(stream.push(&usage_chunk()).is_empty() && stream.finish().is_empty());
}

#[test]
fn finish_closes_what_the_chunks_left_open() {
    // No usage chunk: the final event comes from finish, with usage null.
    let mut stream = ResponseStream::new(&json!({}));
    stream.push(&chunk(json!({"content": "Hi"}), Some("stop")));
    let last = stream.finish();
    assert_eq!(types(&last), ["response.completed"]);
    assert_eq!(last[0].1["response"]["usage"], Value::Null);
    // No finish reason: the stream broke off.
    let events = ResponseStream::new(&json!({})).finish();
    assert_eq!(types(&events), [&START[..], &["response.failed"]].concat());
    assert_eq!(events[2].1["response"]["error"]["code"], "server_error");
}

#[test]
fn odd_chunks_never_panic() {
    let mut stream = ResponseStream::new(&json!(null));
    let odd = [
        json!(null),
        json!([]),
        json!({"choices": null}),
        json!({"choices": [{"delta": {"tool_calls": [null, {"index": "x"}]}}]}),
        json!({"choices": [{"delta": {"content": 3}, "finish_reason": 1}]}),
        json!({"error": "boom"}),
    ];
    let events: Vec<Event> = odd.iter().flat_map(|c| stream.push(c)).collect();
    assert_eq!(
        events.last().unwrap().1["response"]["error"]["message"],
        "boom"
    );
}
