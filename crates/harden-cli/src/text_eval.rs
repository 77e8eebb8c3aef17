//! `harden eval RUN --suite text`: a text run's model under the embedding, token and character
//! attacks, with TextAttack's summary, and the attacked texts side by side.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use harden_train::text::{
    Oracle, TextEvaluation, evaluate_text, load_companion, load_text_run, transfer_text,
};
use serde::Serialize;

/// The JSON report of `harden eval --suite text`.
#[derive(Debug, Serialize)]
struct Report {
    harden: &'static str,
    run: PathBuf,
    dataset: String,
    split: &'static str,
    device: String,
    evaluation: TextEvaluation,
}

/// Marks the edits of `adversarial` against `original` word by word: `[old->new]`.
fn marked(original: &str, adversarial: &str) -> String {
    let a: Vec<&str> = original.split_whitespace().collect();
    let b: Vec<&str> = adversarial.split_whitespace().collect();
    if a.len() != b.len() {
        return adversarial.to_string();
    }
    a.iter()
        .zip(&b)
        .map(|(x, y)| {
            if x == y {
                (*y).to_string()
            } else {
                format!("[{x}->{y}]")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One TSV field: tabs and line breaks become spaces.
fn field(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

/// What the text suite attacks and with what budgets; `None` keeps the run's own setting.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    /// The first N test texts (default: all).
    pub samples: Option<usize>,
    /// The embedding PGD radius per token.
    pub eps: Option<f64>,
    /// The embedding PGD norm.
    pub norm: Option<harden_train::Norm>,
    /// Embedding PGD steps.
    pub steps: Option<usize>,
    /// Embedding PGD restarts.
    pub restarts: Option<usize>,
    /// Seed of the attacks.
    pub seed: Option<u64>,
    /// Words the character attack may edit per text.
    pub max_words: Option<usize>,
    /// Tokens HotFlip may replace per text.
    pub max_flips: Option<usize>,
    /// A text run to craft DeepWordBug's edits on, for the transfer attack.
    pub surrogate: Option<PathBuf>,
}

/// Runs the text suite on the run in `dir`.
pub fn run(
    dir: &Path,
    budget: &Budget,
    device: &Device,
    report_path: Option<&Path>,
    examples_path: Option<&Path>,
) -> Result<()> {
    for (flag, path) in [("--report", report_path), ("--examples", examples_path)] {
        if let Some(p) = path {
            crate::output::check_destination(flag, p)?;
        }
    }
    if !dir.is_dir() {
        bail!(
            "--suite text evaluates a text run directory of harden train; {} is not a directory",
            dir.display()
        );
    }
    harden_train::run_dir::check_dataset(dir)?;
    let (mut config, tokenizer, model) = load_text_run(dir, device)?;
    if let Some(e) = budget.eps {
        if !(e.is_finite() && e > 0.0) {
            bail!("invalid --eps {e}: expected a positive number (the per-token radius)");
        }
        config.eps = e;
    }
    if let Some(norm) = budget.norm {
        config.norm = Some(norm);
    }
    for (flag, value, slot, most) in [
        (
            "steps",
            budget.steps,
            &mut config.eval_steps,
            harden_adversarial::error::STEPS,
        ),
        (
            "restarts",
            budget.restarts,
            &mut config.eval_restarts,
            harden_adversarial::error::RESTARTS,
        ),
    ] {
        if let Some(v) = value {
            harden_adversarial::error::check_count(flag, v, most)?;
            *slot = v;
        }
    }
    if let Some(seed) = budget.seed {
        config.seed = seed;
    }
    for (flag, value, slot) in [
        ("max-words", budget.max_words, &mut config.text.max_words),
        ("max-flips", budget.max_flips, &mut config.text.max_flips),
    ] {
        if let Some(v) = value {
            harden_adversarial::error::check_count(flag, v, harden_adversarial::error::EDITS)?;
            *slot = v;
        }
    }
    let (_, test) = config
        .dataset
        .load_text_columns(&config.text.columns)
        .with_context(|| format!("the test split of {}", config.dataset))?;
    let n = budget.samples.unwrap_or(test.len()).min(test.len());
    if n == 0 {
        bail!("invalid --samples 0: expected at least 1");
    }
    if let Some(asked) = budget.samples.filter(|&s| s > test.len()) {
        eprintln!(
            "warning: --samples {asked} exceeds the {} texts of the test split; evaluating all of them",
            test.len()
        );
    }
    let (mut evaluation, mut examples) =
        evaluate_text(&model, &tokenizer, &test, &config, n, device);
    if let Some(dir) = &budget.surrogate {
        let (s_config, s_tokenizer, s_model) =
            load_companion("--surrogate", dir, test.num_classes(), device)?;
        let oracle = |model, tokenizer, max_len| Oracle {
            model,
            tokenizer,
            max_len,
            device: device.clone(),
        };
        let (target, surrogate) = (
            oracle(&model, &tokenizer, config.text.max_len),
            oracle(&s_model, &s_tokenizer, s_config.text.max_len),
        );
        let (record, transferred) = transfer_text(&target, &surrogate, &test, &config, n);
        evaluation.attacks.push(record);
        examples.push(("deepwordbug-transfer".to_string(), transferred));
    }
    if let Some(path) = examples_path {
        let mut tsv = String::from(
            "attack\tlabel\tclean_correct\tsuccess\twords_changed\tqueries\toriginal\tadversarial\tedits\n",
        );
        for (attack, list) in &examples {
            for e in list.iter().filter(|e| e.clean_correct) {
                let edits: Vec<String> = e.edits.iter().map(|(a, b)| format!("{a}->{b}")).collect();
                tsv.push_str(&format!(
                    "{attack}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    e.label,
                    e.clean_correct,
                    e.success,
                    e.words_changed,
                    e.queries,
                    field(&e.original),
                    field(&marked(&e.original, &e.adversarial)),
                    field(&edits.join(" "))
                ));
            }
        }
        harden_model::atomic::write_bytes(path, tsv.as_bytes())
            .with_context(|| format!("--examples {}", path.display()))?;
    }
    let report = Report {
        harden: env!("CARGO_PKG_VERSION"),
        run: dir.to_path_buf(),
        dataset: config.dataset.to_string(),
        split: "test",
        device: harden_model::device::describe(device),
        evaluation,
    };
    let json = serde_json::to_string_pretty(&report)?;
    match report_path {
        Some(path) => {
            harden_model::atomic::write_bytes(path, json.as_bytes())
                .with_context(|| format!("--report {}", path.display()))?;
            let e = &report.evaluation;
            println!(
                "{}: clean {:.4} on {} texts",
                dir.display(),
                e.clean_accuracy,
                e.samples
            );
            for a in &e.attacks {
                println!(
                    "  {} ({}): accuracy under attack {:.4}, success rate {:.4}",
                    a.attack, a.budget, a.accuracy_under_attack, a.success_rate
                );
            }
        }
        None => println!("{json}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_are_marked_word_by_word() {
        assert_eq!(marked("a good day", "a goid day"), "a [good->goid] day");
        assert_eq!(marked("a b", "a b"), "a b");
        assert_eq!(field("x\ty\nz"), "x y z");
    }
}
