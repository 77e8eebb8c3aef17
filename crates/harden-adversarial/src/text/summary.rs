//! One attacked text, and TextAttack's summary of an attack over many.

use serde::Serialize;

/// The outcome of attacking one text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextExample {
    /// The text as given.
    pub original: String,
    /// The text the attack ended with (the original when it was skipped or changed nothing).
    pub adversarial: String,
    /// The true class.
    pub label: u32,
    /// Whether the model classified the original correctly (otherwise the text is skipped).
    pub clean_correct: bool,
    /// Whether the final text is misclassified while the original was not.
    pub success: bool,
    /// Words (or tokens, for token attacks) changed.
    pub words_changed: usize,
    /// Words (or tokens) in the original.
    pub words_total: usize,
    /// Model queries spent (forward passes on one text; a gradient counts as one).
    pub queries: usize,
    /// The edits, `from -> to` per changed word, in the order made.
    pub edits: Vec<(String, String)>,
}

/// TextAttack's summary of one attack: success rate over the texts classified correctly,
/// accuracy before and after, words changed and queries per attacked text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextAttackSummary {
    /// The attack's name.
    pub attack: String,
    /// Texts attacked (classified correctly, or skipped).
    pub texts: usize,
    /// Texts the model classified correctly before the attack.
    pub clean_correct: usize,
    /// Texts still classified correctly after it.
    pub robust_correct: usize,
    /// Successful attacks (originally correct, now wrong).
    pub successes: usize,
    /// `clean_correct / texts`.
    pub clean_accuracy: f64,
    /// `robust_correct / texts`.
    pub accuracy_under_attack: f64,
    /// `successes / clean_correct` (0 when no text was correct).
    pub success_rate: f64,
    /// Mean share of words changed, over the successful attacks (TextAttack's "average
    /// perturbed word %"), in percent.
    pub words_changed_percent: f64,
    /// Mean queries per attacked (originally correct) text.
    pub queries_per_text: f64,
}

impl TextAttackSummary {
    /// The summary of `examples` under `attack`.
    pub fn of(attack: &str, examples: &[TextExample]) -> Self {
        let texts = examples.len();
        let attacked: Vec<&TextExample> = examples.iter().filter(|e| e.clean_correct).collect();
        let successes: Vec<&TextExample> = attacked.iter().copied().filter(|e| e.success).collect();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let words_changed_percent = if successes.is_empty() {
            0.0
        } else {
            100.0
                * successes
                    .iter()
                    .map(|e| ratio(e.words_changed, e.words_total.max(1)))
                    .sum::<f64>()
                / successes.len() as f64
        };
        let queries: usize = attacked.iter().map(|e| e.queries).sum();
        Self {
            attack: attack.to_string(),
            texts,
            clean_correct: attacked.len(),
            robust_correct: attacked.len() - successes.len(),
            successes: successes.len(),
            clean_accuracy: ratio(attacked.len(), texts),
            accuracy_under_attack: ratio(attacked.len() - successes.len(), texts),
            success_rate: ratio(successes.len(), attacked.len()),
            words_changed_percent,
            queries_per_text: ratio(queries, attacked.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(clean_correct: bool, success: bool, changed: usize, queries: usize) -> TextExample {
        TextExample {
            original: "a b c d".into(),
            adversarial: "a b c d".into(),
            label: 0,
            clean_correct,
            success,
            words_changed: changed,
            words_total: 4,
            queries,
            edits: vec![],
        }
    }

    #[test]
    fn summary_counts_like_textattack() {
        let s = TextAttackSummary::of(
            "char",
            &[
                example(true, true, 1, 10),
                example(true, false, 2, 30),
                example(false, false, 0, 0),
                example(true, true, 2, 20),
            ],
        );
        assert_eq!(
            (s.texts, s.clean_correct, s.successes, s.robust_correct),
            (4, 3, 2, 1)
        );
        assert!((s.success_rate - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.accuracy_under_attack - 0.25).abs() < 1e-12);
        assert!((s.words_changed_percent - 37.5).abs() < 1e-9);
        assert!((s.queries_per_text - 20.0).abs() < 1e-12);
    }
}
