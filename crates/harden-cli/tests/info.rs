//! `harden info` through the real binary.

mod common;

use common::{assert_user_error, harden, stdout_json};
use predicates::str::contains;

#[test]
fn info_lists_backends_datasets_and_models_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let v = stdout_json(
        harden()
            .args(["info", "--json", "--data-dir"])
            .arg(dir.path()),
    );
    let backends: Vec<&str> = v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b.as_str())
        .collect();
    assert!(backends.contains(&"flex"), "{backends:?}");
    // Every backend is listed once: compiled in, or not with the feature that adds it.
    let missing: Vec<(&str, &str)> = v["backends_not_compiled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["feature"].as_str().unwrap()))
        .collect();
    let mut all: Vec<&str> = backends
        .iter()
        .copied()
        .chain(missing.iter().map(|m| m.0))
        .collect();
    all.sort_unstable();
    assert_eq!(all, ["cpu", "cuda", "flex", "ndarray", "wgpu"]);
    for (name, compiled) in [
        ("wgpu", cfg!(feature = "wgpu")),
        ("ndarray", cfg!(feature = "ndarray")),
        ("cuda", cfg!(feature = "cuda")),
    ] {
        assert_eq!(backends.contains(&name), compiled, "{name}");
        assert_eq!(missing.contains(&(name, name)), !compiled, "{name}");
    }
    let flex = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "flex")
        .unwrap();
    assert_eq!(flex["ok"], true);
    let datasets = v["datasets"].as_array().unwrap();
    let digits = datasets.iter().find(|d| d["name"] == "digits").unwrap();
    assert_eq!(
        digits["train"].as_u64().unwrap() + digits["test"].as_u64().unwrap(),
        1797
    );
    let mnist = datasets.iter().find(|d| d["name"] == "mnist").unwrap();
    assert_eq!(mnist["available"], false);
    assert!(mnist["error"].as_str().unwrap().contains("--data-dir"));
    let params: Vec<u64> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["params"].as_u64().unwrap())
        .collect();
    // Text models at the default vocabulary (8000 tokens), length 128 and width 64: the
    // Transformer is 512,000 + 8,192 embedding weights, 2 x 33,472 per layer and a 65 head.
    assert_eq!(
        params,
        vec![101_770, 166_406, 3_274_634, 27_650, 587_201, 512_065]
    );
}

#[test]
fn info_finds_mnist_in_the_shared_data_folder() {
    let Some(dir) = harden_data::testing::data_dir() else {
        return;
    };
    harden()
        .args(["info", "--data-dir"])
        .arg(&dir)
        .assert()
        .success()
        .stdout(contains("mnist          found     train 60000  test 10000"));
}

#[test]
fn info_names_the_feature_of_each_backend_not_compiled_in() {
    let stdout = harden()
        .arg("info")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(stdout).unwrap();
    for name in harden_model::device::missing_backends() {
        assert!(
            stdout.contains(&format!("{name} (feature `{name}`)")),
            "{name}: {stdout}"
        );
    }
}

/// A backend this binary was built without, asked for by any command that takes a device,
/// is refused in one line that names the feature to rebuild with, before anything is written.
#[test]
fn a_backend_not_compiled_in_names_its_feature_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing: Vec<&str> = ["wgpu", "cuda", "ndarray", "cpu"]
        .into_iter()
        .filter(|name| harden_model::device::missing_backends().contains(name))
        .collect();
    for name in missing {
        let out = dir.path().join(format!("run-{name}"));
        let needle = format!("--features {name}");
        for device in [name.to_string(), format!("{name}:1")] {
            if device.contains(':') && !matches!(name, "wgpu" | "cuda") {
                continue;
            }
            assert_user_error(
                harden()
                    .args(["train", "--epochs", "1", "--device", &device, "--out"])
                    .arg(&out),
                &needle,
            );
            assert_user_error(
                harden()
                    .args(["train", "--epochs", "1", "--devices"])
                    .arg(format!("flex,{device}"))
                    .arg("--out")
                    .arg(&out),
                &needle,
            );
            assert!(!out.exists(), "{device}: a run folder was left behind");
            for (command, destination) in [("eval", "--report"), ("attack", "--out")] {
                assert_user_error(
                    harden()
                        .arg(command)
                        .arg(dir.path().join("missing.safetensors"))
                        .args(["--dataset", "digits", "--eps", "0.1", destination])
                        .arg(&out)
                        .args(["--device", &device]),
                    &needle,
                );
                assert!(
                    !out.exists(),
                    "{command} {device}: {} was made",
                    out.display()
                );
            }
        }
    }
}

#[test]
fn bad_flags_exit_with_code_2() {
    assert_user_error(harden().args(["info", "--frobnicate"]), "--frobnicate");
    assert_user_error(harden().arg("launch"), "launch");
}
