//! Corrupt and hostile headers: clear errors, no panics, no huge allocations.

use super::*;

#[test]
fn random_mutations_never_panic() {
    let file = std::fs::read(real_model("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let original = &file[..64 << 10];
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        // xorshift64*: a fixed seed makes failures reproducible.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut parsed = 0;
    for _ in 0..3000 {
        let mut bytes = original.to_vec();
        for _ in 0..1 + next() % 8 {
            // Half the changes hit the first 512 bytes, where the counts and lengths live.
            let span = if next() % 2 == 0 {
                512
            } else {
                bytes.len() as u64
            };
            let at = (next() % span) as usize;
            bytes[at] = next() as u8;
        }
        let len = bytes.len() - (next() % 64) as usize;
        match parse(&bytes[..len]) {
            Ok(_) => parsed += 1,
            // From memory, every failure is about the bytes, never I/O.
            Err(e) => assert!(!matches!(e, GgufError::Io(_)), "{e}"),
        }
    }
    // A mutated count can make a prefix complete, but rarely.
    assert!(parsed < 300, "{parsed} parsed");
}

/// A header whose only KV pair is `key` with the raw value bytes `value` (type id first).
fn with_raw_kv(value: &[u8]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    crate::catalog::test_gguf::put_str(&mut out, "key");
    out.extend_from_slice(value);
    out
}

fn le(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn hostile_headers_give_clear_errors() {
    let good = every_value_type().header();
    let with = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    let err = |bytes: &[u8]| parse(bytes).unwrap_err();

    assert!(matches!(err(b"GGML\x03\0\0\0"), GgufError::BadMagic(_)));
    assert!(matches!(
        err(&with(4, &1u32.to_le_bytes())),
        GgufError::UnsupportedVersion(1)
    ));
    assert!(matches!(
        err(&with(4, &3u32.to_be_bytes())),
        GgufError::UnsupportedVersion(_)
    ));
    let huge = u64::MAX.to_le_bytes();
    assert!(matches!(
        err(&with(8, &huge)),
        GgufError::TooLarge {
            what: "tensor count",
            ..
        }
    ));
    assert!(matches!(
        err(&with(16, &huge)),
        GgufError::TooLarge {
            what: "KV count",
            ..
        }
    ));
    assert!(matches!(
        err(&with(24, &huge)),
        GgufError::TooLarge {
            what: "a string length",
            ..
        }
    ));

    let long_string = le(&[&8u32.to_le_bytes(), &(MAX_STRING + 1).to_le_bytes()]);
    assert!(matches!(
        err(&with_raw_kv(&long_string)),
        GgufError::TooLarge { .. }
    ));
    let long_array = le(&[&9u32.to_le_bytes(), &0u32.to_le_bytes(), &huge]);
    assert!(matches!(
        err(&with_raw_kv(&long_array)),
        GgufError::TooLarge { .. }
    ));
    // The budget is checked when the length is announced, before any item is read.
    let many = le(&[
        &9u32.to_le_bytes(),
        &0u32.to_le_bytes(),
        &MAX_VALUES.to_le_bytes(),
    ]);
    assert!(matches!(
        err(&with_raw_kv(&many)),
        GgufError::TooLarge { .. }
    ));
    let fits = le(&[
        &9u32.to_le_bytes(),
        &0u32.to_le_bytes(),
        &(MAX_VALUES - 2).to_le_bytes(),
    ]);
    assert!(matches!(
        err(&with_raw_kv(&fits)),
        GgufError::Truncated { .. }
    ));
    assert!(matches!(
        err(&with_raw_kv(&13u32.to_le_bytes())),
        GgufError::UnknownValueType { type_id: 13, .. }
    ));
    // An array of one array of one array of ...
    let mut deep = 9u32.to_le_bytes().to_vec();
    for _ in 0..100 {
        deep.extend_from_slice(&le(&[&9u32.to_le_bytes(), &1u64.to_le_bytes()]));
    }
    assert!(matches!(
        err(&with_raw_kv(&deep)),
        GgufError::TooDeep { .. }
    ));
}

#[test]
fn hostile_tensor_infos_give_clear_errors() {
    let one = |dims: &[u64], ty: u32, offset: u64| {
        let mut w = Writer::new().tensor("t", &[32], F32);
        w.tensors[0].dims = dims.to_vec();
        w.tensors[0].ggml_type = ty;
        w.tensors[0].offset = offset;
        parse(&w.header())
    };
    let bad = |r: Result<GgufFile, GgufError>| matches!(r, Err(GgufError::BadTensor { .. }));
    assert!(one(&[32], F32, 0).is_ok());
    assert!(bad(one(&[1, 1, 1, 1, 1], F32, 0)), "5 dims");
    assert!(bad(one(&[32], 4, 0)), "removed type Q4_2");
    assert!(bad(one(&[32], 43, 0)), "type past the table");
    assert!(
        bad(one(&[100], Q8_0, 0)),
        "row not a whole number of blocks"
    );
    assert!(bad(one(&[u64::MAX, 2], F32, 0)), "element count overflows");
    assert!(
        bad(one(&[1 << 62, 4], F32, 0)),
        "more than i64::MAX elements"
    );
    assert!(bad(one(&[32], F32, 7)), "misaligned offset");

    let odd_alignment = Writer::new().u32("general.alignment", 48).header();
    assert!(matches!(
        parse(&odd_alignment),
        Err(GgufError::BadAlignment(48))
    ));
    let zero_alignment = Writer::new().u32("general.alignment", 0).header();
    assert!(matches!(
        parse(&zero_alignment),
        Err(GgufError::BadAlignment(0))
    ));
}
