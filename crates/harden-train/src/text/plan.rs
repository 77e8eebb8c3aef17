//! The checked text side of a run: the perturbations and attacks of text objectives that the
//! [`Run`](crate::Run)'s objective does not hold.

use harden_adversarial::ObjectiveKind;
use harden_adversarial::error::{
    ParamError, TOKENS, check_count, check_finite_non_negative, check_finite_positive,
};
use harden_adversarial::text::{CharAttack, FreeLb, HotFlip, OneStepL2};

use crate::{TrainConfig, TrainError};

/// FreeLB's default ascent step. FreeLB's 0.1 was set for BERT's embeddings, about ten times
/// longer per token than harden's (N(0, 0.02) at width 64: 0.16); at 0.1 a harden
/// Transformer stays at chance for epochs.
pub const FREELB_STEP: f64 = 0.01;

/// What the text objectives, the validation and the final evaluation of a text run use
/// besides the embedding-space objective of the [`Run`](crate::Run).
#[derive(Debug, Clone, PartialEq)]
pub struct TextPlan {
    /// FreeLB's ascent (`freelb` only).
    pub freelb: Option<FreeLb>,
    /// Miyato et al.'s one L2 step on normalised embeddings, at full eps (`miyato` only).
    pub one_step: Option<OneStepL2>,
    /// The character attack: A2T's and ensemble AT's training edits, the validation robust
    /// accuracy and DeepWordBug in the final evaluation.
    pub chars: CharAttack,
    /// HotFlip on tokens, in the final evaluation.
    pub hotflip: HotFlip,
}

impl TextPlan {
    /// Checks the `[text]` settings of `config` and the settings a text run cannot use, and
    /// builds the attacks.
    ///
    /// # Errors
    ///
    /// [`TrainError::Param`] naming the first setting out of range, or one that text runs
    /// cannot use (with why).
    pub fn check(config: &TrainConfig) -> Result<Self, TrainError> {
        let t = &config.text;
        check_count("max-len", t.max_len, TOKENS)?;
        check_finite_non_negative("init-mag", t.init_mag)?;
        check_finite_non_negative("max-norm", t.max_norm)?;
        if !(t.adv_fraction > 0.0 && t.adv_fraction <= 1.0) {
            return Err(ParamError {
                name: "adv-fraction",
                value: t.adv_fraction.to_string(),
                expected: "a number in (0, 1]",
            }
            .into());
        }
        if t.valid_attack_texts == 0 {
            return Err(ParamError {
                name: "valid-attack-texts",
                value: "0".to_string(),
                expected: "at least 1: the validation robust accuracy, and the overfitting guard that watches it, need attacked texts",
            }
            .into());
        }
        let default = TrainConfig::default();
        if config.beta != default.beta {
            return Err(ParamError {
                name: "beta",
                value: config.beta.to_string(),
                expected: "no value for text: it weighs TRADES, which does not train text",
            }
            .into());
        }
        if config.valid_steps != default.valid_steps {
            return Err(ParamError {
                name: "valid-steps",
                value: config.valid_steps.to_string(),
                expected: "no value for text: text runs validate under the character attack (--valid-attack-texts, --max-words), not PGD steps",
            }
            .into());
        }
        if let Some(lora) = config.lora.as_ref().filter(|l| l.convolutions) {
            return Err(ParamError {
                name: "lora-convolutions",
                value: lora.convolutions.to_string(),
                expected: "no value for text: text models have no convolutions",
            }
            .into());
        }
        let freelb = match config.objective {
            ObjectiveKind::Freelb => {
                check_finite_positive("alpha", config.step_size())?;
                Some(FreeLb::new(
                    config.steps,
                    config.step_size(),
                    t.init_mag,
                    t.max_norm,
                )?)
            }
            _ => None,
        };
        let one_step = match config.objective {
            ObjectiveKind::Miyato => Some(OneStepL2::new(config.eps)?),
            _ => None,
        };
        Ok(Self {
            freelb,
            one_step,
            chars: CharAttack::new(t.max_words, t.candidates)?.with_word_limit(t.max_len),
            hotflip: HotFlip::new(t.max_flips)?,
        })
    }
}

/// The `[text]` settings an image or table run was given that differ from their defaults:
/// the first, as the error naming it.
///
/// # Errors
///
/// [`TrainError::Param`] naming the first `[text]` key set for data that is not text.
pub(crate) fn refuse_text_settings(config: &TrainConfig) -> Result<(), TrainError> {
    let given = serde_json::to_value(&config.text).expect("serialisable");
    let default = serde_json::to_value(super::TextSettings::default()).expect("serialisable");
    let (Some(given), Some(default)) = (given.as_object(), default.as_object()) else {
        return Ok(());
    };
    match given.iter().find(|(k, v)| default.get(*k) != Some(*v)) {
        Some((key, value)) => Err(TrainError::Param(ParamError {
            name: match key.as_str() {
                "columns" if config.text.columns.text.is_some() => "text-column",
                "columns" => "label-column",
                key => text_key(key),
            },
            value: value.to_string(),
            expected: "no value for this dataset: it sets text runs (a tsv: dataset)",
        })),
        None => Ok(()),
    }
}

/// The `'static` name of a `[text]` key, for errors.
fn text_key(key: &str) -> &'static str {
    const KEYS: [&str; 11] = [
        "vocab-size",
        "max-len",
        "init-mag",
        "max-norm",
        "max-words",
        "candidates",
        "max-flips",
        "adv-fraction",
        "valid-attack-texts",
        "columns",
        "word-recognition",
    ];
    KEYS.into_iter().find(|k| *k == key).unwrap_or("text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_key_has_its_name_in_errors() {
        let value = serde_json::to_value(super::super::TextSettings::default()).unwrap();
        for key in value.as_object().unwrap().keys() {
            assert_eq!(text_key(key), key, "{key} missing from text_key");
        }
    }
}
