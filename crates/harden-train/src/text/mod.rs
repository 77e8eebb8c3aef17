//! Text runs: a WordPiece tokenizer trained on the training split, a text model
//! ([`TextModel`]), adversarial training in embedding space (PGD, FreeLB, Miyato's one step,
//! and the distillation objectives ARD and RSLAD from a text teacher run) or on character
//! edits found on the fly (A2T), and an evaluation under the attacks a user can type.
//!
//! Text runs go through the trainer every run shares ([`crate::learner::launch`]): token
//! batches ([`harden_data::Inputs::Tokens`]) from [`crate::loader::EncodedTexts`], steps by
//! [`TextLearner`], so they resume, follow the schedules and the eps warm-up, and have the
//! overfitting guard and the epoch callback as image runs do. The run directory has the
//! layout of an image run (`config.json`, `metrics.jsonl`, `checkpoint/`, `best.*`,
//! `final.*`, `report.json`, [`TextReport`]) and beside the weights `tokenizer.json` (HF
//! `tokenizers` format), `model.json` (the sized model configuration) and, with word
//! recognition, `words.json` (the training split's words and counts). The safetensors files
//! hold burn's parameter names (`tokens.weight`, `encoder.layers.0.mha.query.weight`,
//! `head.weight`, ...) with linear weights in PyTorch's layout.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use harden_data::spelling::{Backoff, WordRecognizer};
use harden_data::{TextDataset, TextTokenizer};
use harden_model::{ModelConfig, TextModel, TextModelConfig};
use serde::{Deserialize, Serialize};

use crate::{TrainConfig, TrainError};

mod adapters;
mod evaluate;
mod plan;
mod report;
mod run;
mod step;

pub use adapters::{Embedder, Oracle};
pub use evaluate::{evaluate_text, transfer_text};
pub(crate) use plan::refuse_text_settings;
pub use plan::{FREELB_STEP, TextPlan};
pub use report::{EmbeddingRobustness, TextAttackSummaryRecord, TextEvaluation, TextReport};
pub(crate) use run::labels_tensor;
pub use run::train_text;
pub use step::{TextKit, TextLearner};

/// The settings only text runs have (`[text]` in a configuration file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TextSettings {
    /// WordPiece vocabulary size, special tokens included.
    pub vocab_size: usize,
    /// Longest sequence in tokens; longer texts are truncated.
    pub max_len: usize,
    /// FreeLB: magnitude of the random start (0: start at zero).
    pub init_mag: f64,
    /// FreeLB: radius of the per-sample L2 ball (0: unbounded).
    pub max_norm: f64,
    /// Character attack (and A2T training): edited words per text.
    pub max_words: usize,
    /// Character attack: edits tried per word.
    pub candidates: usize,
    /// Token attack (HotFlip): replaced tokens per text.
    pub max_flips: usize,
    /// A2T: share of each batch also trained on its adversarial texts.
    pub adv_fraction: f64,
    /// Validation texts (the first ones) attacked by the character attack after each epoch:
    /// the validation robust accuracy the overfitting guard watches (at least 1).
    pub valid_attack_texts: usize,
    /// The TSV columns of the texts and labels (default: `text` and `label`).
    pub columns: harden_data::tsv::Columns,
    /// Word recognition in front of the model ([`harden_data::spelling`]), with what becomes
    /// of unrecognised words (`None`: none): words the training split never used are corrected
    /// to a training word one edit away, in training, evaluation and attacks alike. The run
    /// keeps the word list as `words.json`.
    pub word_recognition: Option<Backoff>,
}

impl Default for TextSettings {
    fn default() -> Self {
        Self {
            vocab_size: 8000,
            max_len: 128,
            init_mag: 0.0,
            max_norm: 0.0,
            max_words: 3,
            candidates: 16,
            max_flips: 3,
            adv_fraction: 0.5,
            valid_attack_texts: 100,
            columns: harden_data::tsv::Columns::default(),
            word_recognition: None,
        }
    }
}

/// The word list of a run trained with word recognition.
pub const WORDS: &str = "words.json";

/// The training, validation and test texts of a run.
#[derive(Debug, Clone)]
pub struct TextData {
    /// Texts trained on (the tokenizer too).
    pub train: TextDataset,
    /// Texts held out of the training split (best epoch).
    pub valid: TextDataset,
    /// The test split.
    pub test: TextDataset,
}

impl TextData {
    /// The dataset `config` names, with a stratified validation split of `valid-samples` (at
    /// most a fifth) held out of its training split.
    ///
    /// # Errors
    ///
    /// [`TrainError::Data`] when the dataset cannot be read or is not text,
    /// [`TrainError::OneClass`] / [`TrainError::ClassTooSmall`] / [`TrainError::TooFewSamples`]
    /// for data that cannot train.
    pub fn load(config: &TrainConfig) -> Result<Self, TrainError> {
        let (train, test) = config.dataset.load_text_columns(&config.text.columns)?;
        let (train_idx, valid_idx) = crate::trainer::hold_out_indices(
            &config.dataset.to_string(),
            train.labels(),
            test.labels(),
            config.valid_samples,
            config.seed,
        )?;
        Ok(Self {
            valid: train.subset(&valid_idx),
            train: train.subset(&train_idx),
            test,
        })
    }
}

