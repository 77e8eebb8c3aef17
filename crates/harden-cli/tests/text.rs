//! Text runs through the real binary: train, evaluate with the text suite, attack.

mod common;

use common::{assert_user_error, harden, stdout_json, train_on_tsv, train_quietly, yelp_slice};
use harden_data::testing::data_dir;

#[test]
fn a_text_run_trains_evaluates_and_writes_attacked_texts() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tsv = yelp_slice(&data, dir.path());
    let dataset = format!("tsv:{}", tsv.display());
    let run = dir.path().join("run");
    train_on_tsv(
        &run,
        &tsv,
        &[
            "--model",
            "bag-of-embeddings",
            "--objective",
            "clean",
            "--epochs",
            "15",
            "--vocab-size",
            "500",
            "--eps",
            "0.05",
        ],
    );
    for file in ["tokenizer.json", "model.json", "best.bpk", "report.json"] {
        assert!(run.join(file).is_file(), "{file}");
    }
    let report = stdout_json(
        harden()
            .args("eval --suite text --samples 40 --device flex".split(' '))
            .arg(&run),
    );
    let attacks = report["evaluation"]["attacks"].as_array().unwrap();
    let names: Vec<&str> = attacks
        .iter()
        .map(|a| a["attack"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deepwordbug", "hotflip"]);
    assert_eq!(report["evaluation"]["samples"], 40);

    // The transfer attack: DeepWordBug crafted on a surrogate run (here the run itself, so it
    // succeeds as often as the white-box attack does on the texts it breaks).
    let report = stdout_json(
        harden()
            .args("eval --suite text --samples 40 --device flex --surrogate".split(' '))
            .arg(&run)
            .arg(&run),
    );
    let transfer = &report["evaluation"]["attacks"][2];
    assert_eq!(transfer["attack"], "deepwordbug-transfer");
    assert!(
        transfer["success_rate"].as_f64().unwrap() > 0.5,
        "{transfer}"
    );
    // A surrogate of other classes is refused by eval and by ensemble AT, naming it.
    let three = dir.path().join("three.tsv");
    let rows: Vec<String> = (0..90)
        .map(|i| format!("{}\tsentence number {i}", i % 3))
        .collect();
    std::fs::write(&three, format!("label\ttext\n{}\n", rows.join("\n"))).unwrap();
    let three_run = dir.path().join("three");
    let three_set = format!("tsv:{}", three.display());
    let bag = [
        "--model",
        "bag-of-embeddings",
        "--epochs",
        "1",
        "--vocab-size",
        "200",
    ];
    train_quietly(&three_run, [&["--dataset", &three_set][..], &bag].concat());
    assert_user_error(
        harden()
            .args("eval --suite text --device flex --surrogate".split(' '))
            .arg(&three_run)
            .arg(&run),
        &format!(
            "--surrogate {}: it has 3 outputs; a model of the data's 2 classes has 1",
            three_run.display()
        ),
    );
    assert_user_error(
        harden()
            .args(["train", "--dataset", &dataset, "--objective", "ensemble-at"])
            .args(bag)
            .arg("--surrogates")
            .arg(&three_run)
            .arg("--out")
            .arg(dir.path().join("ensemble")),
        "it has 3 outputs; a model of the data's 2 classes has 1",
    );
    assert!(!dir.path().join("ensemble").exists());

    let out = dir.path().join("adv");
    harden()
        .arg("attack")
        .arg(&run)
        .args("--eps 0.05 --samples 30 --device flex --out".split(' '))
        .arg(&out)
        .assert()
        .success();
    let tsv = std::fs::read_to_string(out.join("examples.tsv")).unwrap();
    let mut lines = tsv.lines();
    assert!(lines.next().unwrap().starts_with("attack\tlabel\t"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.len() == 9), "{rows:?}");
    // A successful character attack shows its edits marked in the adversarial column.
    assert!(
        rows.iter()
            .any(|r| r[0] == "deepwordbug" && r[3] == "true" && r[7].contains("->")),
        "{tsv}"
    );

    // A run whose tokenizer.json does not fit its model.json (files mixed from two runs) is
    // refused before any text is encoded, not a panic in the embedding lookup.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    for file in ["config.json", "tokenizer.json", "model.json", "best.bpk"] {
        std::fs::copy(run.join(file), mixed.join(file)).unwrap();
    }
    let model_json = mixed.join("model.json");
    let mut model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model_json).unwrap()).unwrap();
    model["vocab_size"] = serde_json::json!(100);
    std::fs::write(&model_json, model.to_string()).unwrap();
    let attack_out = dir.path().join("mixed-adv");
    let attack_out = attack_out.to_str().unwrap();
    for args in [
        vec!["eval", "--suite", "text", "--device", "flex"],
        vec![
            "attack", "--eps", "0.05", "--device", "flex", "--out", attack_out,
        ],
    ] {
        assert_user_error(
            harden().args(&args).arg(&mixed),
            "tokenizer.json has 500 tokens but model.json embeds 100",
        );
    }
}

#[test]
fn text_flags_and_objectives_meet_their_data() {
    let dir = tempfile::tempdir().unwrap();
    // Each case: the arguments after `train`, then ` => ` and the error they must give.
    let cases = [
        "--objective freelb --epochs 1 => freelb, miyato and a2t train text models",
        "--width 8 --epochs 1 => --width sets a text model size; mlp has none",
        "--model text-transformer --epochs 1 => text-transformer reads token sequences; it needs a text dataset",
        "--word-recognition --epochs 1 => --word-recognition corrects the words of text data; digits is not a text dataset",
        "--word-recognition guess => expected pass-through or neutral",
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let (args, needle) = case.split_once(" => ").unwrap();
        let out = dir.path().join(i.to_string());
        assert_user_error(
            harden()
                .arg("train")
                .args(args.split(' '))
                .arg("--out")
                .arg(out),
            needle,
        );
    }
}
