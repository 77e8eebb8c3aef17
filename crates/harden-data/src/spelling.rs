//! Word recognition in front of a text classifier (Pruthi et al. 2019, "Combating Adversarial
//! Misspellings with Robust Word Recognition"), with a dictionary in place of their
//! semi-character RNN: a word the training split never used is replaced by the training word one
//! edit away (a deletion, an insertion or a substitution of a letter, or two neighbouring letters
//! swapped) that most often stood beside its neighbours in the training split, the most frequent
//! one among equals; one with no such neighbour is kept or dropped, as the [`Backoff`] says.
//!
//! It undoes a single character edit of a known word unless the edit lands on another known
//! word (`good` -> `god`) or on a word closer to another one. It is part of the model: the
//! character attack queries texts through it, so robustness measured with it is the
//! pipeline's, not the classifier's alone.
//!
//! Written here rather than taken from a crate: the spelling crates on crates.io ship their own
//! English dictionaries, where this one must know exactly the words of the training split.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::DataError;

/// The letters tried by substitutions and insertions.
const LETTERS: &str = "abcdefghijklmnopqrstuvwxyz";

/// Unknown words longer than this (in letters) are kept as they are: no word of a language is
/// that long, and the edits of a word grow with the square of its length.
pub const MAX_WORD: usize = 32;

/// What becomes of a word that is neither known nor one edit from a known word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Backoff {
    /// It is kept as it is, and tokenised into subwords.
    #[default]
    PassThrough,
    /// It is dropped (Pruthi et al.'s neutral backoff): an edit of a word the training split
    /// never used changes nothing, at the cost of the subwords such words carried.
    Neutral,
}

/// The words of a training split with their counts, and the correction they define.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WordRecognizer {
    /// What becomes of unrecognised words.
    #[serde(default)]
    backoff: Backoff,
    /// Each known word (a maximal run of lower-cased letters) and how often it occurred.
    words: HashMap<String, u64>,
    /// Each pair of neighbouring known words, `"first second"`, and how often it occurred.
    #[serde(default)]
    pairs: HashMap<String, u64>,
}

/// The maximal runs of letters of `text`, as byte ranges.
fn letter_runs(text: &str) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphabetic(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, text.len()));
    }
    runs
}

impl WordRecognizer {
    /// The words of `texts` (lower-cased runs of letters) and their neighbouring pairs, with
    /// their counts, within the first `max_len` whitespace-separated words of each text (the
    /// rest is truncated away before tokenisation); `backoff` decides what becomes of the
    /// words it cannot recognise.
    pub fn fit(texts: &[String], backoff: Backoff, max_len: usize) -> Self {
        let mut words: HashMap<String, u64> = HashMap::new();
        let mut pairs: HashMap<String, u64> = HashMap::new();
        for text in texts {
            let text = crate::tokenizer::first_words(text, max_len.max(1));
            let mut previous: Option<String> = None;
            for (s, e) in letter_runs(text) {
                let word = text[s..e].to_lowercase();
                *words.entry(word.clone()).or_default() += 1;
                if let Some(p) = previous {
                    *pairs.entry(format!("{p} {word}")).or_default() += 1;
                }
                previous = Some(word);
            }
        }
        Self {
            backoff,
            words,
            pairs,
        }
    }

    /// What becomes of unrecognised words.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Number of known words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether no word is known (then nothing is corrected).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// How often `word` (lower-cased) occurred in the training split.
    pub fn count(&self, word: &str) -> u64 {
        self.words.get(word).copied().unwrap_or(0)
    }

    /// The known word `word` (lower case) stands for: itself when known, else the most frequent
    /// known word one edit away (ties to the alphabetically first), else `None` (also for a
    /// word of more than [`MAX_WORD`] letters).
    pub fn recognize(&self, word: &str) -> Option<String> {
        self.recognize_between(word, None, None)
    }

