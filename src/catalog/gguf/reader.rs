//! Byte-level reading of a GGUF header: little-endian numbers, length-prefixed strings,
//! metadata values and tensor infos, each checked against the caps in the parent module.

use std::io::{ErrorKind, Read};

use super::{GgufError, MetaValue, TensorInfo, MAX_DEPTH, MAX_DIMS, MAX_STRING, MAX_VALUES};
use crate::catalog::ggml::ggml_type;

pub(super) fn capped(value: u64, limit: u64, what: &'static str) -> Result<u64, GgufError> {
    if value > limit {
        return Err(GgufError::TooLarge { what, value, limit });
    }
    Ok(value)
}

/// A reader that knows its position (for error messages and the data offset) and how many
/// metadata values the header has announced so far (for [`MAX_VALUES`]).
pub(super) struct Reader<R> {
    inner: R,
    pos: u64,
    values: u64,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            pos: 0,
            values: 0,
        }
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    fn fill(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), GgufError> {
        self.inner
            .read_exact(buf)
            .map_err(|e| truncated(e, what, self.pos))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    pub fn raw<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.fill(&mut buf, what)?;
        Ok(buf)
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.raw(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.raw(what)?))
    }

    pub fn string(&mut self, what: &'static str) -> Result<String, GgufError> {
        let len = capped(self.u64(what)?, MAX_STRING, "a string length")?;
        // `take` + `read_to_end` grows the buffer as bytes arrive: a claimed 16 MiB string in a
        // 100-byte file allocates ~ 100 bytes, not 16 MiB.
        let mut buf = Vec::with_capacity(len.min(64 << 10) as usize);
        let got = (&mut self.inner)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|e| truncated(e, what, self.pos))?;
        self.pos += got as u64;
        if (got as u64) < len {
            return Err(GgufError::Truncated { what, at: self.pos });
        }
        // Invalid UTF-8 (seen in some vocabularies) is kept readable rather than refused.
        Ok(String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// Counts values as the header announces them (KV pairs, then array lengths), so a huge
    /// claim fails before anything is read or allocated.
    pub fn count_values(&mut self, n: u64) -> Result<(), GgufError> {
        self.values = self.values.saturating_add(n);
        capped(self.values, MAX_VALUES, "the number of metadata values").map(drop)
    }

    pub fn value(&mut self, key: &str, type_id: u32, depth: u32) -> Result<MetaValue, GgufError> {
        const V: &str = "a metadata value";
        Ok(match type_id {
            0 => MetaValue::U8(u8::from_le_bytes(self.raw(V)?)),
            1 => MetaValue::I8(i8::from_le_bytes(self.raw(V)?)),
            2 => MetaValue::U16(u16::from_le_bytes(self.raw(V)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.raw(V)?)),
            4 => MetaValue::U32(u32::from_le_bytes(self.raw(V)?)),
            5 => MetaValue::I32(i32::from_le_bytes(self.raw(V)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.raw(V)?)),
            7 => MetaValue::Bool(self.raw::<1>(V)? != [0]),
            8 => MetaValue::String(self.string(V)?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(GgufError::TooDeep {
                        key: key.to_owned(),
                    });
                }
                let item_type = self.u32("an array item type")?;
                let len = self.u64("an array length")?;
                self.count_values(len)?;
                // Grows with the items actually read (see `string`).
                let mut items = Vec::with_capacity(len.min(4096) as usize);
                for _ in 0..len {
                    items.push(self.value(key, item_type, depth + 1)?);
                }
                MetaValue::Array(items)
            }
            10 => MetaValue::U64(u64::from_le_bytes(self.raw(V)?)),
            11 => MetaValue::I64(i64::from_le_bytes(self.raw(V)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.raw(V)?)),
            _ => {
                return Err(GgufError::UnknownValueType {
                    key: key.to_owned(),
                    type_id,
                })
            }
        })
    }

    pub fn tensor_info(&mut self, alignment: u64) -> Result<TensorInfo, GgufError> {
        let name = self.string("a tensor name")?;
        let n_dims = self.u32("tensor dims")?;
        if n_dims > MAX_DIMS {
            return Err(bad(
                &name,
                format!("{n_dims} dimensions, ggml allows {MAX_DIMS}"),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64("tensor dims")?);
        }
        let type_id = self.u32("a tensor type")?;
        let offset = self.u64("a tensor offset")?;
        let tensor = TensorInfo {
            name,
            dims,
            ggml_type: type_id,
            offset,
        };

        let Some(ty) = ggml_type(type_id) else {
            return Err(bad(
                &tensor.name,
                format!("unknown ggml type {}", tensor.ggml_type),
            ));
        };
        // ggml keeps element counts in i64.
        if tensor.elements().is_none_or(|n| n > i64::MAX as u64) {
            return Err(bad(
                &tensor.name,
                format!("shape {:?} is too large", tensor.dims),
            ));
        }
        if tensor.bytes().is_none() {
            let reason = format!("rows of {:?} are not whole {} blocks", tensor.dims, ty.name);
            return Err(bad(&tensor.name, reason));
        }
        if tensor.offset % alignment != 0 {
            let reason = format!("offset {} is not aligned to {alignment}", tensor.offset);
            return Err(bad(&tensor.name, reason));
        }
        Ok(tensor)
    }
}

fn truncated(err: std::io::Error, what: &'static str, at: u64) -> GgufError {
    if err.kind() == ErrorKind::UnexpectedEof {
        GgufError::Truncated { what, at }
    } else {
        GgufError::Io(err)
    }
}

fn bad(name: &str, reason: String) -> GgufError {
    GgufError::BadTensor {
        name: name.to_owned(),
        reason,
    }
}
