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

/// What goes wrong late in a text run, or comes from another run, is refused with a line that
/// names it, and leaves no folder behind: adapter ranks no weight can hold, targets that match
/// nothing, starting weights of another class count or architecture; and `eval` refuses the
/// flags of image evaluations on a text run instead of ignoring them.
#[test]
fn companions_sizes_and_late_failures_are_refused_without_leftovers() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tsv = yelp_slice(&data, dir.path());
    let small = [
        "--width",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--ff",
        "32",
        "--vocab-size",
        "300",
        "--max-len",
        "24",
        "--epochs",
        "1",
        "--valid-attack-texts",
        "4",
        "--eval-samples",
        "8",
        "--eval-steps",
        "2",
        "--objective",
        "clean",
    ];
    let base = dir.path().join("base");
    train_on_tsv(&base, &tsv, &small);
    let images = dir.path().join("images");
    train_quietly(
        &images,
        "--hidden 8 --epochs 1 --objective clean".split(' '),
    );
    let dataset = format!("tsv:{}", tsv.display());
    let out = dir.path().join("out");
    let text_train = |extra: &[&str]| {
        let mut cmd = harden();
        cmd.args(["train", "--dataset", &dataset])
            .args(small)
            .args(extra)
            .arg("--out")
            .arg(&out);
        cmd
    };
    let base_dir = base.to_str().unwrap();
    // Ranks whose adapters would outgrow the weights, however large: never allocated.
    for rank in ["17", "100000", "1000000000000"] {
        assert_user_error(
            &mut text_train(&["--init", base_dir, "--lora-rank", rank]),
            &format!("lora-rank {rank} gives adapters of"),
        );
        assert!(!out.exists(), "rank {rank}");
        assert_user_error(
            harden()
                .args(["train", "--epochs", "1", "--init"])
                .arg(&images)
                .args(["--lora-rank", rank, "--out"])
                .arg(&out),
            "more than the 592 of the 2 weights they adapt: at most 6",
        );
        assert!(!out.exists(), "rank {rank}");
    }
    // Targets that match nothing are found after the folder is made: it goes again, and the
    // same --out is then free for the next run.
    assert_user_error(
        &mut text_train(&[
            "--init",
            base_dir,
            "--lora-rank",
            "2",
            "--lora-targets",
            "nothing",
        ]),
        "no weight matched the LoRA targets",
    );
    assert!(!out.exists());
    text_train(&["--init", base_dir, "--lora-rank", "2"])
        .arg("--quiet")
        .assert()
        .success();
    std::fs::remove_dir_all(&out).unwrap();

    // Starting weights of another architecture or size.
    for (extra, needle) in [
        (
            vec!["--model", "bag-of-embeddings"],
            "pass the same --model and sizes",
        ),
        (vec!["--width", "32"], "pass the same --model and sizes"),
        (vec!["--dropout", "0.3"], "pass the same --model and sizes"),
    ] {
        let args: Vec<&str> = ["--init", base_dir].into_iter().chain(extra).collect();
        // The base's sizes come before the ones tried, which replace them.
        let mut cmd = harden();
        let mut flags: Vec<&str> = small.to_vec();
        for pair in args.chunks(2) {
            if let Some(i) = flags.iter().position(|f| *f == pair[0]) {
                flags.drain(i..i + 2);
            }
        }
        if args.contains(&"bag-of-embeddings") {
            for f in ["--layers", "--heads", "--ff"] {
                let i = flags.iter().position(|x| *x == f).unwrap();
                flags.drain(i..i + 2);
            }
        }
        cmd.args(["train", "--dataset", &dataset])
            .args(&flags)
            .args(&args)
            .arg("--out")
            .arg(&out);
        assert_user_error(&mut cmd, needle);
        assert!(!out.exists(), "{args:?}");
    }
    // Starting weights of another class count.
    let three = dir.path().join("three.tsv");
    let rows: Vec<String> = (0..90)
        .map(|i| format!("{}\tsentence number {i}", i % 3))
        .collect();
    std::fs::write(&three, format!("label\ttext\n{}\n", rows.join("\n"))).unwrap();
    let three_run = dir.path().join("three");
    train_on_tsv(&three_run, &three, &small);
    assert_user_error(
        &mut text_train(&["--init", three_run.to_str().unwrap()]),
        "it has 3 outputs; a model of the data's 2 classes has 1",
    );
    assert!(!out.exists());

    // `eval` on a text run: the flags of image evaluations are refused, the attack flags set
    // the suite's embedding PGD, and too many samples are said to be too many.
    for (flags, needle) in [
        (
            vec!["--adapters", base_dir],
            "--adapters does not apply to --suite text",
        ),
        (vec!["--plot", "curve.svg"], "--plot does not apply"),
        (vec!["--eps-list", "0.1,0.2"], "--eps-list does not apply"),
        (vec!["--model", "mlp"], "--model does not apply"),
        (vec!["--dataset", "digits"], "--dataset does not apply"),
        (
            vec!["--suite", "standard", "--eps", "0.1"],
            "is a text run; evaluate it with --suite text",
        ),
        (
            vec!["--attack", "fgsm", "--eps", "0.1"],
            "is a text run; evaluate it with --suite text",
        ),
    ] {
        let mut cmd = harden();
        cmd.args(["eval", base_dir, "--device", "flex"])
            .args(&flags);
        if !flags.contains(&"--suite") && !flags.contains(&"--attack") {
            cmd.args(["--suite", "text"]);
        }
        assert_user_error(&mut cmd, needle);
    }
    let output = harden()
        .args(["eval", base_dir, "--device", "flex", "--samples", "100000"])
        .args("--eps 0.05 --norm linf --steps 3 --restarts 2".split(' '))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--samples 100000 exceeds the 80 texts"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let bound = &report["evaluation"]["embedding_pgd_white_box_bound"];
    assert_eq!(bound["norm"], "linf", "{bound}");
    assert_eq!(
        (bound["steps"].as_u64(), bound["restarts"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(report["evaluation"]["samples"], 80);
}

/// A run remembers the file it was trained on. When that file changes, every command that
/// reads the run's data again refuses, naming the file; the same bytes copied back pass.
#[test]
fn a_changed_dataset_file_is_refused_by_everything_that_reads_it_again() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tsv = yelp_slice(&data, dir.path());
    let text_run = dir.path().join("text");
    train_on_tsv(
        &text_run,
        &tsv,
        &[
            "--model",
            "bag-of-embeddings",
            "--width",
            "16",
            "--objective",
            "clean",
            "--epochs",
            "1",
            "--vocab-size",
            "300",
            "--valid-attack-texts",
            "4",
        ],
    );
    // A table from a CSV of 120 rows: two features, the label last.
    let csv = dir.path().join("table.csv");
    let rows: Vec<String> = (0..120)
        .map(|i| {
            let x = (i * 37 % 100) as f32 / 100.0;
            format!("{x},{},{}", 1.0 - x, u8::from(x > 0.5))
        })
        .collect();
    std::fs::write(&csv, format!("a,b,label\n{}\n", rows.join("\n"))).unwrap();
    let table_run = dir.path().join("table");
    train_quietly(
        &table_run,
        [
            "--dataset",
            &format!("csv:{}", csv.display()),
            "--hidden",
            "8",
            "--epochs",
            "2",
            "--valid-samples",
            "20",
        ],
    );
    let commands = |run: &std::path::Path| -> Vec<Vec<String>> {
        let run = run.display().to_string();
        let out = run.clone() + "-adv";
        [
            vec!["eval", &run, "--eps", "0.05", "--device", "flex"],
            vec![
                "attack", &run, "--eps", "0.05", "--device", "flex", "--out", &out,
            ],
            vec!["predict", &run, "--test-split", "--device", "flex"],
            vec!["train", "--resume", &run, "--device", "flex", "--quiet"],
        ]
        .into_iter()
        .map(|c| c.into_iter().map(String::from).collect())
        .collect()
    };
    for (file, run) in [(&tsv, &text_run), (&csv, &table_run)] {
        let original = std::fs::read(file).unwrap();
        // A row changed, a row added, the file shortened.
        let text = String::from_utf8(original.clone()).unwrap();
        let edits = [
            text.replacen('1', "0", 1),
            text.clone() + text.lines().last().unwrap() + "\n",
            text.lines()
                .take(text.lines().count() - 3)
                .collect::<Vec<_>>()
                .join("\n")
                + "\n",
        ];
        for edited in edits {
            std::fs::write(file, &edited).unwrap();
            for command in commands(run) {
                assert_user_error(
                    harden().args(&command),
                    &format!("{}: changed since", file.display()),
                );
            }
        }
        std::fs::write(file, &original).unwrap();
        harden().args(&commands(run)[0]).assert().success();
    }
}
