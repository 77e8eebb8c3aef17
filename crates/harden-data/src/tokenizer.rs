//! The subword tokenizer of text datasets: WordPiece from HF `tokenizers`, trained on the
//! training split only and saved as a `tokenizer.json` that Python's `tokenizers` loads as is.
//!
//! Texts are lower-cased and split on whitespace and punctuation (BERT's normaliser and
//! pre-tokenizer), then into WordPiece subwords. Id 0 is `[PAD]`, id 1 is `[UNK]`; no other
//! special token is added, and the classifiers pool over the tokens themselves.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{AddedToken, NormalizedString, Normalizer, Tokenizer};

use crate::DataError;
use crate::spelling::WordRecognizer;

/// The padding token, id [`PAD_ID`].
pub const PAD: &str = "[PAD]";
/// The unknown-token token, id [`UNK_ID`].
pub const UNK: &str = "[UNK]";
/// Id of [`PAD`].
pub const PAD_ID: u32 = 0;
/// Id of [`UNK`].
pub const UNK_ID: u32 = 1;
/// The smallest vocabulary accepted: the special tokens and a useful alphabet.
pub const MIN_VOCAB: usize = 64;
/// The largest vocabulary accepted.
pub const MAX_VOCAB: usize = 1 << 20;

/// A trained WordPiece tokenizer, with an optional [`WordRecognizer`] that corrects each text
/// before it is tokenised.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    recognizer: Option<Arc<WordRecognizer>>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("recognizer", &self.recognizer.as_ref().map(|r| r.len()))
            .finish()
    }
}

/// A tokenizer of BERT's normaliser, pre-tokenizer and decoder around the WordPiece `model`,
/// with [PAD] and [UNK] as its special tokens.
fn bert_pipeline(model: impl Into<ModelWrapper>) -> Tokenizer {
    let mut inner = Tokenizer::new(model);
    inner
        .with_normalizer(Some(BertNormalizer::default()))
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_decoder(Some(WordPieceDecoder::default()));
    inner.add_special_tokens(&[AddedToken::from(PAD, true), AddedToken::from(UNK, true)]);
    inner
}

fn tokenizer_error(what: &str, e: impl std::fmt::Display) -> DataError {
    DataError::InvalidArgument {
        what: "tokenizer",
        message: format!("{what}: {e}"),
    }
}

impl TextTokenizer {
    /// Trains a WordPiece vocabulary of at most `vocab_size` tokens (special tokens included) on
    /// `texts`; subwords seen fewer than twice are left out.
    ///
    /// # Errors
    ///
    /// [`DataError::InvalidArgument`] when `vocab_size` is outside
    /// [`MIN_VOCAB`]`..=`[`MAX_VOCAB`], `texts` is empty, or training fails.
    pub fn train(texts: &[String], vocab_size: usize) -> Result<Self, DataError> {
        if !(MIN_VOCAB..=MAX_VOCAB).contains(&vocab_size) {
            return Err(DataError::InvalidArgument {
                what: "vocabulary size",
                message: format!("expected {MIN_VOCAB} to {MAX_VOCAB}, got {vocab_size}"),
            });
        }
        if texts.is_empty() {
            return Err(DataError::InvalidArgument {
                what: "tokenizer",
                message: "no training texts".to_string(),
            });
        }
        // HF's trainer numbers the continuing-subword tokens (`##e`) in the order it meets them
        // while iterating a hash map, and breaks ties between merges by those numbers, so two
        // trainings on the same texts can learn different vocabularies (huggingface/tokenizers
        // issue 1794). Handing it every `##c` of the alphabet up front, as special tokens in
        // sorted order, fixes their numbers and with them every tie; the tokenizer is then
        // rebuilt from the learned vocabulary with only [PAD] and [UNK] as special tokens.
        let normalizer = BertNormalizer::default();
        let mut alphabet = std::collections::BTreeSet::new();
        for text in texts {
            let mut n = NormalizedString::from(text.as_str());
            normalizer
                .normalize(&mut n)
                .map_err(|e| tokenizer_error("normalising", e))?;
            alphabet.extend(n.get().chars().filter(|c| !c.is_whitespace()));
        }
        let specials: Vec<AddedToken> = [PAD.to_string(), UNK.to_string()]
            .into_iter()
            .chain(alphabet.iter().map(|c| format!("##{c}")))
            .map(|t| AddedToken::from(t, true))
            .collect();
        let mut trainer: TrainerWrapper = WordPieceTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(specials)
            .build()
            .into();
        let mut trained = bert_pipeline(
            WordPiece::builder()
                .unk_token(UNK.to_string())
                .build()
                .map_err(|e| tokenizer_error("WordPiece model", e))?,
        );
        trained
            .train(&mut trainer, texts.iter())
            .map_err(|e| tokenizer_error("training", e))?;
        let inner = bert_pipeline(trained.get_model().clone());
        let tokenizer = Self {
            inner,
            recognizer: None,
        };
        debug_assert_eq!(tokenizer.inner.token_to_id(PAD), Some(PAD_ID));
        Ok(tokenizer)
    }

