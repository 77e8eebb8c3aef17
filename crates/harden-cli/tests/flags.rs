//! Every `harden train` flag is honoured or refused, for images and for text: two values of an
//! honoured flag train differently (or evaluate differently, for the evaluation's flags), and a
//! refused one exits 2 with a line that names it. The flags come from the binary's own help, so
//! a new flag fails this test until it says what it does for each kind of data.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::harden;

/// What a flag does for one kind of data.
#[derive(Clone, Copy)]
enum Use {
    /// With the base arguments and `context`, the flag set to `a` (`""`: not given) and to `b`
    /// give runs that differ in `what`.
    Honoured {
        context: &'static str,
        a: &'static str,
        b: &'static str,
        what: What,
    },
    /// With the base arguments and `context`, the flag set to `value` is refused (exit 2, one
    /// line naming the flag).
    Refused {
        context: &'static str,
        value: &'static str,
    },
    /// Not about the training itself; the reason names where it is tested.
    Elsewhere(&'static str),
}

/// What two values of an honoured flag must change.
#[derive(Clone, Copy, Debug)]
enum What {
    /// `metrics.jsonl`, timings aside: the training.
    Training,
    /// The final evaluation in `report.json`.
    Evaluation,
}

use Use::{Elsewhere, Honoured, Refused};
use What::{Evaluation, Training};

const fn honoured(context: &'static str, a: &'static str, b: &'static str) -> Use {
    Honoured {
        context,
        a,
        b,
        what: Training,
    }
}

const fn evaluated(a: &'static str, b: &'static str) -> Use {
    Honoured {
        context: "",
        a,
        b,
        what: Evaluation,
    }
}

const fn refused(context: &'static str, value: &'static str) -> Use {
    Refused { context, value }
}

/// Each flag: what it does on the digits (images) and on text. `{base}` and `{other}` are two
/// runs of the same kind (seeds 0 and 1), `{cnn}` a small CNN on the digits, `{tsv}` the
/// texts.
#[rustfmt::skip]
fn cases() -> Vec<(&'static str, Use, Use)> {
    const WHERE: Use = Elsewhere("where and how a run happens, not what it trains (train.rs)");
    const FILE: Use = Elsewhere("sets the other flags; train.rs tests the file");
    const RESUME: Use = Elsewhere("the kill tests in train.rs");
    // The digits' guard dips at epoch 5 of this longer run.
    const LONGER: &str = "--epochs 6 --hidden 32 --valid-samples 1000";
    // So does a bag of embeddings' robustness to the character attack at epoch 4 of this run.
    const BAG: &str = "--model bag-of-embeddings --eps 0.01 --lr 0.02 --epochs 6";
    vec![
        ("--config", FILE, FILE),
        ("--dataset", Elsewhere("the data itself"), Elsewhere("the data itself")),
        ("--data-dir", refused("", "/data"), refused("", "/data")),
        ("--model", honoured("", "mlp", "small-cnn"), honoured("", "text-transformer", "bag-of-embeddings")),
        ("--hidden", honoured("", "16", "24"), refused("", "16")),
        ("--objective", honoured("", "pgd", "clean"), honoured("", "pgd", "clean")),
        ("--norm", honoured("", "linf", "l2"), honoured("", "l2", "linf")),
        ("--eps", honoured("", "0.1", "0.2"), honoured("", "0.1", "0.3")),
        ("--alpha", honoured("", "", "0.05"), honoured("", "", "0.05")),
        ("--steps", honoured("", "7", "2"), honoured("", "7", "2")),
        ("--restarts", honoured("", "1", "2"), honoured("", "1", "2")),
        ("--beta", honoured("--objective trades", "6", "1"), refused("", "1")),
        ("--eps-warmup-epochs", honoured("", "0", "1"), honoured("", "0", "1")),
        ("--epochs", honoured("", "2", "3"), honoured("", "2", "3")),
        ("--batch-size", honoured("", "32", "16"), honoured("", "32", "16")),
        ("--optimizer", honoured("", "adam", "sgd"), honoured("", "adam", "sgd")),
        ("--lr", honoured("", "0.002", "0.01"), honoured("", "0.002", "0.01")),
        ("--momentum", honoured("--optimizer sgd", "0.9", "0.5"), honoured("--optimizer sgd", "0.9", "0.5")),
        ("--weight-decay", honoured("", "0", "0.1"), honoured("", "0", "0.1")),
        ("--schedule", honoured("", "one-cycle", "constant"), honoured("", "one-cycle", "constant")),
        ("--peak-epoch", honoured("", "", "1"), honoured("", "", "1")),
        ("--milestones", honoured("--schedule piecewise", "", "0.5"), honoured("--schedule piecewise", "", "0.5")),
        ("--gamma", honoured("--schedule piecewise --milestones 0.5", "0.1", "0.5"), honoured("--schedule piecewise --milestones 0.5", "0.1", "0.5")),
        ("--seed", honoured("", "0", "1"), honoured("", "0", "1")),
        ("--valid-samples", honoured("", "100", "50"), honoured("", "100", "50")),
        ("--valid-steps", honoured(LONGER, "10", "1"), refused("", "3")),
        ("--collapse-drop", honoured(concat(LONGER, " --collapse-patience 1"), "1", "0"), honoured(concat(BAG, " --collapse-patience 1"), "1", "0")),
        ("--collapse-patience", honoured(concat(LONGER, " --collapse-drop 0"), "4", "1"), honoured(concat(BAG, " --collapse-drop 0"), "4", "1")),
        ("--eval-samples", evaluated("40", "30"), evaluated("16", "12")),
        ("--eval-steps", evaluated("2", "5"), evaluated("2", "5")),
        ("--eval-restarts", evaluated("1", "3"), evaluated("1", "3")),
        ("--device", WHERE, WHERE),
        ("--devices", refused("", "flex,flex"), refused("", "flex,flex")),
        ("--out", WHERE, WHERE),
        ("--resume", RESUME, RESUME),
        ("--quiet", WHERE, WHERE),
        ("--json", WHERE, WHERE),
        ("--help", WHERE, WHERE),
        ("--width", refused("", "8"), honoured("", "16", "8")),
        ("--layers", refused("", "2"), honoured("", "2", "1")),
        ("--heads", refused("", "2"), honoured("", "4", "2")),
        ("--ff", refused("", "8"), honoured("", "128", "32")),
        ("--dropout", refused("", "0.2"), honoured("", "0.1", "0.3")),
        ("--vocab-size", refused("", "100"), honoured("", "300", "200")),
        ("--max-len", refused("", "16"), honoured("", "24", "8")),
        ("--init-mag", refused("", "0.1"), honoured("--objective freelb", "0", "0.1")),
        ("--max-norm", refused("", "0.1"), honoured("--objective freelb --init-mag 0.1", "0", "0.01")),
        ("--max-words", refused("", "1"), honoured("--objective a2t", "3", "1")),
        ("--max-flips", refused("", "1"), evaluated("3", "1")),
        ("--valid-attack-texts", refused("", "5"), honoured("", "8", "3")),
        ("--text-column", refused("", "shout"), honoured("", "text", "shout")),
        ("--label-column", refused("", "flipped"), honoured("", "label", "flipped")),
        ("--word-recognition", refused("", "neutral"), honoured("", "", "neutral")),
        ("--adv-fraction", refused("", "0.25"), honoured("--objective a2t", "0.5", "0.25")),
        ("--init", honoured("", "", "{base}"), honoured("", "", "{base}")),
        ("--lora-rank", honoured("--init {base}", "2", "4"), honoured("--init {base}", "2", "4")),
        ("--lora-alpha", honoured("--init {base} --lora-rank 2", "4", "16"), honoured("--init {base} --lora-rank 2", "4", "16")),
        ("--lora-targets", honoured("--init {base} --lora-rank 2", "", "layers.0"), honoured("--init {base} --lora-rank 2", "", "encoder")),
        ("--lora-convolutions", honoured("--model small-cnn --init {cnn} --lora-rank 2", "", " "), refused("--init {base} --lora-rank 2", " ")),
        ("--lora-full", honoured("--init {base} --lora-rank 2", "", "layers.1"), honoured("--init {base} --lora-rank 2", "", "head")),
        ("--teacher", honoured("--objective ard", "{base}", "{other}"), honoured("--objective ard", "{base}", "{other}")),
        ("--distill-alpha", honoured("--objective ard --teacher {base}", "1", "0.5"), honoured("--objective ard --teacher {base}", "1", "0.5")),
        ("--temperature", honoured("--objective ard --teacher {base}", "30", "2"), honoured("--objective ard --teacher {base}", "30", "2")),
        ("--surrogates", honoured("--objective ensemble-at", "{base}", "{other}"), honoured("--objective ensemble-at", "{base}", "{other}")),
    ]
}

/// `a` then `b`, leaked: a context built from two (the table lives for the whole test).
fn concat(a: &str, b: &str) -> &'static str {
    Box::leak(format!("{a}{b}").into_boxed_str())
}

