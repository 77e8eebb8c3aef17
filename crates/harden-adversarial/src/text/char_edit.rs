//! The character-level attack of DeepWordBug (Gao et al. 2018), in TextAttack's greedy form:
//! rank words by the leave-one-out change of the true-class margin, then, most important first,
//! replace each word by its worst character edit (adjacent swap, substitution, deletion,
//! insertion), re-tokenising every candidate, until the prediction changes or the budget of
//! edited words is spent. Black-box: only logits of texts are used, and every one is counted.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::AttackRng;
use crate::error::{EDITS, ParamError, check_count};
use crate::text::{TextExample, TextOracle, text_margin};

/// One kind of character edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CharEdit {
    /// Two neighbouring characters exchanged.
    Swap,
    /// One character replaced by a random letter.
    Substitute,
    /// One character removed.
    Delete,
    /// A random letter inserted.
    Insert,
}

/// The DeepWordBug attack; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CharAttack {
    max_words: usize,
    candidates_per_word: usize,
    word_limit: Option<usize>,
}

/// A text as words and the whitespace around them, so an edited text keeps its spacing.
#[derive(Debug, Clone)]
struct Words {
    words: Vec<String>,
    /// `gaps[i]` precedes `words[i]`; the last gap follows the last word.
    gaps: Vec<String>,
}

impl Words {
    fn split(text: &str) -> Self {
        let mut words = Vec::new();
        let mut gaps = vec![String::new()];
        let mut current = String::new();
        for c in text.chars() {
            if c.is_whitespace() {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                    gaps.push(String::new());
                }
                gaps.last_mut().expect("one gap").push(c);
            } else {
                current.push(c);
            }
        }
        if !current.is_empty() {
            words.push(current);
            gaps.push(String::new());
        }
        Self { words, gaps }
    }

    /// The text with word `i` replaced by `with` (`None`: the text itself).
    fn join_with(&self, replace: Option<(usize, &str)>) -> String {
        let mut out = String::new();
        for (i, word) in self.words.iter().enumerate() {
            out.push_str(&self.gaps[i]);
            match replace {
                Some((j, with)) if j == i => out.push_str(with),
                _ => out.push_str(word),
            }
        }
        out.push_str(self.gaps.last().expect("one gap"));
        out
    }
}

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

fn random_letter(rng: &mut AttackRng) -> char {
    LETTERS[rng.inner().random_range(0..LETTERS.len())] as char
}

impl CharAttack {
    /// Edits at most `max_words` words per text, trying at most `candidates_per_word` edits
    /// of each (all swaps and deletions of a short word, plus random substitutions and
    /// insertions, sampled down to that many).
    ///
    /// # Errors
    ///
    /// [`ParamError`] naming `max_words` or `candidates_per_word` when 0.
    pub fn new(max_words: usize, candidates_per_word: usize) -> Result<Self, ParamError> {
        check_count("max_words", max_words, EDITS)?;
        check_count("candidates_per_word", candidates_per_word, EDITS)?;
        Ok(Self {
            max_words,
            candidates_per_word,
            word_limit: None,
        })
    }

    /// Considers only the first `words` words of each text: those a model truncating at
    /// `words` tokens can see (a word is at least one token), so no query is spent on the rest.
    pub fn with_word_limit(mut self, words: usize) -> Self {
        self.word_limit = Some(words);
        self
    }

    /// The budget of edited words per text.
    pub fn max_words(&self) -> usize {
        self.max_words
    }