    /// Reads a `tokenizer.json` written by [`save`](Self::save) (or by HF `tokenizers`, if it
    /// has `[PAD]` = 0 and `[UNK]` = 1).
    ///
    /// # Errors
    ///
    /// [`DataError::Format`] naming `path` when the file cannot be read or parsed, lacks the
    /// special tokens at their ids, or numbers its tokens with gaps.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let format = |message: String| DataError::format(path, message);
        // HF tokenizers panics (an `expect`) on some malformed decoder sections instead of
        // returning its error.
        let inner = crate::panics::catch_quietly(|| Tokenizer::from_file(path))
            .map_err(|e| format(format!("not a readable tokenizer.json: {e}")))?
            .map_err(|e| format(format!("not a readable tokenizer.json: {e}")))?;
        for (token, id) in [(PAD, PAD_ID), (UNK, UNK_ID)] {
            if inner.token_to_id(token) != Some(id) {
                return Err(format(format!("expected the token {token} at id {id}")));
            }
        }
        // Ids numbered 0..n without gaps, so `vocab_size` bounds every id a text encodes to
        // (an id past a model's embedding table would panic in the lookup).
        let vocab = inner.get_vocab(true);
        if let Some((token, id)) = vocab.iter().find(|(_, id)| **id as usize >= vocab.len()) {
            return Err(format(format!(
                "the token {token:?} has id {id}, outside 0..{}: ids must run from 0 without gaps",
                vocab.len()
            )));
        }
        Ok(Self {
            inner,
            recognizer: None,
        })
    }

    /// Writes the tokenizer as JSON to `path`, atomically.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| tokenizer_error("serialising", e))?;
        crate::atomic::write_bytes(path, json.as_bytes()).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Number of tokens, special tokens included; ids are `0..vocab_size()`.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// This tokenizer correcting every text with `recognizer` before tokenising it (`None`:
    /// tokenising texts as they are). The word list is not part of `tokenizer.json`: save it
    /// beside it.
    pub fn with_recognizer(mut self, recognizer: Option<WordRecognizer>) -> Self {
        self.recognizer = recognizer.map(Arc::new);
        self
    }

    /// The word recognizer in front of the tokenizer, if any.
    pub fn recognizer(&self) -> Option<&WordRecognizer> {
        self.recognizer.as_deref()
    }

    /// The token ids of `text` (corrected first when the tokenizer has a recognizer), at most
    /// `max_len` of them (at least 1: a text with no token becomes `[UNK]`).
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        // Only what can reach the first `max_len` tokens is tokenised, so memory follows the
        // truncation, not the text (long e-mails, a megabyte without a space).
        let text = bounded(text, max_len.max(1));
        let text = match &self.recognizer {
            Some(r) => std::borrow::Cow::Owned(r.correct(&text).into_owned()),
            None => text,
        };
        let text: &str = &text;
        let mut ids = match self.inner.encode(text, false) {
            Ok(e) => e.get_ids().to_vec(),
            // The WordPiece model cannot fail on a string; an unexpected failure reads as
            // unknown rather than aborting an attack midway.
            Err(_) => vec![UNK_ID],
        };
        ids.truncate(max_len.max(1));
        if ids.is_empty() {
            ids.push(UNK_ID);
        }
        ids
    }

    /// The text of `ids` (subwords joined, special tokens dropped).
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }

    /// The token of `id`, if any.
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