    /// [`recognize`](Self::recognize) in context: among the known words one edit away, the
    /// one most often seen after `previous` and before `next` (lower case) in the training
    /// split wins, then the most frequent (`does ot work` reads `does not work`, where the
    /// word alone reads `to`).
    pub fn recognize_between(
        &self,
        word: &str,
        previous: Option<&str>,
        next: Option<&str>,
    ) -> Option<String> {
        if self.words.contains_key(word) {
            return Some(word.to_string());
        }
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > MAX_WORD {
            return None;
        }
        let pair = |a: &str, b: &str| self.pairs.get(&format!("{a} {b}")).copied().unwrap_or(0);
        // Ranked by (times seen in this context, times seen), then alphabetically.
        let mut best: Option<((u64, u64), String)> = None;
        let mut consider = |candidate: Vec<char>| {
            let candidate: String = candidate.into_iter().collect();
            if let Some(&n) = self.words.get(&candidate) {
                let context = previous.map_or(0, |p| pair(p, &candidate))
                    + next.map_or(0, |x| pair(&candidate, x));
                let score = (context, n);
                let better = match &best {
                    None => true,
                    Some((m, w)) => score > *m || (score == *m && candidate < *w),
                };
                if better {
                    best = Some((score, candidate));
                }
            }
        };
        for i in 0..chars.len() {
            let mut v = chars.clone();
            v.remove(i);
            consider(v);
            if i + 1 < chars.len() {
                let mut v = chars.clone();
                v.swap(i, i + 1);
                consider(v);
            }
            for letter in LETTERS.chars() {
                if letter != chars[i] {
                    let mut v = chars.clone();
                    v[i] = letter;
                    consider(v);
                }
            }
        }
        for i in 0..=chars.len() {
            for letter in LETTERS.chars() {
                let mut v = chars.clone();
                v.insert(i, letter);
                consider(v);
            }
        }
        best.map(|(_, w)| w)
    }

