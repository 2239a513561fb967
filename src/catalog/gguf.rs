//! The GGUF file format (v2 and v3, little-endian): header, metadata and tensor infos.
//!
//! Layout: magic `GGUF`, version u32, tensor count u64, KV count u64, the KV pairs (key string,
//! value type u32, value), the tensor infos (name, n_dims u32, dims u64 each, ggml type u32,
//! offset u64 relative to the data section), padding to `general.alignment` (default 32),
//! then tensor data, which this module never reads.
//!
//! Files come from the internet, so every count and length is checked against a cap before
//! anything is allocated, and buffers grow only as bytes actually arrive: a hostile or
//! truncated file gives a [`GgufError`], never a panic or a huge allocation.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::ggml::ggml_type;

mod reader;

use reader::{capped, Reader};

/// At most this many KV pairs (real files have < 100).
pub const MAX_KV: u64 = 1 << 20;
/// At most this many tensors (the largest MoE files have ~ 100k).
pub const MAX_TENSORS: u64 = 1 << 20;
/// At most this many bytes per string (chat templates are ~ 10-100 KiB).
pub const MAX_STRING: u64 = 16 << 20;
/// At most this many metadata values in all, array items included, counted when an array
/// announces its length. Each value takes ~ 32 bytes in memory, so this bounds what a small
/// hostile file can make us hold (real files: ~ 1M with a 262k vocabulary).
pub const MAX_VALUES: u64 = 8 << 20;
/// Arrays of arrays nest at most this deep (real files: 1); bounds the recursion.
pub const MAX_DEPTH: u32 = 4;
/// ggml tensors have at most 4 dimensions (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;

/// A GGUF header: everything but the tensor data.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufFile {
    pub version: u32,
    /// KV pairs in file order.
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<TensorInfo>,
    /// Where tensor data starts in the file; tensor offsets are relative to it.
    pub data_offset: u64,
}

/// One metadata value; type ids 0..=12 in the file, in this order.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    U64(u64),
    I64(i64),
    F64(f64),
    Array(Vec<MetaValue>),
}

/// Where one tensor lives and what shape and type it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the row length (contiguous), `dims[1]` the number of rows.
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Byte offset from [`GgufFile::data_offset`].
    pub offset: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a GGUF file (starts with {0:02x?} instead of \"GGUF\")")]
    BadMagic([u8; 4]),
    #[error("GGUF version {0} is not supported (only 2 and 3, little-endian)")]
    UnsupportedVersion(u32),
    #[error("the file ends early, while reading {what} at byte {at}")]
    Truncated { what: &'static str, at: u64 },
    #[error("{what} is {value}, more than the limit of {limit}: the file is corrupt or hostile")]
    TooLarge {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    #[error("metadata key {key:?} has unknown value type {type_id}")]
    UnknownValueType { key: String, type_id: u32 },
    #[error("metadata key {key:?} nests arrays deeper than {MAX_DEPTH} levels")]
    TooDeep { key: String },
    #[error("general.alignment must be a power of two, got {0}")]
    BadAlignment(u64),
    #[error("tensor {name:?}: {reason}")]
    BadTensor { name: String, reason: String },
    #[error("the file is {actual} bytes but its tensors need {expected}: incomplete download?")]
    FileTooShort { expected: u64, actual: u64 },
}

impl GgufFile {
    /// The value of a metadata key (the first one, should a file repeat a key).
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Where the last tensor's data ends: the smallest size the complete file can have
    /// (0 for a file without tensors, such as a vocabulary-only GGUF).
    pub fn data_end(&self) -> u64 {
        self.tensors
            .iter()
            .map(|t| t.offset.saturating_add(t.bytes().unwrap_or(0)))
            .max()
            .map_or(0, |end| end.saturating_add(self.data_offset))
    }
}

impl TensorInfo {
    /// Number of elements (1 for a tensor with no dims, as in ggml).
    pub fn elements(&self) -> Option<u64> {
        self.dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d))
    }

    /// Bytes of tensor data; `None` for an unknown type, a row length that is not a whole number
    /// of blocks, or an overflow. Always `Some` for tensors of a parsed file.
    pub fn bytes(&self) -> Option<u64> {
        let ty = ggml_type(self.ggml_type)?;
        let row = *self.dims.first().unwrap_or(&1);
        if row % ty.block_size != 0 {
            return None;
        }
        (self.elements()? / ty.block_size).checked_mul(ty.type_size)
    }
}

/// Reads the header of a GGUF file through a buffer, leaving tensor data unread, and checks that
/// the file is long enough to hold every tensor it lists.
pub fn read(path: &Path) -> Result<GgufFile, GgufError> {
    let file = File::open(path)?;
    let actual = file.metadata()?.len();
    let gguf = parse_from(BufReader::with_capacity(1 << 20, file))?;
    let expected = gguf.data_end();
    if actual < expected {
        return Err(GgufError::FileTooShort { expected, actual });
    }
    Ok(gguf)
}

/// Parses a GGUF header from memory; `bytes` may stop anywhere after the tensor infos.
pub fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
    parse_from(bytes)
}

fn parse_from(reader: impl Read) -> Result<GgufFile, GgufError> {
    let mut r = Reader::new(reader);
    let magic: [u8; 4] = r.raw("magic")?;
    if &magic != MAGIC {
        return Err(GgufError::BadMagic(magic));
    }
    let version = r.u32("version")?;
    // v1 had 32-bit counts; a big-endian file reads as a huge version number.
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let n_tensors = capped(r.u64("tensor count")?, MAX_TENSORS, "tensor count")?;
    let n_kv = capped(r.u64("KV count")?, MAX_KV, "KV count")?;
    r.count_values(n_kv)?;

    let mut metadata = Vec::with_capacity(n_kv.min(256) as usize);
    for _ in 0..n_kv {
        let key = r.string("metadata key")?;
        let type_id = r.u32("value type")?;
        let value = r.value(&key, type_id, 0)?;
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        Some((_, v)) => as_u64(v)
            .filter(|a| a.is_power_of_two())
            .ok_or_else(|| GgufError::BadAlignment(as_u64(v).unwrap_or(0)))?,
        None => DEFAULT_ALIGNMENT,
    };

    let mut tensors = Vec::with_capacity(n_tensors.min(4096) as usize);
    for _ in 0..n_tensors {
        tensors.push(r.tensor_info(alignment)?);
    }

    let data_offset = r.pos().div_ceil(alignment).saturating_mul(alignment);
    Ok(GgufFile {
        version,
        metadata,
        tensors,
        data_offset,
    })
}

/// Any non-negative integer value as u64 (metadata writers differ in which width they pick).
pub fn as_u64(value: &MetaValue) -> Option<u64> {
    match *value {
        MetaValue::U8(v) => Some(v.into()),
        MetaValue::U16(v) => Some(v.into()),
        MetaValue::U32(v) => Some(v.into()),
        MetaValue::U64(v) => Some(v),
        MetaValue::I8(v) => u64::try_from(v).ok(),
        MetaValue::I16(v) => u64::try_from(v).ok(),
        MetaValue::I32(v) => u64::try_from(v).ok(),
        MetaValue::I64(v) => u64::try_from(v).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
