//! Property tests of what a run reads back: arbitrary `metrics.jsonl` bytes and arbitrary TOML
//! configurations give a clear error or a valid value, never a panic.

use harden_train::{RunDir, TrainConfig, TrainError};
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_metrics_file_resumes_or_is_refused_without_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300)
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_string(&TrainConfig::default()).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("metrics.jsonl"), &bytes).unwrap();
        match RunDir::resume(dir.path()) {
            Ok(run) => {
                prop_assert_eq!(run.resumed_after(), Some(0));
                prop_assert!(run.history().is_ok());
            }
            Err(TrainError::Resume { message, .. }) => {
                prop_assert!(message.contains("line"), "{}", message);
                // Nothing is rewritten when a line is refused.
                prop_assert_eq!(std::fs::read(dir.path().join("metrics.jsonl")).unwrap(), bytes);
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn any_toml_configuration_parses_or_is_refused_without_a_panic(
        lines in proptest::collection::vec(
            (
                prop_oneof![
                    Just("eps"), Just("epochs"), Just("model"), Just("norm"), Just("dataset"),
                    Just("hidden"), Just("batch-size"), Just("lr"), Just("milestones"), Just("x"),
                ],
                prop_oneof![
                    Just("0.1"), Just("-1"), Just("\"linf\""), Just("\"inf\""), Just("\"mlp\""),
                    Just("{ kind = \"mlp\", hidden = [0] }"), Just("[1, 2]"), Just("nan"),
                    Just("\"csv:\""), Just("1e400"), Just("18446744073709551616"), Just("true"),
                ],
            ),
            0..6,
        )
    ) {
        let text: String = lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, &text).unwrap();
        match TrainConfig::from_toml_file(&path) {
            Ok(config) => {
                // Whatever parsed is checked, never trusted.
                let _ = config.check();
            }
            Err(err) => prop_assert!(err.to_string().contains("run.toml"), "{}", err),
        }
    }
}
