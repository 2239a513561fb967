use super::super::convert::from_chat_response;
use super::*;

fn chunk(delta: Value, finish: Value) -> Value {
    let choice = json!({"index": 0, "delta": delta, "finish_reason": finish});
    json!({"object": "chat.completion.chunk", "choices": [choice], "usage": null})
}

/// The contract's chunks for a completion `message`: the role chunk, each text in two
/// pieces, each call's start then its arguments in two fragments, finish, then usage.
fn chunks_of(message: &Value, finish: &str, usage: &Value) -> Vec<Value> {
    // Two non-empty pieces (or fewer), split on a char boundary.
    let halves = |s: &str| {
        let middle = s.len() / 2;
        let middle = (middle..=s.len()).find(|i| s.is_char_boundary(*i)).unwrap();
        let pieces = [s[..middle].to_owned(), s[middle..].to_owned()];
        pieces.into_iter().filter(|p| !p.is_empty())
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for key in ["reasoning_content", "content"] {
        for piece in halves(message[key].as_str().unwrap_or("")) {
            chunks.push(chunk(json!({ key: piece }), Value::Null));
        }
    }
    for (index, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let function = json!({"name": call["function"]["name"], "arguments": ""});
        let start =
            json!({"index": index, "id": call["id"], "type": "function", "function": function});
        chunks.push(chunk(json!({"tool_calls": [start]}), Value::Null));
        for piece in halves(call["function"]["arguments"].as_str().unwrap()) {
            let fragment = json!({"index": index, "function": {"arguments": piece}});
            chunks.push(chunk(json!({"tool_calls": [fragment]}), Value::Null));
        }
    }
    chunks.push(chunk(json!({}), finish.into()));
    chunks.push(json!({"choices": [], "usage": usage}));
    chunks
}

/// Runs chunks through a stream as the handler does, checking the event grammar the docs
/// give: message_start; blocks 0, 1, … each started, filled and stopped in turn; then
/// message_delta and message_stop, or an error last. Every data's `type` names its event.
fn run(chunks: &[Value]) -> Vec<Event> {
    let mut stream = MessageStream::new("claude-x", 7);
    let mut events: Vec<Event> = chunks.iter().flat_map(|c| stream.push(c)).collect();
    events.extend(stream.finish());
    assert!(
        stream.finish().is_empty()
            && stream
                .push(&chunks_of(&json!({}), "stop", &json!({}))[0])
                .is_empty()
    );
    let (mut open, mut next) = (None, 0);
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], *name);
        let index = data.get("index").and_then(Value::as_u64);
        match *name {
            "message_start" => assert_eq!(i, 0),
            "content_block_start" => {
                assert_eq!((open, index), (None, Some(next)));
                (open, next) = (index, next + 1);
            }
            "content_block_delta" => assert_eq!(index, open),
            "content_block_stop" => assert_eq!(open.take(), index),
            "message_delta" => assert_eq!((open, i + 2), (None, events.len())),
            "message_stop" | "error" => assert_eq!(i + 1, events.len()),
            other => panic!("unexpected event {other}"),
        }
    }
    events
}

/// The events in short: "[" + block type at a start, the delta type, "]" at a stop.
fn sequence(events: &[Event]) -> String {
    let word = |(name, data): &Event| match *name {
        "content_block_start" => {
            format!("[{}", data["content_block"]["type"].as_str().unwrap())
        }
        "content_block_delta" => data["delta"]["type"].as_str().unwrap().to_owned(),
        "content_block_stop" => "]".to_owned(),
        other => other.to_owned(),
    };
    events.iter().map(word).collect::<Vec<_>>().join(" ")
}

/// Rebuilds the final message from the events as the SDKs' `accumulate_event` does.
fn accumulate(events: &[Event]) -> Value {
    let (mut message, mut json_bufs) = (Value::Null, std::collections::HashMap::new());
    for (name, data) in events {
        let index = data["index"].as_u64().unwrap_or(0) as usize;
        let delta = &data["delta"];
        let append = |old: &Value, piece: &Value| {
            json!(format!(
                "{}{}",
                old.as_str().unwrap(),
                piece.as_str().unwrap()
            ))
        };
        match (*name, delta["type"].as_str().unwrap_or("")) {
            ("message_start", _) => message = data["message"].clone(),
            ("content_block_start", _) => message["content"]
                .as_array_mut()
                .unwrap()
                .push(data["content_block"].clone()),
            (_, "text_delta") => {
                message["content"][index]["text"] =
                    append(&message["content"][index]["text"], &delta["text"])
            }
            (_, "thinking_delta") => {
                let block = &mut message["content"][index];
                block["thinking"] = append(&block["thinking"], &delta["thinking"]);
            }
            (_, "signature_delta") => {
                message["content"][index]["signature"] = delta["signature"].clone()
            }
            (_, "input_json_delta") => {
                let buf: &mut String = json_bufs.entry(index).or_default();
                buf.push_str(delta["partial_json"].as_str().unwrap());
                message["content"][index]["input"] =
                    serde_json::from_str(buf).unwrap_or(Value::Null);
            }
            ("message_delta", _) => {
                message["stop_reason"] = delta["stop_reason"].clone();
                message["stop_sequence"] = delta["stop_sequence"].clone();
                for (key, value) in data["usage"].as_object().unwrap() {
                    message["usage"][key] = value.clone();
                }
            }
            _ => {}
        }
    }
    message
}