/// One kind of data: its base arguments and its companion runs.
struct Kind {
    name: &'static str,
    base: Vec<String>,
    runs: Vec<(&'static str, PathBuf)>,
}

impl Kind {
    /// `template` with the companion runs and the TSV filled in, split into arguments.
    fn args(&self, template: &str) -> Vec<String> {
        let mut text = template.to_string();
        for (name, path) in &self.runs {
            text = text.replace(&format!("{{{name}}}"), &path.display().to_string());
        }
        text.split_whitespace().map(str::to_string).collect()
    }
}

/// Command-line arguments as flags with their values, in order; a later flag replaces an
/// earlier one of the same name.
#[derive(Clone, Default)]
struct Args(Vec<(String, Option<String>)>);

impl Args {
    fn parse(tokens: &[String]) -> Self {
        let mut pairs = Vec::new();
        let mut it = tokens.iter().peekable();
        while let Some(flag) = it.next() {
            let value = it.next_if(|v| !v.starts_with("--")).cloned();
            pairs.push((flag.clone(), value));
        }
        Self(pairs)
    }

    fn remove(&mut self, flag: &str) {
        self.0.retain(|(f, _)| f != flag);
    }

    fn set(&mut self, other: &Self) {
        for (flag, value) in &other.0 {
            self.remove(flag);
            self.0.push((flag.clone(), value.clone()));
        }
    }

