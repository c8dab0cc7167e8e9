//! `smartpos tool iso8583` through the real binary: masking, errors, and
//! `encode(decode(x, --unmasked)) == x` for every dialect.

// Helpers live in a `cfg(test)` module so the workspace's test-only lint allowances apply.
#[cfg(test)]
mod tool_iso8583 {
    use smartpos_iso8583::{Dialect, FieldKind, Message, Mti, length_bounds, reference};
    use smartpos_types::hex;
    use std::process::{Command, Output};

    fn smartpos(args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_smartpos"))
            .args(args)
            .output()
            .unwrap()
    }

    fn ok_json(args: &[&str]) -> serde_json::Value {
        let out = smartpos(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn round_trip(dialect: &str, packed_hex: &str) {
        let decoded = ok_json(&[
            "tool",
            "iso8583",
            "decode",
            "--dialect",
            dialect,
            "--unmasked",
            packed_hex,
        ]);
        let encoded = ok_json(&[
            "tool",
            "iso8583",
            "encode",
            "--dialect",
            dialect,
            &decoded.to_string(),
        ]);
        assert_eq!(
            encoded["hex"].as_str(),
            Some(packed_hex),
            "{dialect}: {decoded}"
        );
    }

    /// A small deterministic generator (no randomness crate in the CLI): xorshift64.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self, below: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % below as u64) as usize
        }
    }

    fn random_message(d: &Dialect, rng: &mut Rng) -> Message {
        let mut m = Message::new(Mti(rng.next(10000) as u16));
        for spec in d.field_specs() {
            if rng.next(4) != 0 {
                continue;
            }
            let (min, max) = length_bounds(spec);
            let len = min + rng.next(max.min(30).max(min) - min + 1);
            let alphabet: &[u8] = match spec.kind {
                FieldKind::N | FieldKind::Xn => b"0123456789",
                FieldKind::Z => b"0123456789D",
                FieldKind::An => b"AZaz09 ",
                FieldKind::Ns => b"09 =/",
                _ => b"AZaz09 !~^{}\"\\",
            };
            let mut v: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.next(alphabet.len())])
                .collect();
            if spec.kind == FieldKind::B {
                v = (0..len).map(|_| rng.next(256) as u8).collect();
            }
            if spec.kind == FieldKind::Xn {
                v[0] = b'D';
            }
            m.set(spec.number, v);
        }
        m
    }

    #[test]
    fn decode_masks_card_data() {
        let packed = hex::encode(&Dialect::cup().pack(&reference::cup_sale()).unwrap());
        let out = smartpos(&["tool", "iso8583", "decode", "--dialect", "cup", &packed]);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains(reference::TEST_PAN), "{text}");
        assert!(!text.contains("1A2B3C4D5E6F7A8B"), "{text}");
        assert!(!text.contains("9F2608"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["mti"], "0200");
        assert_eq!(json["header"], "6000030000603100311000");
        assert_eq!(json["fields"]["2"], "622202*********0123");
        assert_eq!(json["fields"]["3"], "000000");
        assert_eq!(json["fields"]["64"], "A1B2C3D4E5F60718");
    }

    #[test]
    fn unmasked_decode_then_encode_is_identity() {
        for d in [Dialect::cup(), Dialect::iso87b(), Dialect::iso87a()] {
            let reference = d.pack(&reference::cup_sale()).unwrap();
            round_trip(d.name(), &hex::encode(&reference));
            let mut rng = Rng(0x5EED_1234_ABCD_0001);
            for _ in 0..25 {
                let m = random_message(d, &mut rng);
                let packed = d.pack(&m).unwrap();
                round_trip(d.name(), &hex::encode(&packed));
            }
        }
    }

    #[test]
    fn bad_input_is_one_line_without_values() {
        let secret = "9999888877776666555";
        let cases: Vec<Vec<String>> = vec![
            vec![
                "decode".into(),
                "--dialect".into(),
                "cup".into(),
                "0011".into(),
            ],
            vec![
                "decode".into(),
                "--dialect".into(),
                "nope".into(),
                "00".into(),
            ],
            vec![
                "decode".into(),
                "--dialect".into(),
                "iso87a".into(),
                "ZZ".into(),
            ],
            vec![
                "encode".into(),
                "--dialect".into(),
                "iso87a".into(),
                format!(r#"{{"mti":"0200","fields":{{"2":"{secret}0"}}}}"#),
            ],
            vec![
                "encode".into(),
                "--dialect".into(),
                "cup".into(),
                format!(r#"{{"mti":"0200","fields":{{"4":"{secret}"}}}}"#),
            ],
            vec![
                "encode".into(),
                "--dialect".into(),
                "cup".into(),
                format!(r#"{{"mti":"0200","fields":{{"52":"{secret}X"}}}}"#),
            ],
            vec![
                "encode".into(),
                "--dialect".into(),
                "cup".into(),
                r#"{"mti":"20"}"#.into(),
            ],
            vec![
                "encode".into(),
                "--dialect".into(),
                "cup".into(),
                r#"{"mti":"0200","x":1}"#.into(),
            ],
            vec![
                "encode".into(),
                "--dialect".into(),
                "cup".into(),
                "not json".into(),
            ],
        ];
        for case in cases {
            let mut args = vec!["tool", "iso8583"];
            args.extend(case.iter().map(String::as_str));
            let out = smartpos(&args);
            assert_eq!(out.status.code(), Some(2), "{case:?}");
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert!(!err.contains(secret), "{err}");
            assert!(out.stdout.is_empty());
        }
    }
}