/// The text model `config` asks for, sized for `vocab_size` tokens and `classes` classes.
///
/// # Errors
///
/// [`TrainError::Model`] for a model that does not read text or bad sizes.
pub fn model_config(
    config: &TrainConfig,
    vocab_size: usize,
    classes: usize,
) -> Result<TextModelConfig, TrainError> {
    Ok(config.model.text_config(
        vocab_size,
        config.text.max_len,
        ModelConfig::outputs_for_classes(classes),
    )?)
}

/// The text run `path` that another run or evaluation reads besides its own model (`what`
/// names it in errors: `teacher`, `surrogates`, `--surrogate`), and a function that turns a
/// message into the error naming it. The run must classify `classes` classes: as many
/// outputs as a model of that many classes has.
pub(crate) fn read_companion(
    what: &'static str,
    path: &Path,
    classes: usize,
) -> Result<(TextRunFiles, impl Fn(String) -> TrainError), TrainError> {
    let refuse = move |message: String| TrainError::Saved {
        what,
        path: path.to_path_buf(),
        message,
    };
    let run = read_text_run(path).map_err(|e| refuse(e.to_string()))?;
    let outputs = ModelConfig::outputs_for_classes(classes);
    if run.model.num_outputs() != outputs {
        return Err(refuse(format!(
            "it has {} outputs; a model of the data's {classes} classes has {outputs}",
            run.model.num_outputs()
        )));
    }
    Ok((run, refuse))
}

/// A text run read as [`read_companion`] does (a surrogate for ensemble AT or for the
/// transfer attack), with its configuration, its own tokenizer and its best weights on
/// `device`.
///
/// # Errors
///
/// [`TrainError::Saved`] naming `what` and `path` when it is not a text run or classifies
/// another number of classes than `classes`; the store's errors for unreadable weights.
pub fn load_companion(
    what: &'static str,
    path: &Path,
    classes: usize,
    device: &Device,
) -> Result<(TrainConfig, TextTokenizer, TextModel), TrainError> {
    let (run, _) = read_companion(what, path, classes)?;
    let model = harden_model::store::load_module(run.model.init(device), &[], &run.weights)?;
    Ok((run.config, run.tokenizer, model))
}

/// A trained text run read back: its configuration, tokenizer and best weights on `device`.
///
/// # Errors
///
/// [`TrainError::NotARun`] when the folder lacks a file of a text run; the store's and the
/// tokenizer's errors for unreadable files.
pub fn load_text_run(
    dir: &Path,
    device: &Device,
) -> Result<(TrainConfig, TextTokenizer, TextModel), TrainError> {
    let files = read_text_run(dir)?;
    let model = harden_model::store::load_module(files.model.init(device), &[], &files.weights)?;
    Ok((files.config, files.tokenizer, model))
}

/// The files of a text run directory, read and checked; the weights not yet loaded.
pub(crate) struct TextRunFiles {
    /// `config.json`.
    pub config: TrainConfig,
    /// `tokenizer.json`.
    pub tokenizer: TextTokenizer,
    /// `model.json`.
    pub model: TextModelConfig,
    /// The path of the best weights: `best.bpk` (`model.bpk` in runs of harden 0.1).
    pub weights: PathBuf,
}

/// Reads `config.json`, `tokenizer.json` and `model.json` of the text run `dir`; errors as
/// [`load_text_run`]'s.
pub(crate) fn read_text_run(dir: &Path) -> Result<TextRunFiles, TrainError> {
    let config = crate::run_dir::run_config(dir)?;
    let need = |name: &str| -> Result<PathBuf, TrainError> {
        let p = dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(TrainError::NotARun {
                dir: dir.to_path_buf(),
                message: format!(
                    "{name} is missing (a text run holds config.json, tokenizer.json, model.json and best.bpk, and words.json when trained with word recognition)"
                ),
            })
        }
    };
    // A run trained with word recognition needs its word list; one trained without ignores a
    // stray file of that name.
    let recognizer = if config.text.word_recognition.is_some() {
        Some(WordRecognizer::load(&need(WORDS)?)?)
    } else {
        None
    };
    let tokenizer = TextTokenizer::load(&need("tokenizer.json")?)?.with_recognizer(recognizer);
    let model_path = need("model.json")?;
    let model_config: TextModelConfig = serde_json::from_str(
        &std::fs::read_to_string(&model_path).map_err(|e| TrainError::io(&model_path, e))?,
    )
    .map_err(|e| TrainError::NotARun {
        dir: dir.to_path_buf(),
        message: format!("{}: {e}", model_path.display()),
    })?;
    model_config.check()?;
    if tokenizer.vocab_size() > model_config.vocab_size() {
        return Err(TrainError::NotARun {
            dir: dir.to_path_buf(),
            message: format!(
                "tokenizer.json has {} tokens but model.json embeds {}: the files are from different runs",
                tokenizer.vocab_size(),
                model_config.vocab_size()
            ),
        });
    }
    Ok(TextRunFiles {
        config,
        tokenizer,
        model: model_config,
        weights: match dir.join("model.bpk") {
            old if old.is_file() && !dir.join("best.bpk").exists() => old,
            _ => need("best.bpk")?,
        },
    })
}
