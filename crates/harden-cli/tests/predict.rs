//! `harden predict` through the real binary: its answers against `eval`'s and `attack`'s on
//! the same test split for a run of each kind, the file formats, the JSON service through a
//! pipe, and bad input.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{
    assert_user_error, base_and_lora, harden, stdout_json, train_on_tsv, train_quietly, yelp_slice,
};
use harden_data::testing::data_dir;
use serde_json::{Value, json};

/// The answers `harden predict ARGS` prints (JSON lines), after asserting it succeeded.
fn answers(cmd: &mut assert_cmd::Command) -> Vec<Value> {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn classes(answers: &[Value]) -> Vec<u64> {
    answers
        .iter()
        .map(|a| a["class"].as_u64().unwrap())
        .collect()
}

fn predict(run: &Path) -> assert_cmd::Command {
    let mut cmd = harden();
    cmd.arg("predict").arg(run).args(["--device", "flex"]);
    cmd
}

/// Every answer is well formed: numbered from 0, its label the name of its class, its
/// probabilities a distribution whose largest entry is its class.
fn assert_well_formed(answers: &[Value], names: &[&str]) {
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a["input"], i as u64, "{a}");
        let class = a["class"].as_u64().unwrap() as usize;
        assert_eq!(a["label"], names[class], "{a}");
        let p: Vec<f64> = a["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(p.len(), names.len().max(2), "{a}");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{a}");
        let best = p.iter().copied().fold(f64::MIN, f64::max);
        assert_eq!(p[class], best, "{a}");
    }
}

/// `harden attack`'s clean prediction and label of every test sample, and `harden eval`'s
/// clean accuracy, on the run's test split.
fn eval_view(run: &Path, out: &Path) -> (Vec<u64>, Vec<u64>, f64) {
    harden()
        .arg("attack")
        .arg(run)
        .args([
            "--eps",
            "0.01",
            "--samples",
            "100000",
            "--device",
            "flex",
            "--out",
        ])
        .arg(out)
        .assert()
        .success();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let per_sample = summary["per_sample"].as_array().unwrap();
    let predicted = per_sample
        .iter()
        .map(|s| s["clean_prediction"].as_u64().unwrap())
        .collect();
    let labels = per_sample
        .iter()
        .map(|s| s["label"].as_u64().unwrap())
        .collect();
    let report = stdout_json(
        harden()
            .arg("eval")
            .arg(run)
            .args(["--attack", "fgsm", "--eps", "0.01", "--device", "flex"]),
    );
    let accuracy = report["evaluation"]["clean_accuracy"].as_f64().unwrap();
    (predicted, labels, accuracy)
}

fn accuracy(predicted: &[u64], labels: &[u64]) -> f64 {
    let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    right as f64 / labels.len() as f64
}

