//! Test-only GGUF writer: builds small files with the shapes no real test model has (MoE,
//! hybrids, splits, hostile values). Tensor data is zeros, or left out entirely.

use std::path::PathBuf;

pub use crate::test_util::TempDir;

use super::ggml::ggml_type;
use super::gguf::{MetaValue, TensorInfo};

pub const F32: u32 = 0;
pub const Q4_K: u32 = 12;
pub const Q8_0: u32 = 8;

#[derive(Default, Clone)]
pub struct Writer {
    pub version: u32,
    pub kv: Vec<(String, MetaValue)>,
    pub tensors: Vec<TensorInfo>,
    data_len: u64,
}

impl Writer {
    pub fn new() -> Self {
        Writer {
            version: 3,
            ..Default::default()
        }
    }

    pub fn kv(mut self, key: &str, value: MetaValue) -> Self {
        self.kv.push((key.to_owned(), value));
        self
    }

    /// Drops a key (to replace or omit one that a base writer set).
    pub fn without(mut self, key: &str) -> Self {
        self.kv.retain(|(k, _)| k != key);
        self
    }

    pub fn str(self, key: &str, value: &str) -> Self {
        self.kv(key, MetaValue::String(value.to_owned()))
    }

    pub fn u32(self, key: &str, value: u32) -> Self {
        self.kv(key, MetaValue::U32(value))
    }

    pub fn u32s(self, key: &str, values: &[u32]) -> Self {
        self.kv(
            key,
            MetaValue::Array(values.iter().map(|&v| MetaValue::U32(v)).collect()),
        )
    }

    /// Adds a tensor at the next 32-aligned offset (ggml dims order: row length first).
    pub fn tensor(mut self, name: &str, dims: &[u64], ggml_type_id: u32) -> Self {
        let info = TensorInfo {
            name: name.to_owned(),
            dims: dims.to_vec(),
            ggml_type: ggml_type_id,
            offset: self.data_len,
        };
        let bytes = info.bytes().expect("test tensor shape fits its type");
        self.data_len = (self.data_len + bytes).div_ceil(32) * 32;
        self.tensors.push(info);
        self
    }

    /// The header only (what `gguf::parse` needs).
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (key, value) in &self.kv {
            put_str(&mut out, key);
            out.extend_from_slice(&type_id(value).to_le_bytes());
            put_value(&mut out, value);
        }
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ggml_type.to_le_bytes());
            out.extend_from_slice(&t.offset.to_le_bytes());
        }
        out
    }

    /// Header, padding and zeroed tensor data: a complete file.
    pub fn file(&self) -> Vec<u8> {
        let mut out = self.header();
        out.resize(out.len().div_ceil(32) * 32 + self.data_len as usize, 0);
        out
    }
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub fn type_id(value: &MetaValue) -> u32 {
    match value {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::String(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

fn put_value(out: &mut Vec<u8>, value: &MetaValue) {
    match value {
        MetaValue::U8(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::Bool(v) => out.push(u8::from(*v)),
        MetaValue::String(s) => put_str(out, s),
        MetaValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        MetaValue::Array(items) => {
            // An empty array still needs an item type; U32 is as good as any.
            let item_type = items.first().map_or(4, type_id);
            out.extend_from_slice(&item_type.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(out, item);
            }
        }
    }
}

/// Bytes of one tensor as the reader computes them (for hand-made expectations).
pub fn bytes_of(dims: &[u64], ggml_type_id: u32) -> u64 {
    let ty = ggml_type(ggml_type_id).expect("known type");
    dims.iter().product::<u64>() / ty.block_size * ty.type_size
}

/// Path of a real test model, fetched by `scripts/fetch-models.sh`.
pub fn real_model(file: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(file);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models.sh",
        path.display()
    );
    path
}