/// Characters of a whitespace-separated word read at most. WordPiece reads a word of more than
/// 100 characters (after BERT's normaliser) as `[UNK]`, and one that punctuation splits yields a
/// token every few characters, so the first 400 give the word's first tokens unless more than
/// 300 of them are characters the normaliser drops.
pub const MAX_WORD_CHARS: usize = 400;

/// What of `text` can reach its first `n` tokens: its first `n` whitespace-separated words
/// (each is at least one token), each cut to [`MAX_WORD_CHARS`] characters. Borrowed when
/// no word is cut.
pub(crate) fn bounded(text: &str, n: usize) -> std::borrow::Cow<'_, str> {
    let prefix = first_words(text, n);
    let long = |w: &str| w.chars().nth(MAX_WORD_CHARS).is_some();
    if !prefix.split_whitespace().any(long) {
        return std::borrow::Cow::Borrowed(prefix);
    }
    let mut out = String::new();
    let mut run = 0;
    for c in prefix.chars() {
        if c.is_whitespace() {
            run = 0;
            out.push(c);
        } else {
            run += 1;
            if run <= MAX_WORD_CHARS {
                out.push(c);
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The prefix of `text` that ends with its `n`-th whitespace-separated word.
pub(crate) fn first_words(text: &str, n: usize) -> &str {
    let mut words = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word && words == n {
                return &text[..i];
            }
            in_word = false;
        } else if !in_word {
            in_word = true;
            words += 1;
        }
    }
    text
}

/// Token sequences padded to the longest one, as tensors.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// Token ids `[N, L]`, [`PAD_ID`] after each sequence's end.
    pub ids: Tensor<2, Int>,
    /// `[N, L]`, `true` at padding (burn's `mask_pad` convention).
    pub pad: Tensor<2, Bool>,
}

impl TokenBatch {
    /// Pads `sequences` with [`PAD_ID`] to the longest one (at least 1 token) on `device`.
    pub fn new(sequences: &[Vec<u32>], device: &Device) -> Self {
        let n = sequences.len();
        let len = sequences.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut ids = vec![i64::from(PAD_ID); n * len];
        let mut pad = vec![true; n * len];
        for (row, seq) in sequences.iter().enumerate() {
            for (col, &id) in seq.iter().enumerate() {
                ids[row * len + col] = i64::from(id);
                pad[row * len + col] = false;
            }
        }
        Self {
            ids: Tensor::from_data(TensorData::new(ids, [n, len]), device),
            pad: Tensor::from_data(TensorData::new(pad, [n, len]), device),
        }
    }

    /// Number of sequences `N`.
    pub fn len(&self) -> usize {
        self.ids.dims()[0]
    }