/// An image run (the embedded digits, `[1, 8, 8]`) and a table run (breast cancer, scaled):
/// predict's classes on the test split are attack's clean predictions, label for label, and
/// its accuracy is eval's clean accuracy.
#[test]
fn predict_agrees_with_eval_on_image_and_table_runs() {
    let dir = tempfile::tempdir().unwrap();
    for (dataset, names) in [
        (
            "digits",
            vec!["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        ),
        ("breast-cancer", vec!["malignant", "benign"]),
    ] {
        let run = dir.path().join(dataset);
        train_quietly(
            &run,
            [
                "--dataset",
                dataset,
                "--epochs",
                "4",
                "--objective",
                "clean",
            ],
        );
        let (predicted, labels, eval_accuracy) = eval_view(&run, &dir.path().join("adv"));
        let got = answers(predict(&run).arg("--test-split"));
        assert_well_formed(&got, &names);
        assert_eq!(classes(&got), predicted, "{dataset}");
        assert_eq!(accuracy(&predicted, &labels), eval_accuracy, "{dataset}");
        assert!(
            eval_accuracy > 0.8,
            "{dataset}: the run learned ({eval_accuracy})"
        );
    }
}

/// The raw rows of breast cancer's test split (the scaler's inverse of what eval reads), as a
/// CSV with a header line.
fn cancer_rows_csv(path: &Path) -> usize {
    let splits = harden_data::DatasetSource::BreastCancer
        .load(Path::new("."))
        .unwrap();
    let scaler = splits.scaler.unwrap();
    let test = splits.test;
    let features = test.sample_len();
    let mut csv: Vec<String> = vec![
        (0..features)
            .map(|i| format!("f{i}"))
            .collect::<Vec<_>>()
            .join(","),
    ];
    for i in 0..test.len() {
        let mut row = test.sample(i).to_vec();
        scaler.inverse_row(&mut row);
        csv.push(row.iter().map(f32::to_string).collect::<Vec<_>>().join(","));
    }
    std::fs::write(path, csv.join("\n") + "\n").unwrap();
    test.len()
}

/// A CSV of raw feature values goes through the run's scaler: the same classes as the test
/// split eval reads, in every answer format, to a file or standard output.
#[test]
fn table_rows_go_through_the_runs_scaler_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("cancer");
    train_quietly(&run, ["--dataset", "breast-cancer", "--epochs", "2"]);
    let csv = dir.path().join("rows.csv");
    let n = cancer_rows_csv(&csv);
    let split = classes(&answers(predict(&run).arg("--test-split")));
    assert_eq!(split.len(), n);
    let from_file = answers(predict(&run).arg(&csv));
    assert_eq!(classes(&from_file), split);
    // Standard input, as `-` and as no input at all.
    for args in [vec!["-"], vec![]] {
        let got = answers(predict(&run).args(&args).pipe_stdin(&csv).unwrap());
        assert_eq!(classes(&got), split);
    }
    // CSV and TSV to --out: a header, then one line per row, the same classes.
    for (format, sep) in [("csv", ','), ("tsv", '\t')] {
        let out = dir.path().join(format!("answers.{format}"));
        predict(&run)
            .arg(&csv)
            .args(["--format", format, "--out"])
            .arg(&out)
            .assert()
            .success()
            .stdout("");
        let text = std::fs::read_to_string(&out).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(sep).collect();
        assert_eq!(
            header,
            ["input", "label", "class", "p_malignant", "p_benign"]
        );
        let got: Vec<u64> = lines
            .map(|l| l.split(sep).nth(2).unwrap().parse().unwrap())
            .collect();
        assert_eq!(got, split, "{format}");
    }
}

/// MNIST: an IDX file, PNG files and the test split give the same answers, bit for bit,
/// and they are attack's clean predictions.
#[test]
fn image_files_are_read_as_the_dataset_reads_them() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("mnist");
    train_quietly(
        &run,
        [
            "--dataset",
            "mnist",
            "--data-dir",
            data.to_str().unwrap(),
            "--hidden",
            "32",
            "--objective",
            "clean",
            "--epochs",
            "1",
            "--batch-size",
            "100",
            "--eval-samples",
            "100",
        ],
    );
    let split = answers(predict(&run).arg("--test-split"));
    assert_eq!(split.len(), 10_000);
    let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    assert_well_formed(
        &split,
        &digits.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let idx = data.join("mnist/t10k-images-idx3-ubyte.gz");
    assert_eq!(answers(predict(&run).arg(&idx)), split);

    // The first five test images as grey PNG files, and one as RGB (turned to grey).
    let images = harden_data::idx::read_images(&idx).unwrap();
    let mut pngs = Vec::new();
    for i in 0..5 {
        let pixels = &images.data[i * 784..(i + 1) * 784];
        let path = dir.path().join(format!("{i}.png"));
        write_png(&path, 28, 28, png::ColorType::Grayscale, pixels);
        pngs.push(path);
    }
    let rgb: Vec<u8> = images.data[..784].iter().flat_map(|&p| [p, p, p]).collect();
    let rgb_path = dir.path().join("rgb.png");
    write_png(&rgb_path, 28, 28, png::ColorType::Rgb, &rgb);
    pngs.push(rgb_path);
    let got = answers(predict(&run).args(&pngs));
    let expected: Vec<u64> = classes(&split[..5])
        .into_iter()
        .chain([classes(&split[..1])[0]])
        .collect();
    assert_eq!(classes(&got), expected);
    // The same images in another batch: the same classes, probabilities equal to rounding
    // (the matrix kernels sum in another order for another batch size).
    for (a, b) in got.iter().zip(&split[..5]) {
        let (a, b) = (
            a["probabilities"].as_array().unwrap(),
            b["probabilities"].as_array().unwrap(),
        );
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-5,
                "{x} {y}"
            );
        }
    }

    let (predicted, _, _) = eval_view(&run, &dir.path().join("adv"));
    assert_eq!(classes(&split), predicted);
}

