//! Chat semantics, HTTP-free: rendering a conversation through the model's own Jinja template
//! (with tools), the grammar that shapes the answer, and parsing the answer back into content,
//! reasoning and tool calls. Used by the server's APIs; the engine sees tokens and grammars.

mod grammar;
pub mod request;
mod template;
pub mod tool_calls;
mod turn;

pub use request::{FieldError, ResponseFormat, Tool, ToolChoice};
pub use template::{ChatTemplate, TemplateError};
pub use turn::{prepare, PreparedTurn, TurnRequest};
