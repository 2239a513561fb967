//! Typed reads of GGUF metadata, with the lenience llama.cpp has: any integer width for a count,
//! and "scalar or per-layer array" keys.

use super::FactsError;
use crate::catalog::gguf::{as_u64, GgufFile, MetaValue};

/// The first part's metadata, with `arch` for `<arch>.*` keys.
pub(super) struct Meta<'a> {
    pub file: &'a GgufFile,
    pub arch: &'a str,
}

impl Meta<'_> {
    pub fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.arch)
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, FactsError> {
        match self.file.get(key) {
            None => Ok(None),
            Some(MetaValue::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong_type(key, "a string")),
        }
    }

    pub fn u32(&self, key: &str) -> Result<Option<u32>, FactsError> {
        self.file.get(key).map(|v| to_u32(v, key)).transpose()
    }

    /// `<arch>.<suffix>` as u32.
    pub fn arch_u32(&self, suffix: &str) -> Result<Option<u32>, FactsError> {
        self.u32(&self.key(suffix))
    }

    pub fn required_u32(&self, suffix: &str) -> Result<u32, FactsError> {
        self.arch_u32(suffix)?
            .ok_or_else(|| FactsError::MissingKey(self.key(suffix)))
    }

    /// `<arch>.<suffix>` given once for all layers or as an array of exactly `n` values.
    pub fn per_layer(&self, suffix: &str, n: usize) -> Result<Option<Vec<u32>>, FactsError> {
        let key = self.key(suffix);
        match self.file.get(&key) {
            None => Ok(None),
            Some(MetaValue::Array(items)) => {
                if items.len() != n {
                    return Err(FactsError::WrongLength {
                        key,
                        expected: n,
                        got: items.len(),
                    });
                }
                items
                    .iter()
                    .map(|v| to_u32(v, &key))
                    .collect::<Result<_, _>>()
                    .map(Some)
            }
            Some(v) => Ok(Some(vec![to_u32(v, &key)?; n])),
        }
    }

    /// A per-layer flag list (`true`/`false` or 0/1), padded with `false` (or cut) to `n`
    /// layers; a single flag applies to every layer.
    pub fn flags(&self, suffix: &str, n: usize) -> Result<Option<Vec<bool>>, FactsError> {
        let key = self.key(suffix);
        let flag = |v: &MetaValue| match v {
            MetaValue::Bool(b) => Ok(*b),
            other => to_u32(other, &key).map(|x| x != 0),
        };
        match self.file.get(&key) {
            None => Ok(None),
            Some(MetaValue::Array(items)) => {
                let mut flags = items
                    .iter()
                    .take(n)
                    .map(flag)
                    .collect::<Result<Vec<_>, _>>()?;
                flags.resize(n, false);
                Ok(Some(flags))
            }
            Some(v) => Ok(Some(vec![flag(v)?; n])),
        }
    }

    /// How many items an array key holds (the token list, for the vocabulary size).
    pub fn array_len(&self, key: &str) -> Option<usize> {
        match self.file.get(key) {
            Some(MetaValue::Array(items)) => Some(items.len()),
            _ => None,
        }
    }
}

fn to_u32(value: &MetaValue, key: &str) -> Result<u32, FactsError> {
    as_u64(value)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| wrong_type(key, "an unsigned 32-bit integer"))
}

fn wrong_type(key: &str, expected: &'static str) -> FactsError {
    FactsError::WrongType {
        key: key.to_owned(),
        expected,
    }
}