fn write_png(path: &Path, width: u32, height: u32, color: png::ColorType, pixels: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(pixels)
        .unwrap();
}

/// Trains a bag of embeddings on the TSV `tsv` (vocabulary 300, clean) for `epochs` into
/// `out`.
fn bag_of_embeddings(out: &Path, tsv: &Path, epochs: &str) {
    let model = "--model bag-of-embeddings --objective clean --vocab-size 300 --epochs";
    train_on_tsv(
        out,
        tsv,
        &[model.split(' ').collect::<Vec<_>>(), vec![epochs]].concat(),
    );
}

/// A text Transformer run: predict's classes on the test split are right exactly where the
/// text suite of eval finds the model right, and plain lines, the TSV and the JSON service
/// give the same answers as the test split.
#[test]
fn predict_agrees_with_eval_on_a_text_run() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tsv = yelp_slice(&data, dir.path());
    let run = dir.path().join("text");
    train_on_tsv(
        &run,
        &tsv,
        &[
            "--model",
            "text-transformer",
            "--objective",
            "clean",
            "--epochs",
            "8",
            "--vocab-size",
            "500",
            "--width",
            "32",
            "--layers",
            "1",
            "--max-len",
            "32",
        ],
    );
    let split = answers(predict(&run).arg("--test-split"));
    assert_well_formed(&split, &["0", "1"]);
    let (_, test) = harden_data::DatasetSource::Tsv(tsv.clone())
        .load_text()
        .unwrap();
    assert_eq!(split.len(), test.len());

    // eval's text suite: its clean accuracy, and the texts it found classified correctly.
    let examples = dir.path().join("examples.tsv");
    let report = stdout_json(
        harden()
            .args(
                "eval --suite text --device flex --max-words 1 --max-flips 1 --examples".split(' '),
            )
            .arg(&examples)
            .arg(&run),
    );
    let labels: Vec<u64> = test.labels().iter().map(|&l| u64::from(l)).collect();
    let predicted = classes(&split);
    assert_eq!(
        accuracy(&predicted, &labels),
        report["evaluation"]["clean_accuracy"].as_f64().unwrap()
    );
    let correct_in_eval: std::collections::BTreeSet<String> = std::fs::read_to_string(&examples)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("deepwordbug\t"))
        .map(|l| l.split('\t').nth(6).unwrap().to_string())
        .collect();
    for (i, text) in test.texts().iter().enumerate() {
        assert_eq!(
            predicted[i] == labels[i],
            correct_in_eval.contains(text.as_str()),
            "{text}"
        );
    }

    // Plain lines (standard input and a file), and the TSV with its header.
    let lines = dir.path().join("texts.txt");
    std::fs::write(&lines, test.texts().join("\n") + "\n").unwrap();
    assert_eq!(answers(predict(&run).arg(&lines)), split);
    assert_eq!(answers(predict(&run).pipe_stdin(&lines).unwrap()), split);
    let mut tsv_in = String::from("id\ttext\n");
    for (i, t) in test.texts().iter().enumerate() {
        tsv_in.push_str(&format!("{i}\t{t}\n"));
    }
    let tsv_path = dir.path().join("texts.tsv");
    std::fs::write(&tsv_path, tsv_in).unwrap();
    assert_eq!(answers(predict(&run).arg(&tsv_path)), split);

    // The JSON service: one request with every text.
    let request = json!({ "texts": test.texts(), "id": "all" }).to_string() + "\n";
    let served = answers(predict(&run).arg("--serve-stdin").write_stdin(request));
    assert_eq!(served.len(), 1);
    assert_eq!(served[0]["id"], "all");
    let served = served[0]["predictions"].as_array().unwrap();
    for (a, b) in served.iter().zip(&split) {
        assert_eq!(a["class"], b["class"]);
        assert_eq!(a["probabilities"], b["probabilities"]);
    }

    // The Python wrapper of docs/examples drives the same service.
    if let Some(answer) = python_wrapper(&run, &test.texts()[..3]) {
        let want: Vec<Value> = split[..3]
            .iter()
            .map(|a| a["probabilities"].clone())
            .collect();
        assert_eq!(answer, Value::Array(want));
    }
}