    /// The edited versions of `word` to try.
    pub fn candidates(&self, word: &str, rng: &mut AttackRng) -> Vec<String> {
        let chars: Vec<char> = word.chars().collect();
        let n = chars.len();
        let mut out: Vec<String> = Vec::new();
        let mut push = |v: Vec<char>| {
            let s: String = v.into_iter().collect();
            if s != word && !s.is_empty() && !out.contains(&s) {
                out.push(s);
            }
        };
        for j in 0..n.saturating_sub(1) {
            let mut v = chars.clone();
            v.swap(j, j + 1);
            push(v);
        }
        if n > 1 {
            for j in 0..n {
                let mut v = chars.clone();
                v.remove(j);
                push(v);
            }
        }
        for _ in 0..4 {
            let mut v = chars.clone();
            let j = rng.inner().random_range(0..n);
            v[j] = random_letter(rng);
            push(v);
            let mut v = chars.clone();
            let j = rng.inner().random_range(0..=n);
            v.insert(j, random_letter(rng));
            push(v);
        }
        if out.len() > self.candidates_per_word {
            out.shuffle(rng.inner());
            out.truncate(self.candidates_per_word);
        }
        out
    }

    /// Attacks `text` of class `label`; `rng` draws the random edits.
    pub fn attack(
        &self,
        oracle: &dyn TextOracle,
        text: &str,
        label: u32,
        rng: &mut AttackRng,
    ) -> TextExample {
        let words = Words::split(text);
        let mut example = TextExample {
            original: text.to_string(),
            adversarial: text.to_string(),
            label,
            clean_correct: false,
            success: false,
            words_changed: 0,
            words_total: words.words.len(),
            queries: 1,
            edits: Vec::new(),
        };
        let base = text_margin(&oracle.logits(&[text.to_string()])[0], label);
        if base <= 0.0 {
            return example;
        }
        example.clean_correct = true;
        // Leave-one-out importance of each word that has a letter or digit to edit.
        let seen = self.word_limit.unwrap_or(usize::MAX).min(words.words.len());
        let editable: Vec<usize> = (0..seen)
            .filter(|&i| words.words[i].chars().any(char::is_alphanumeric))
            .collect();
        if editable.is_empty() {
            return example;
        }
        let without: Vec<String> = editable
            .iter()
            .map(|&i| words.join_with(Some((i, ""))))
            .collect();
        example.queries += without.len();
        let mut ranked: Vec<(usize, f32)> = editable
            .iter()
            .zip(oracle.logits(&without))
            .map(|(&i, logits)| (i, base - text_margin(&logits, label)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));

        let mut current = words;
        let mut margin = base;
        for (i, _) in ranked {
            if example.words_changed == self.max_words {
                break;
            }
            let candidates = self.candidates(&current.words[i], rng);
            if candidates.is_empty() {
                continue;
            }
            let texts: Vec<String> = candidates
                .iter()
                .map(|c| current.join_with(Some((i, c))))
                .collect();
            example.queries += texts.len();
            let (best, best_margin) = oracle
                .logits(&texts)
                .iter()
                .map(|l| text_margin(l, label))
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("at least one candidate");
            if best_margin >= margin {
                continue;
            }
            let from = std::mem::replace(&mut current.words[i], candidates[best].clone());
            example.edits.push((from, candidates[best].clone()));
            example.words_changed += 1;
            margin = best_margin;
            if margin <= 0.0 {
                example.success = true;
                break;
            }
        }
        example.adversarial = current.join_with(None);
        example
    }