/// Streams a completion `message` and checks that the SDKs would rebuild from the events
/// exactly what the non-streaming converter returns; gives the events.
fn stream_of(message: Value, finish: &str) -> Vec<Event> {
    let usage = json!({"prompt_tokens": 12, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}});
    let events = run(&chunks_of(&message, finish, &usage));
    let chat = json!({"choices": [{"message": message, "finish_reason": finish}], "usage": usage});
    let (mut rebuilt, mut expected) = (accumulate(&events), from_chat_response(&chat, "claude-x"));
    rebuilt["id"] = json!("msg");
    expected["id"] = json!("msg");
    assert_eq!(rebuilt, expected);
    events
}

#[test]
fn streams_text() {
    let events = stream_of(json!({"role": "assistant", "content": "Hello"}), "stop");
    let expected = "message_start [text text_delta text_delta ] message_delta message_stop";
    assert_eq!(sequence(&events), expected);
    let start = &events[0].1["message"];
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        [&start["content"], &start["usage"]["input_tokens"]],
        [&json!([]), &json!(7)]
    );
    assert_eq!(
        events[2].1["delta"],
        json!({"type": "text_delta", "text": "He"})
    );
    let usage = json!({"output_tokens": 5, "input_tokens": 8, "cache_read_input_tokens": 4});
    let delta = json!({"stop_reason": "end_turn", "stop_sequence": null});
    assert_eq!(
        events[5].1,
        json!({"type": "message_delta", "delta": delta, "usage": usage})
    );
}

#[test]
fn streams_thinking_then_text() {
    let message = json!({"role": "assistant", "content": "42", "reasoning_content": "Let me see"});
    let events = stream_of(message, "length");
    let thinking = "[thinking thinking_delta thinking_delta signature_delta ]";
    let expected = format!(
        "message_start {thinking} [text text_delta text_delta ] message_delta message_stop"
    );
    assert_eq!(sequence(&events), expected);
    assert_eq!(
        events[1].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
}

#[test]
fn streams_text_and_two_tool_calls() {
    let calls = json!([
        {"id": "call_a", "type": "function", "function": {"name": "Read", "arguments": "{\"path\":\"a\"}"}},
        {"id": "call_b", "type": "function", "function": {"name": "Ls", "arguments": "{}"}}]);
    let events = stream_of(
        json!({"role": "assistant", "content": "Reading.", "tool_calls": calls}),
        "tool_calls",
    );
    let tool = "[tool_use input_json_delta input_json_delta ]";
    let expected = format!(
        "message_start [text text_delta text_delta ] {tool} {tool} message_delta message_stop"
    );
    assert_eq!(sequence(&events), expected);
    let start = json!({"type": "tool_use", "id": "toolu_call_b", "name": "Ls", "input": {}});
    assert_eq!(
        events[9].1,
        json!({"type": "content_block_start", "index": 2, "content_block": start})
    );
}

#[test]
fn an_error_chunk_ends_the_stream_with_an_error_event() {
    let mut chunks = chunks_of(&json!({"content": "Hi"}), "stop", &json!({}));
    chunks.truncate(2);
    chunks.push(
        json!({"error": {"message": "server busy", "type": "unavailable_error", "code": null}}),
    );
    let events = run(&chunks);
    assert_eq!(sequence(&events), "message_start [text text_delta error");
    let error = json!({"type": "overloaded_error", "message": "server busy"});
    assert_eq!(events[3].1, json!({"type": "error", "error": error}));
}

#[test]
fn finish_closes_a_stream_cut_short_or_empty() {
    // No finish chunk and no usage: the block is closed, input tokens fall back to the hint.
    let events = run(&chunks_of(&json!({"content": "Hi"}), "stop", &json!({}))[..2]);
    assert_eq!(
        sequence(&events),
        "message_start [text text_delta ] message_delta message_stop"
    );
    let usage = json!({"output_tokens": 0, "input_tokens": 7, "cache_read_input_tokens": 0});
    assert_eq!(events[4].1["usage"], usage);
    let bare = "message_start message_delta message_stop";
    assert_eq!(sequence(&run(&[])), bare);
    assert_eq!(
        sequence(&run(&[
            json!(null),
            json!({"choices": 5}),
            json!({"usage": 3})
        ])),
        bare
    );
}
