use std::time::Instant;

use super::*;
use crate::catalog::ggml::{ggml_type, GGML_TYPES};
use crate::catalog::test_gguf::{bytes_of, real_model, TempDir, Writer, F32, Q4_K, Q8_0};

fn every_value_type() -> Writer {
    Writer::new()
        .kv("u8", MetaValue::U8(200))
        .kv("i8", MetaValue::I8(-5))
        .kv("u16", MetaValue::U16(60000))
        .kv("i16", MetaValue::I16(-300))
        .u32("u32", 4_000_000_000)
        .kv("i32", MetaValue::I32(-70000))
        .kv("f32", MetaValue::F32(0.5))
        .kv("bool", MetaValue::Bool(true))
        .str("string", "héllo")
        .kv("u64", MetaValue::U64(u64::MAX))
        .kv("i64", MetaValue::I64(i64::MIN))
        .kv("f64", MetaValue::F64(-2.25))
        .u32s("array", &[1, 2, 3])
        .kv(
            "nested",
            MetaValue::Array(vec![
                MetaValue::Array(vec![MetaValue::String("a".into())]),
                MetaValue::Array(vec![
                    MetaValue::String("b".into()),
                    MetaValue::String("".into()),
                ]),
            ]),
        )
        .kv("empty", MetaValue::Array(vec![]))
        .tensor("token_embd.weight", &[256, 10], Q4_K)
        .tensor("output_norm.weight", &[256], F32)
}

#[test]
fn every_value_type_round_trips() {
    let w = every_value_type();
    let gguf = parse(&w.header()).unwrap();
    assert_eq!(gguf.version, 3);
    assert_eq!(gguf.metadata, w.kv);
    assert_eq!(gguf.tensors, w.tensors);
    assert_eq!(
        gguf.data_offset,
        (w.header().len() as u64).div_ceil(32) * 32
    );
    assert_eq!(gguf.get("string"), Some(&MetaValue::String("héllo".into())));
}

#[test]
fn version_2_reads_like_version_3() {
    let mut w = every_value_type();
    w.version = 2;
    assert_eq!(parse(&w.header()).unwrap().version, 2);
}

#[test]
fn data_offset_follows_general_alignment() {
    let w = Writer::new()
        .u32("general.alignment", 64)
        .tensor("t", &[64], F32);
    let header_len = w.header().len() as u64;
    assert_eq!(
        parse(&w.header()).unwrap().data_offset,
        header_len.div_ceil(64) * 64
    );
}

#[test]
fn read_matches_parse_and_checks_the_file_length() {
    let dir = TempDir::new("gguf-read");
    let w = every_value_type();
    let path = dir.path().join("m.gguf");
    std::fs::write(&path, w.file()).unwrap();
    let from_disk = read(&path).unwrap();
    assert_eq!(from_disk, parse(&w.header()).unwrap());
    assert_eq!(from_disk.data_end(), w.file().len() as u64);

    let mut short = w.file();
    short.pop();
    std::fs::write(&path, &short).unwrap();
    assert!(matches!(read(&path), Err(GgufError::FileTooShort { .. })));
    assert!(matches!(
        read(&dir.path().join("none.gguf")),
        Err(GgufError::Io(_))
    ));
}

#[test]
fn real_smollm2_header_matches_gguf_py() {
    let gguf = read(&real_model("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    assert_eq!(
        (gguf.version, gguf.metadata.len(), gguf.tensors.len()),
        (3, 33, 272)
    );
    assert_eq!(gguf.data_offset, 1_785_664);
    let embd = &gguf.tensors[0];
    assert_eq!(
        (embd.name.as_str(), embd.dims.as_slice()),
        ("token_embd.weight", &[576, 49152][..])
    );
    assert_eq!(
        (embd.ggml_type, embd.offset, embd.bytes()),
        (Q8_0, 0, Some(30_081_024))
    );
    let Some(MetaValue::Array(tokens)) = gguf.get("tokenizer.ggml.tokens") else {
        panic!("no token list")
    };
    assert_eq!(tokens.len(), 49152);
    let total: u64 = gguf.tensors.iter().map(|t| t.bytes().unwrap()).sum();
    assert_eq!(total, 96_576_768);
    assert_eq!(gguf.data_end(), 98_362_432);
}

#[test]
fn real_gemma3_header_matches_gguf_py() {
    let started = Instant::now();
    let gguf = read(&real_model("gemma-3-270m-q4_k_m.gguf")).unwrap();
    eprintln!("gemma3 header (262k vocab) read in {:?}", started.elapsed());
    assert_eq!(
        (gguf.version, gguf.metadata.len(), gguf.tensors.len()),
        (3, 33, 236)
    );
    assert_eq!(gguf.data_offset, 6_525_120);
    assert_eq!(
        gguf.get("gemma3.attention.sliding_window"),
        Some(&MetaValue::U32(512))
    );
    let total: u64 = gguf.tensors.iter().map(|t| t.bytes().unwrap()).sum();
    assert_eq!(total, 246_587_904);
}

#[test]
fn a_100k_vocabulary_reads_whole() {
    let tokens = (0..100_000)
        .map(|i| MetaValue::String(format!("tok{i}")))
        .collect();
    let scores = (0..100_000).map(|i| MetaValue::F32(i as f32)).collect();
    let w = Writer::new()
        .kv("tokenizer.ggml.tokens", MetaValue::Array(tokens))
        .kv("tokenizer.ggml.scores", MetaValue::Array(scores));
    let dir = TempDir::new("gguf-vocab");
    let path = dir.path().join("vocab.gguf");
    std::fs::write(&path, w.file()).unwrap();
    let gguf = read(&path).unwrap();
    assert_eq!(gguf.metadata, w.kv);
}

#[test]
fn every_truncation_of_a_synthetic_file_is_a_clear_error() {
    let bytes = every_value_type().header();
    for len in 0..bytes.len() {
        match parse(&bytes[..len]) {
            Err(GgufError::Truncated { at, .. }) => assert!(at <= len as u64),
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
    assert!(parse(&bytes).is_ok());
}

#[test]
fn every_truncation_of_a_real_header_prefix_is_a_clear_error() {
    let bytes = std::fs::read(real_model("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    for len in 0..8192 {
        let result = parse(&bytes[..len]);
        assert!(
            matches!(result, Err(GgufError::Truncated { .. })),
            "{len}: {result:?}"
        );
    }
}

#[test]
fn ggml_type_table_matches_known_bits_per_weight() {
    let bpw = |id: u32| {
        let ty = ggml_type(id).unwrap();
        ty.type_size as f64 * 8.0 / ty.block_size as f64
    };
    assert_eq!(bpw(Q8_0), 8.5);
    assert_eq!(bpw(Q4_K), 4.5);
    assert_eq!(bpw(14), 6.5625); // Q6_K
    assert_eq!(bpw(30), 16.0); // BF16
    assert_eq!(bpw(39), 4.25); // MXFP4
    assert_eq!(bytes_of(&[256, 4], Q4_K), 4 * 144);
    let mut ids: Vec<u32> = GGML_TYPES.iter().map(|t| t.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), GGML_TYPES.len(), "ids are unique and sorted");
}

mod hostile;