    /// The transfer attack: edits crafted against `surrogate` (as [`attack`](Self::attack)
    /// does), judged on `target`. `clean_correct` and `success` are the target's: it classified
    /// `text` as `label` and does not classify the edited text so. `queries` counts the
    /// surrogate's; the target is asked twice.
    pub fn transfer(
        &self,
        target: &dyn TextOracle,
        surrogate: &dyn TextOracle,
        text: &str,
        label: u32,
        rng: &mut AttackRng,
    ) -> TextExample {
        let mut example = self.attack(surrogate, text, label, rng);
        let logits = target.logits(&[example.original.clone(), example.adversarial.clone()]);
        example.clean_correct = text_margin(&logits[0], label) > 0.0;
        example.success = example.clean_correct && text_margin(&logits[1], label) <= 0.0;
        example
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyword classifier: class 1 while "good" or "great" appears, by a margin of their
    /// count.
    struct Keywords;

    impl TextOracle for Keywords {
        fn logits(&self, texts: &[String]) -> Vec<Vec<f32>> {
            texts
                .iter()
                .map(|t| {
                    let hits = t
                        .split_whitespace()
                        .filter(|w| *w == "good" || *w == "great")
                        .count() as f32;
                    vec![0.5, hits]
                })
                .collect()
        }
    }

    #[test]
    fn words_and_spacing_survive_a_round_trip() {
        for text in ["a  b\tc ", " lead", "one", "", "x\n\ny"] {
            assert_eq!(Words::split(text).join_with(None), text);
        }
        let w = Words::split("a  b c");
        assert_eq!(w.join_with(Some((1, "z"))), "a  z c");
    }

    #[test]
    fn edits_the_important_words_within_the_budget() {
        let attack = CharAttack::new(2, 8).unwrap();
        let mut rng = AttackRng::new(1);
        let ex = attack.attack(&Keywords, "a good and great day", 1, &mut rng);
        assert!(ex.clean_correct && ex.success, "{ex:?}");
        assert_eq!(ex.words_changed, 2);
        assert_eq!(ex.edits.len(), 2);
        let froms: Vec<&str> = ex.edits.iter().map(|(f, _)| f.as_str()).collect();
        assert!(
            froms.contains(&"good") && froms.contains(&"great"),
            "{froms:?}"
        );
        assert!(
            !ex.adversarial
                .split_whitespace()
                .any(|w| w == "good" || w == "great"),
            "{ex:?}"
        );
        assert_eq!(ex.adversarial.split_whitespace().count(), 5);
        // Budget one word: two keywords cannot both be broken.
        let one = CharAttack::new(1, 8).unwrap();
        let ex = one.attack(&Keywords, "a good and great day", 1, &mut rng);
        assert!(!ex.success && ex.words_changed == 1, "{ex:?}");
    }

    /// Class 1 while "good" appears, whatever else does.
    struct OnlyGood;

    impl TextOracle for OnlyGood {
        fn logits(&self, texts: &[String]) -> Vec<Vec<f32>> {
            let good = |t: &String| t.split_whitespace().any(|w| w == "good");
            texts
                .iter()
                .map(|t| vec![0.5, f32::from(good(t))])
                .collect()
        }
    }

    #[test]
    fn transferred_edits_are_judged_on_the_target() {
        let attack = CharAttack::new(1, 8).unwrap();
        let mut rng = AttackRng::new(2);
        // Crafted on the keyword model, the one edit breaks "good": the target falls too.
        let ex = attack.transfer(&OnlyGood, &Keywords, "a good day", 1, &mut rng);
        assert!(ex.clean_correct && ex.success, "{ex:?}");
        // Crafted on a model that reads "good" alone, the edit leaves the target its "great".
        let ex = attack.transfer(&Keywords, &OnlyGood, "a good and great day", 1, &mut rng);
        assert!(
            ex.clean_correct && !ex.success && ex.words_changed == 1,
            "{ex:?}"
        );
        // A text the target gets wrong counts as neither correct nor broken.
        let ex = attack.transfer(&OnlyGood, &Keywords, "a great day", 1, &mut rng);
        assert!(!ex.clean_correct && !ex.success, "{ex:?}");
    }

    #[test]
    fn misclassified_texts_are_skipped() {
        let attack = CharAttack::new(3, 8).unwrap();
        let ex = attack.attack(&Keywords, "a bad day", 1, &mut AttackRng::new(0));
        assert!(!ex.clean_correct && !ex.success && ex.queries == 1);
        assert_eq!(ex.adversarial, "a bad day");
    }

    #[test]
    fn candidates_differ_from_the_word_by_one_edit() {
        let attack = CharAttack::new(1, 100).unwrap();
        let mut rng = AttackRng::new(3);
        let c = attack.candidates("great", &mut rng);
        assert!(c.contains(&"rgeat".to_string()) && c.contains(&"gret".to_string()));
        for w in &c {
            assert_ne!(w, "great");
            assert!((w.chars().count() as i64 - 5).abs() <= 1);
        }
        assert!(CharAttack::new(0, 1).is_err());
    }
}
