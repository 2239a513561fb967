//! `POST /v1/chat/completions`: messages (and tools) through the model's chat template into the
//! engine, answered as one `chat.completion` or a stream of `chat.completion.chunk`s. The
//! Anthropic and Responses APIs run through [`run_chat`] too.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::chat::{self, FieldError, PreparedTurn, TurnRequest};
use crate::router::LoadedModel;
use crate::server::error::ApiError;
use crate::server::json::{from_value, Json};
use crate::server::sse::{self, Chunks};
use crate::server::state::AppState;

use super::chat_output::{ChatChunks, ToolCallIds};
use super::types::{ChatCompletionRequest, Content, Message, SamplingFields};
use super::{chat_logprobs, new_id, timings, unix_now, usage, StreamHeader};

/// OpenAI allows 20 alternatives per token.
const MAX_TOP_LOGPROBS: u8 = 20;

/// A chat answer: whole, or as the stream of its chunks.
pub enum ChatOutcome {
    Complete(Value),
    Stream { chunks: Chunks, prompt_tokens: u32 },
}

pub async fn chat_completions(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    Ok(match run_chat(&state, &body).await? {
        ChatOutcome::Complete(v) => axum::Json(v).into_response(),
        ChatOutcome::Stream { chunks, .. } => sse::openai(chunks),
    })
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::invalid(e.param, e.message)
    }
}

/// Runs one chat completion request given as OpenAI JSON.
pub async fn run_chat(state: &AppState, body: &Value) -> Result<ChatOutcome, ApiError> {
    let req: ChatCompletionRequest = from_value(body)?;
    let sampling: SamplingFields = from_value(body)?;
    let model = state.router.acquire(req.model.as_deref()).await?;
    let logprobs = match (req.logprobs.unwrap_or(false), req.top_logprobs) {
        (_, Some(n)) if n > MAX_TOP_LOGPROBS => {
            return Err(ApiError::invalid(
                "top_logprobs",
                format!("top_logprobs must be 0 to {MAX_TOP_LOGPROBS}"),
            ))
        }
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "top_logprobs",
                "top_logprobs needs logprobs: true",
            ))
        }
        (true, n) => Some(n.unwrap_or(0)),
        (false, None) => None,
    };
    let prepared = prepare_turn(state, &model, req)?;
    let prompt = model.engine.tokenize(&prepared.prompt, true);
    let prompt_tokens = u32::try_from(prompt.len()).unwrap_or(u32::MAX);

    let id = new_id("chatcmpl-");
    let span = tracing::info_span!("request", id = %id, model = %model.id);
    let stream = sampling.stream;
    let include_usage = sampling
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let mut request = sampling.into_engine_request(prompt, logprobs, span, &model.engine)?;
    request.sampling.grammar = prepared.grammar;
    let rx = model.engine.submit(request)?;
    let header = StreamHeader {
        id,
        object: "chat.completion.chunk",
        model: model.id.clone(),
        created: unix_now(),
        include_usage,
    };
    if stream {
        let encoder = ChatChunks::new(header, prepared.output, logprobs.is_some());
        let chunks = sse::chunks(rx, encoder);
        return Ok(ChatOutcome::Stream {
            chunks,
            prompt_tokens,
        });
    }
    let out = sse::collect(rx).await?;
    let parsed = chat::tool_calls::parse(&out.text, &prepared.output);
    let mut ids = ToolCallIds::default();
    let tool_calls: Vec<Value> = parsed
        .tool_calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            json!({
                "id": ids.get(i),
                "type": "function",
                "function": { "name": call.name, "arguments": call.arguments },
            })
        })
        .collect();
    let mut message = json!({ "role": "assistant", "content": parsed.content });
    if !parsed.reasoning.is_empty() {
        message["reasoning_content"] = parsed.reasoning.into();
    }
    let finish = if tool_calls.is_empty() {
        super::finish_reason(out.done.finish_reason)
    } else {
        if parsed.content.is_empty() {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = tool_calls.into();
        "tool_calls"
    };
    let logprobs = if logprobs.is_some() {
        chat_logprobs(&out.logprobs)
    } else {
        Value::Null
    };
    Ok(ChatOutcome::Complete(json!({
        "id": header.id,
        "object": "chat.completion",
        "created": header.created,
        "model": header.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": logprobs,
            "finish_reason": finish,
        }],
        "usage": usage(&out.done),
        "timings": timings(&out.done),
    })))
}

/// The request's messages, tools and answer format, checked and rendered for `model`.
pub fn prepare_turn(
    state: &AppState,
    model: &LoadedModel,
    req: ChatCompletionRequest,
) -> Result<PreparedTurn, ApiError> {
    let turn = turn_request(req)?;
    let template = state.template(model)?;
    Ok(chat::prepare(&template, model.engine.info(), turn)?)
}