    fn list(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|(f, v)| std::iter::once(f.clone()).chain(v.clone()))
            .collect()
    }
}

/// `flag value` as arguments: nothing for `""`, the bare flag for `" "`.
fn flag_args(flag: &str, value: &str) -> Vec<String> {
    match value {
        "" => Vec::new(),
        " " => vec![flag.to_string()],
        v => vec![flag.to_string(), v.to_string()],
    }
}

/// Trains into `out` with `args`; the output of a failure.
fn train(out: &Path, args: &[String]) -> Result<(), (Option<i32>, String)> {
    let output = harden()
        .arg("train")
        .args(args)
        .args(["--quiet", "--out"])
        .arg(out)
        .output()
        .unwrap();
    if output.status.success() {
        Ok(())
    } else {
        Err((
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }
}

/// What `what` compares of the run in `dir`.
fn observed(dir: &Path, what: What) -> String {
    match what {
        Training => {
            let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            lines
                .into_iter()
                .map(|mut v| {
                    let o = v.as_object_mut().unwrap();
                    o.remove("seconds");
                    o.remove("samples_per_second");
                    v.to_string()
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        Evaluation => {
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
                    .unwrap();
            let mut e = report["evaluation"].clone();
            strip_seconds(&mut e);
            e.to_string()
        }
    }
}

fn strip_seconds(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            o.remove("seconds");
            o.values_mut().for_each(strip_seconds);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_seconds),
        _ => {}
    }
}

/// The long flags `harden train --help` lists.
fn clap_flags() -> BTreeSet<String> {
    let help = harden().args(["train", "--help"]).output().unwrap();
    String::from_utf8(help.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("-h, ").unwrap_or(l);
            l.starts_with("--")
                .then(|| l.split([' ', '=']).next().unwrap().to_string())
        })
        .collect()
}

/// The yelp slice with two more columns: `shout` (each text with its words reversed) and
/// `flipped` (each label flipped on every third row).
fn texts(data: &Path, dir: &Path) -> PathBuf {
    let slice = common::yelp_slice(data, dir);
    let text = std::fs::read_to_string(&slice).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mut out = format!("{header}\tshout\tflipped\n");
    let columns: Vec<&str> = header.split('\t').collect();
    let (t, l) = (
        columns.iter().position(|c| *c == "text").unwrap(),
        columns.iter().position(|c| *c == "label").unwrap(),
    );
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split('\t').collect();
        let shout: Vec<&str> = cells[t].split_whitespace().rev().collect();
        let label = cells[l];
        let flipped = match (i % 3, label) {
            (0, "0") => "1",
            (0, _) => "0",
            _ => label,
        };
        out.push_str(&format!("{line}\t{}\t{flipped}\n", shout.join(" ")));
    }
    let path = dir.join("texts.tsv");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn every_train_flag_is_honoured_or_refused_for_images_and_text() {
    let Some(data) = harden_data::testing::data_dir() else {
        return;
    };
    let cases = cases();
    let listed: BTreeSet<String> = cases.iter().map(|(f, _, _)| f.to_string()).collect();
    assert_eq!(
        clap_flags(),
        listed,
        "every flag of `harden train --help` needs a line in cases()"
    );

    let dir = tempfile::tempdir().unwrap();
    let tsv = texts(&data, dir.path());
    let arrays_base =
        "--epochs 2 --eval-samples 40 --eval-steps 2 --valid-samples 100 --device flex";
    let text_base = format!(
        "--dataset tsv:{} --width 16 --vocab-size 300 --max-len 24 \
         --epochs 2 --valid-attack-texts 8 --eval-samples 16 --eval-steps 2 --valid-samples 100 \
         --device flex",
        tsv.display()
    );
    let mut kinds = Vec::new();
    for (name, base) in [("images", arrays_base.to_string()), ("text", text_base)] {
        let base: Vec<String> = base.split_whitespace().map(str::to_string).collect();
        let mut runs = Vec::new();
        for (run, extra) in [
            ("base", "--objective clean --hidden 16"),
            ("other", "--objective clean --hidden 16 --seed 1"),
            ("cnn", "--objective clean --model small-cnn"),
        ] {
            if name == "text" && run == "cnn" {
                continue;
            }
            let extra = if name == "text" {
                extra
                    .replace(" --hidden 16", "")
                    .replace(" --model small-cnn", "")
            } else {
                extra.to_string()
            };
            let out = dir.path().join(format!("{name}-{run}"));
            let args: Vec<String> = base
                .iter()
                .cloned()
                .chain(extra.split_whitespace().map(str::to_string))
                .collect();
            train(&out, &args).unwrap_or_else(|e| panic!("{name} {run}: {e:?}"));
            runs.push((run, out));
        }
        kinds.push(Kind { name, base, runs });
    }

    let mut failures = Vec::new();
    let mut n = 0;
    for (flag, images, text) in &cases {
        for (kind, usage) in kinds.iter().zip([images, text]) {
            n += 1;
            let run_with = |context: &str, value: &str, label: &str| {
                let mut args = Args::parse(&kind.base);
                // The images' base trains an MLP of 16 units unless the case picks a model.
                if kind.name == "images" && !context.contains("--model") && *flag != "--model" {
                    args.set(&Args::parse(&["--hidden".to_string(), "16".to_string()]));
                }
                if *flag == "--devices" {
                    args.remove("--device");
                }
                args.set(&Args::parse(&kind.args(context)));
                args.remove(flag);
                args.set(&Args::parse(&kind.args(&flag_args(flag, value).join(" "))));
                let args = args.list();
                let out = dir.path().join(format!("{}-{n}-{label}", kind.name));
                (train(&out, &args), out, args)
            };
            match *usage {
                Elsewhere(why) => assert!(!why.is_empty(), "{flag}: say where it is tested"),
                Honoured {
                    context,
                    a,
                    b,
                    what,
                } => {
                    let (ra, da, args_a) = run_with(context, a, "a");
                    let (rb, db, args_b) = run_with(context, b, "b");
                    match (ra, rb) {
                        (Ok(()), Ok(())) => {
                            if observed(&da, what) == observed(&db, what) {
                                failures.push(format!(
                                    "{} {flag}: {a:?} and {b:?} give the same {what:?} ({args_b:?})",
                                    kind.name
                                ));
                            }
                        }
                        (ra, rb) => failures.push(format!(
                            "{} {flag}: a run failed: {ra:?} {args_a:?} / {rb:?} {args_b:?}",
                            kind.name
                        )),
                    }
                }
                Refused { context, value } => {
                    let (r, out, args) = run_with(context, value, "refused");
                    let name = flag.trim_start_matches("--");
                    match r {
                        Err((Some(2), stderr))
                            if stderr.contains(name) && stderr.trim().lines().count() <= 3 =>
                        {
                            if out.exists() {
                                failures.push(format!(
                                    "{} {flag}: refused but wrote {}",
                                    kind.name,
                                    out.display()
                                ));
                            }
                        }
                        other => failures.push(format!(
                            "{} {flag} {value:?}: expected a refusal naming {name}, got {other:?} ({args:?})",
                            kind.name
                        )),
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
