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
    assert!(
        backends.contains(&"flex") && backends.contains(&"ndarray"),
        "{backends:?}"
    );
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
fn bad_flags_exit_with_code_2() {
    assert_user_error(harden().args(["info", "--frobnicate"]), "--frobnicate");
    assert_user_error(harden().arg("launch"), "launch");
}