/// The model-independent half of [`prepare_turn`]: the request's messages, tools and answer
/// format checked and put in the chat layer's terms (public for the fuzz targets).
pub fn turn_request(req: ChatCompletionRequest) -> Result<TurnRequest, ApiError> {
    let tools = chat::request::parse_tools(&req.tools)?;
    let tool_choice = chat::request::parse_tool_choice(req.tool_choice.as_ref(), &tools)?;
    let format = chat::request::parse_response_format(req.response_format.as_ref(), req.grammar)?;
    let split_reasoning = match req.reasoning_format.as_deref() {
        None | Some("auto" | "deepseek" | "parsed") => true,
        Some("none") => false,
        Some(other) => {
            return Err(ApiError::invalid(
                "reasoning_format",
                format!("unknown reasoning_format {other:?}: use \"auto\" or \"none\""),
            ))
        }
    };
    Ok(TurnRequest {
        messages: template_messages(req.messages)?,
        tools,
        tool_choice,
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
        format,
        template_kwargs: req.chat_template_kwargs,
        split_reasoning,
    })
}

/// Checks roles and content and turns messages into the plain objects templates expect:
/// text parts joined into one string, `developer` (OpenAI's newer name) rendered as `system`.
fn template_messages(messages: Vec<Message>) -> Result<Vec<Value>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "messages must contain at least one message",
        ));
    }
    let mut call_ids = Vec::new();
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "developer" => "system",
                r @ ("system" | "user" | "assistant" | "tool") => r,
                other => {
                    return Err(ApiError::invalid(
                        format!("messages[{i}].role"),
                        format!("unknown role {other:?}: use system, developer, user, assistant or tool"),
                    ))
                }
            };
            let content = match m.content {
                None => Value::Null,
                Some(Content::Text(t)) => Value::String(t),
                Some(Content::Parts(parts)) => {
                    let mut texts = Vec::new();
                    for (j, part) in parts.into_iter().enumerate() {
                        match (part.kind.as_str(), part.text) {
                            ("text", Some(t)) => texts.push(t),
                            (kind, _) => {
                                return Err(ApiError::invalid(
                                    format!("messages[{i}].content[{j}]"),
                                    format!("content parts of type {kind:?} are not supported by this model; send text"),
                                ))
                            }
                        }
                    }
                    // Joined by newlines, as llama.cpp does for templates that take plain strings.
                    Value::String(texts.join("\n"))
                }
            };
            if content.is_null() && role != "assistant" {
                return Err(ApiError::invalid(format!("messages[{i}].content"), "content is required for this role"));
            }
            check_tool_links(&m.extra, role, i, &mut call_ids)?;
            let mut object = m.extra;
            object.insert("role".into(), role.into());
            object.insert("content".into(), content);
            Ok(Value::Object(object))
        })
        .collect()
}

/// Assistant `tool_calls` must name a function and carry JSON arguments; a `tool` message must
/// answer a call made earlier in the conversation (as OpenAI requires).
fn check_tool_links(
    extra: &serde_json::Map<String, Value>,
    role: &str,
    i: usize,
    call_ids: &mut Vec<String>,
) -> Result<(), ApiError> {
    if let Some(calls) = extra.get("tool_calls").filter(|c| !c.is_null()) {
        let calls = calls
            .as_array()
            .filter(|_| role == "assistant")
            .ok_or_else(|| {
                ApiError::invalid(
                    format!("messages[{i}].tool_calls"),
                    "only assistant messages carry a tool_calls array",
                )
            })?;
        for (j, call) in calls.iter().enumerate() {
            let at = format!("messages[{i}].tool_calls[{j}]");
            let function = call.get("function");
            let name = function.and_then(|f| f.get("name")).and_then(Value::as_str);
            if name.is_none_or(str::is_empty) {
                return Err(ApiError::invalid(
                    format!("{at}.function.name"),
                    "a tool call needs a function name",
                ));
            }
            let args = function.and_then(|f| f.get("arguments"));
            if let Some(Value::String(text)) = args {
                if serde_json::from_str::<Value>(text).is_err() {
                    return Err(ApiError::invalid(
                        format!("{at}.function.arguments"),
                        "arguments must be JSON text",
                    ));
                }
            }
            if let Some(id) = call.get("id").and_then(Value::as_str) {
                call_ids.push(id.to_string());
            }
        }
    }
    if role == "tool" {
        let id = extra
            .get("tool_call_id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ApiError::invalid(
                    format!("messages[{i}].tool_call_id"),
                    "a tool message needs the tool_call_id it answers",
                )
            })?;
        if !call_ids.iter().any(|c| c == id) {
            return Err(ApiError::invalid(
                format!("messages[{i}].tool_call_id"),
                format!("no earlier assistant tool call has id {id:?}"),
            ));
        }
    }
    Ok(())
}