    /// Whether the batch holds no sequence.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        [
            "the movie was great and the acting was great",
            "the food was terrible and the service was terrible",
            "great value, great case",
            "terrible battery, terrible phone",
            "I loved the movie",
            "I hated the food",
        ]
        .iter()
        .cycle()
        .take(60)
        .map(|s| s.to_string())
        .collect()
    }

    /// Each training builds its own hash maps with their own random order; the vocabulary
    /// must not depend on it.
    #[test]
    fn training_twice_on_the_same_texts_learns_the_same_vocabulary() {
        let texts: Vec<String> = corpus()
            .into_iter()
            .chain(["zebra zealous zigzag quiz", "jazz fizz buzz", "ok ox oy"].map(String::from))
            .collect();
        for vocab in [80, 100, 300] {
            let first = TextTokenizer::train(&texts, vocab).unwrap();
            let json = |t: &TextTokenizer| t.inner.to_string(false).unwrap();
            for _ in 0..8 {
                let again = TextTokenizer::train(&texts, vocab).unwrap();
                assert_eq!(json(&again), json(&first), "vocabulary {vocab}");
            }
            // Only [PAD] and [UNK] are special: `##e` in a text is text.
            let ids = first.encode("##e", 8);
            assert!(ids.len() > 1, "{ids:?}");
        }
    }

    #[test]
    fn round_trip_through_a_file_gives_the_same_ids() {
        let tok = TextTokenizer::train(&corpus(), 100).unwrap();
        assert!(tok.vocab_size() <= 100 && tok.vocab_size() > 10);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        tok.save(&path).unwrap();
        let again = TextTokenizer::load(&path).unwrap();
        let text = "The acting was GREAT, the food terrible";
        let ids = tok.encode(text, 64);
        assert_eq!(ids, again.encode(text, 64));
        assert_eq!(tok.decode(&ids), "the acting was great, the food terrible");
        assert!(!ids.contains(&UNK_ID));
    }

    #[test]
    fn unseen_words_become_subwords_or_unknown_and_are_truncated() {
        let tok = TextTokenizer::train(&corpus(), 100).unwrap();
        let ids = tok.encode("greatness zzzqqq ☃", 64);
        assert!(!ids.is_empty());
        assert!(ids.iter().all(|&i| (i as usize) < tok.vocab_size()));
        assert!(ids.contains(&UNK_ID), "{ids:?}");
        assert_eq!(tok.encode("great great great great", 2).len(), 2);
        assert_eq!(tok.encode("   ", 8), vec![UNK_ID]);
    }

    #[test]
    fn only_the_words_that_can_fit_are_tokenised() {
        assert_eq!(first_words("a bb  ccc d", 2), "a bb");
        assert_eq!(first_words("  a b", 1), "  a");
        assert_eq!(first_words("a b", 5), "a b");
        assert_eq!(first_words("", 3), "");
        let tok = TextTokenizer::train(&corpus(), 100).unwrap();
        let long = "the movie was great and the acting was great ".repeat(50);
        let all = tok.inner.encode(long.as_str(), false).unwrap();
        assert_eq!(tok.encode(&long, 7), all.get_ids()[..7].to_vec());

        // Words without spaces: one long run of letters, punctuation every other character,
        // both behind ordinary words. What is tokenised stays within the truncation, and the
        // tokens are those of the whole text.
        let mb = 1 << 20;
        for text in [
            format!("great {} movie", "a".repeat(mb)),
            format!("{} acting", "a,".repeat(mb / 2)),
            format!("the {}", "é".repeat(mb / 2)),
            "x".repeat(mb),
        ] {
            for n in [1, 3, 64] {
                let cut = bounded(&text, n);
                assert!(
                    cut.len() <= n * (4 * MAX_WORD_CHARS + 8),
                    "{} bytes",
                    cut.len()
                );
                let all = tok.inner.encode(text.as_str(), false).unwrap();
                let want: Vec<u32> = all.get_ids().iter().copied().take(n).collect();
                assert_eq!(
                    tok.encode(&text, n),
                    want,
                    "{n} tokens of {:?}",
                    &text[..20]
                );
            }
        }
    }

    #[test]
    fn bad_sizes_and_files_are_refused() {
        assert!(TextTokenizer::train(&corpus(), 10).is_err());
        assert!(TextTokenizer::train(&[], 100).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = TextTokenizer::load(&path).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json"), "{err}");

        // A token moved past the end of the vocabulary (in the model's vocabulary, in the
        // added tokens, or both): its id would index past a model's embedding table.
        let tok = TextTokenizer::train(&corpus(), 100).unwrap();
        tok.save(&path).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["model"]["vocab"]["the"] = serde_json::json!(5000);
        std::fs::write(&path, json.to_string()).unwrap();
        let err = TextTokenizer::load(&path).unwrap_err().to_string();
        assert!(err.contains("\"the\" has id 5000, outside 0.."), "{err}");
    }

    #[test]
    fn batches_are_padded_to_the_longest_sequence() {
        let b = TokenBatch::new(&[vec![5, 6, 7], vec![8]], &Device::flex());
        assert_eq!(b.ids.dims(), [2, 3]);
        let pad: Vec<bool> = b.pad.into_data().try_to_vec::<bool>().unwrap();
        assert_eq!(pad, vec![false, false, false, false, true, true]);
    }
}