/// Runs docs/examples/harden_wrapper.py on `texts`; `None` (after saying why) without a
/// `python3`.
fn python_wrapper(run: &Path, texts: &[String]) -> Option<Value> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/harden_wrapper.py");
    let Ok(out) = Command::new("python3")
        .arg(&script)
        .arg(run)
        .args(texts)
        .env("HARDEN", env!("CARGO_BIN_EXE_harden"))
        .output()
    else {
        eprintln!("skipping the Python wrapper: no python3");
        return None;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The service answers each request on its own line as soon as it is sent (the client reads
/// the answer before it writes the next request), answers bad requests with an error and goes
/// on, and exits 0 when its input closes.
#[test]
fn the_json_service_answers_through_a_pipe_request_by_request() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("cancer");
    train_quietly(&run, ["--dataset", "breast-cancer", "--epochs", "2"]);
    let rows = dir.path().join("rows.csv");
    cancer_rows_csv(&rows);
    let file_answers = answers(predict(&run).arg(&rows));
    let raw: Vec<Vec<f64>> = std::fs::read_to_string(&rows)
        .unwrap()
        .lines()
        .skip(1)
        .take(3)
        .map(|l| l.split(',').map(|x| x.parse().unwrap()).collect())
        .collect();

    let mut child = Command::new(env!("CARGO_BIN_EXE_harden"))
        .arg("predict")
        .arg(&run)
        .args(["--device", "flex", "--serve-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ask = |request: &str| -> Value {
        writeln!(stdin, "{request}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let answer = ask(&json!({ "rows": raw, "id": 1 }).to_string());
    assert_eq!(answer["id"], 1);
    let got = answer["predictions"].as_array().unwrap();
    assert_eq!(got.len(), 3);
    for (a, b) in got.iter().zip(&file_answers) {
        assert_eq!(a["class"], b["class"]);
        assert_eq!(a["label"], b["label"]);
        assert_eq!(a["probabilities"], b["probabilities"]);
    }
    for (request, needle) in [
        ("this is not json", "not JSON"),
        (
            r#"{"texts": ["a fine film"], "id": 2}"#,
            "this model classifies rows",
        ),
        (
            r#"{"rows": [[1, 2, 3]], "id": 3}"#,
            "rows[0] has 3 values; this model reads 30 features",
        ),
        (r#"{"images": [[0.5]]}"#, "this model classifies rows"),
        (r#"{"rows": []}"#, "empty"),
    ] {
        let answer = ask(request);
        let error = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{request}: {answer}"));
        assert!(error.contains(needle), "{request}: {error}");
        assert!(answer.get("predictions").is_none());
    }
    assert_eq!(ask(r#"{"texts": ["x"], "id": "keep"}"#)["id"], "keep");
    // Still serving after the errors.
    let again = ask(&json!({ "rows": [raw[0].clone()] }).to_string());
    assert_eq!(again["predictions"][0]["class"], file_answers[0]["class"]);
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
}

/// Bad input in file mode: one line that names the file, the line and what was expected,
/// exit code 2, no panic, and an existing --out file left as it was.
#[test]
fn bad_inputs_are_refused_in_one_line_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let table = d.join("cancer");
    train_quietly(&table, ["--dataset", "breast-cancer", "--epochs", "1"]);
    let image = d.join("digits");
    train_quietly(&image, ["--epochs", "1"]);
    let row: Vec<String> = (0..30).map(|i| format!("{}", i as f32 * 0.5)).collect();
    let good = row.join(",");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("short.csv", format!("{good}\n1,2,3\n").into_bytes()),
        (
            "word.csv",
            format!("{good}\n{}\n", good.replacen("0.5", "abc", 1)).into_bytes(),
        ),
        (
            "nan.csv",
            format!("{good}\n{}\n", good.replacen("0.5", "NaN", 1)).into_bytes(),
        ),
        ("label.csv", format!("{good},1\n").into_bytes()),
        ("empty.csv", Vec::new()),
        ("header-only.csv", b"a,b\n".to_vec()),
        ("latin1.csv", b"1,2\xe9\n".to_vec()),
        ("text.txt", b"hello\n".to_vec()),
    ];
    for (name, bytes) in &files {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    let out = d.join("answers.jsonl");
    std::fs::write(&out, "kept\n").unwrap();
    let cases: &[(&Path, &str, &str)] = &[
        (
            &table,
            "short.csv",
            "short.csv: line 2: 3 comma-separated values; this model reads 30 features",
        ),
        (
            &table,
            "word.csv",
            "word.csv: line 2, column 2: \"abc\" is not a finite number",
        ),
        (
            &table,
            "nan.csv",
            "nan.csv: line 2, column 2: \"NaN\" is not a finite number",
        ),
        (&table, "label.csv", "line 1: 31 comma-separated values"),
        (&table, "empty.csv", "empty.csv: no row to classify"),
        (&table, "header-only.csv", "no row to classify"),
        (&table, "latin1.csv", "latin1.csv: line 1: not UTF-8"),
        (&table, "missing.csv", "cannot read"),
        (
            &image,
            "text.txt",
            "text.txt: not a PNG file, IDX image file or CIFAR-10 binary file",
        ),
        (&image, "short.csv", "short.csv: not a PNG file"),
    ];
    for (run, input, needle) in cases {
        assert_user_error(
            predict(run).arg(d.join(input)).arg("--out").arg(&out),
            needle,
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "kept\n", "{input}");
    }
    // An image of the wrong size, and an image model asked to read standard input.
    let small = d.join("small.png");
    write_png(&small, 10, 10, png::ColorType::Grayscale, &[0; 100]);
    assert_user_error(
        predict(&image).arg(&small),
        "small.png: the image is 10x10; this model reads 8x8 images",
    );
    assert_user_error(&mut predict(&image), "not standard input");
    // Not a run, nothing there, a bad flag value.
    let empty = d.join("empty-dir");
    std::fs::create_dir(&empty).unwrap();
    assert_user_error(predict(&empty).arg("-"), "config.json");
    assert_user_error(
        &mut predict(&d.join("nowhere")),
        "no such run directory or weights file",
    );
    assert_user_error(predict(&table).args(["--batch-size", "0"]), "batch-size");
    assert_user_error(
        predict(&table)
            .arg("--out")
            .arg(d.join("no/such/folder/a.jsonl")),
        "does not exist",
    );
    assert_user_error(
        predict(&table).args(["--serve-stdin", "--test-split"]),
        "--test-split",
    );
}

/// Bad text input: invalid UTF-8 and empty texts name their line; a TSV without the run's
/// text column names the columns it has.
#[test]
fn bad_text_inputs_name_their_line() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tsv = yelp_slice(&data, d);
    let run = d.join("text");
    bag_of_embeddings(&run, &tsv, "1");
    let files: &[(&str, &[u8])] = &[
        ("latin1.txt", b"good food\ncaf\xe9 au lait\n"),
        ("blank.txt", b"good food\n\nbad service\n"),
        ("spaces.txt", b"good food\n   \n"),
        ("nothing.txt", b""),
        ("ragged.tsv", b"id\ttext\n1\tgood food\n2\n"),
        ("empty-text.tsv", b"id\ttext\n1\t \n"),
    ];
    for (name, bytes) in files {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    for (input, needle) in [
        (
            "latin1.txt",
            "latin1.txt: line 2: not UTF-8 text (invalid byte at column 4)",
        ),
        ("blank.txt", "blank.txt: line 2: empty text"),
        ("spaces.txt", "spaces.txt: line 2: empty text"),
        ("nothing.txt", "nothing.txt: no input to classify"),
        (
            "ragged.tsv",
            "ragged.tsv: line 3: expected 2 tab-separated fields",
        ),
        ("empty-text.tsv", "empty-text.tsv: line 2: empty text"),
    ] {
        assert_user_error(predict(&run).arg(d.join(input)), needle);
    }
    // A text run reads its own dataset's settings; the image flags are refused.
    assert_user_error(predict(&run).args(["--model", "mlp"]), "the text run");
}

/// A LoRA run predicts with its merged weights, and its base with `--adapters` gives the same
/// classes; without the adapters the base answers otherwise. Image run here; the text run's
/// adapters are checked in `adapters_of_a_text_run_apply_too`.
#[test]
fn adapters_apply_over_their_base() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    let lora = dir.path().join("lora");
    base_and_lora(&base, &lora);
    let merged = answers(predict(&lora).arg("--test-split"));
    let unmerged = answers(
        predict(&base)
            .arg("--test-split")
            .arg("--adapters")
            .arg(&lora),
    );
    assert_eq!(classes(&merged), classes(&unmerged));
    let plain = answers(predict(&base).arg("--test-split"));
    assert_ne!(merged, plain, "the adapters changed nothing");
    assert_user_error(
        predict(&base)
            .arg("--test-split")
            .arg("--adapters")
            .arg(&base),
        "not a LoRA run",
    );
}

#[test]
fn adapters_of_a_text_run_apply_too() {
    let Some(data) = data_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tsv = yelp_slice(&data, dir.path());
    let base = dir.path().join("base");
    let lora = dir.path().join("lora");
    bag_of_embeddings(&base, &tsv, "3");
    train_on_tsv(
        &lora,
        &tsv,
        &[
            "--init",
            base.to_str().unwrap(),
            "--lora-rank",
            "2",
            "--epochs",
            "3",
        ],
    );
    let merged = answers(predict(&lora).arg("--test-split"));
    let unmerged = answers(
        predict(&base)
            .arg("--test-split")
            .arg("--adapters")
            .arg(&lora),
    );
    assert_eq!(classes(&merged), classes(&unmerged));
    for (a, b) in merged.iter().zip(&unmerged) {
        let (a, b) = (
            a["probabilities"][1].as_f64().unwrap(),
            b["probabilities"][1].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-4, "{a} {b}");
    }
    let plain = answers(predict(&base).arg("--test-split"));
    assert_ne!(merged, plain, "the adapters changed nothing");
}

/// Flags that do not apply are refused, not ignored.
#[test]
fn flags_that_do_not_apply_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("cancer");
    train_quietly(&run, ["--dataset", "breast-cancer", "--epochs", "1"]);
    assert_user_error(
        predict(&run).args(["--input-format", "tsv", "--test-split"]),
        "--input-format",
    );
    assert_user_error(
        predict(&run).args(["--serve-stdin", "--format", "csv"]),
        "--format",
    );
    assert_user_error(
        predict(&run).args(["--test-split", "--input-format", "lines"]),
        "--input-format",
    );
}