    /// `text` with each unknown word replaced by the word it stands for (lower-cased); the
    /// text itself when every word is known or has no known neighbour. Everything but the
    /// replaced words (spacing, digits, punctuation) is kept.
    pub fn correct<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out: Option<String> = None;
        let mut copied = 0;
        let runs = letter_runs(text);
        let lower: Vec<String> = runs
            .iter()
            .map(|&(s, e)| text[s..e].to_lowercase())
            .collect();
        for (i, &(s, e)) in runs.iter().enumerate() {
            let word = &lower[i];
            if self.words.contains_key(word) {
                continue;
            }
            let previous = i.checked_sub(1).map(|j| lower[j].as_str());
            let next = lower.get(i + 1).map(String::as_str);
            let replacement = match (self.recognize_between(word, previous, next), self.backoff) {
                (Some(known), _) => known,
                (None, Backoff::Neutral) => String::new(),
                (None, Backoff::PassThrough) => continue,
            };
            let o = out.get_or_insert_with(String::new);
            o.push_str(&text[copied..s]);
            o.push_str(&replacement);
            copied = e;
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut o) => {
                o.push_str(&text[copied..]);
                Cow::Owned(o)
            }
        }
    }

    /// Reads a word list written by [`save`](Self::save).
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] when `path` cannot be read, [`DataError::Format`] naming it when it
    /// is not such a list (or a count is 0, or a word is not lower-case letters).
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let format = |message: String| DataError::format(path, message);
        let words: Self = serde_json::from_slice(&bytes)
            .map_err(|e| format(format!("not a word list ({{\"backoff\": \"pass-through\" or \"neutral\", \"words\": {{word: count}}, \"pairs\": {{\"word word\": count}}}}): {e}")))?;
        let is_word =
            |w: &str| !w.is_empty() && w.to_lowercase() == w && w.chars().all(char::is_alphabetic);
        if let Some((word, count)) = words.words.iter().find(|(w, n)| **n == 0 || !is_word(w)) {
            return Err(format(format!(
                "the entry {word:?}: {count} of \"words\" is not a lower-case word with a positive count"
            )));
        }
        let is_pair = |p: &str| {
            p.split_once(' ')
                .is_some_and(|(a, b)| is_word(a) && is_word(b))
        };
        if let Some((pair, count)) = words.pairs.iter().find(|(p, n)| **n == 0 || !is_pair(p)) {
            return Err(format(format!(
                "the entry {pair:?}: {count} of \"pairs\" is not two lower-case words with a positive count"
            )));
        }
        Ok(words)
    }

    /// Writes the word list as JSON to `path`, atomically.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        // Sorted, so that a run writes the same bytes every time.
        let sorted = |m: &HashMap<String, u64>| -> std::collections::BTreeMap<String, u64> {
            m.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        let json = serde_json::to_vec(&serde_json::json!({
            "backoff": self.backoff,
            "words": sorted(&self.words),
            "pairs": sorted(&self.pairs),
        }))
        .expect("a map of strings to numbers serialises");
        crate::atomic::write_bytes(path, &json).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recognizer() -> WordRecognizer {
        WordRecognizer::fit(
            &[
                "The movie was good, a good good film.".to_string(),
                "The food was awful; the god of food.".to_string(),
            ],
            Backoff::PassThrough,
            100,
        )
    }

    #[test]
    fn every_single_edit_of_a_known_word_is_undone_unless_it_is_another_word() {
        let r = recognizer();
        for typo in ["goood", "ogod", "gxod", "goo", "godo"] {
            assert_eq!(r.recognize(typo).as_deref(), Some("good"), "{typo}");
        }
        // A deletion that lands on a known word stays that word.
        assert_eq!(r.recognize("god").as_deref(), Some("god"));
        assert_eq!(r.recognize("qqqq"), None);
        assert_eq!(r.recognize(&"good".repeat(20)), None);
    }

    #[test]
    fn correct_replaces_unknown_words_and_keeps_everything_else() {
        let r = recognizer();
        assert_eq!(
            r.correct("The  mvoie was aweful!! 42"),
            "The  movie was awful!! 42"
        );
        assert!(matches!(r.correct("the food was good"), Cow::Borrowed(_)));
        assert_eq!(r.correct("zzzz xyzzy"), "zzzz xyzzy");
        assert_eq!(r.correct(""), "");
        assert_eq!(r.correct("FOOD Fodo"), "FOOD food");
    }

    #[test]
    fn the_neighbouring_words_choose_between_corrections() {
        let r = WordRecognizer::fit(
            &[
                "it does not work".to_string(),
                "go to the shop, to the park, to work".to_string(),
            ],
            Backoff::PassThrough,
            100,
        );
        // `ot` is one edit from `to` (more frequent) and from `not` (seen after `does`).
        assert_eq!(r.recognize("ot").as_deref(), Some("to"));
        assert_eq!(r.correct("It does ot work"), "It does not work");
        assert_eq!(r.correct("go ot the park"), "go to the park");
        // Words past the truncation length are not counted.
        let short = WordRecognizer::fit(&["it does not work".to_string()], Backoff::Neutral, 2);
        assert_eq!((short.count("does"), short.count("not")), (1, 0));
    }

    #[test]
    fn neutral_backoff_drops_the_words_it_cannot_recognise() {
        let r = WordRecognizer {
            backoff: Backoff::Neutral,
            ..recognizer()
        };
        assert_eq!(r.correct("a gxod zzzz film, xyzzy!"), "a good  film, !");
        assert_eq!(r.correct(&"q".repeat(40)), "");
        assert!(matches!(r.correct("the food was good"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_word_list_round_trips_and_bad_lists_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("words.json");
        for backoff in [Backoff::PassThrough, Backoff::Neutral] {
            let r = WordRecognizer {
                backoff,
                ..recognizer()
            };
            r.save(&path).unwrap();
            assert_eq!(WordRecognizer::load(&path).unwrap(), r);
        }
        // A list without a backoff passes unknown words through.
        std::fs::write(&path, "{\"words\": {\"good\": 2}}").unwrap();
        assert_eq!(
            WordRecognizer::load(&path).unwrap().backoff(),
            Backoff::PassThrough
        );
        for bad in [
            "[]",
            "{\"words\": {\"good\": 0}}",
            "{\"words\": {\"Good\": 3}}",
            "{\"words\": {\"a b\": 3}}",
            "{\"words\": {}, \"extra\": 1}",
            "{\"words\": {}, \"backoff\": \"guess\"}",
            "{\"words\": {}, \"pairs\": {\"good\": 2}}",
            "{\"words\": {}, \"pairs\": {\"a  b\": 2}}",
            "{\"words\": {}, \"pairs\": {\"a b\": 0}}",
        ] {
            std::fs::write(&path, bad).unwrap();
            let e = WordRecognizer::load(&path).unwrap_err().to_string();
            assert!(e.contains("words.json"), "{bad}: {e}");
        }
    }
}
