//! Dataset readers, splits, scaling and batching for harden.
//!
//! harden-data is the lowest layer of harden. It reads real datasets from disk or from the
//! copies embedded in the crate, validates them with typed errors that name the file and what is
//! wrong, and turns them into burn tensors on any [`Device`](burn::tensor::Device).
//!
//! - [`idx`]: IDX files, gzip or raw (MNIST, Fashion-MNIST), read and written.
//! - [`atomic`]: the temporary-file-then-rename writer every harden output goes through.
//! - [`cifar`]: CIFAR-10 binary batches.
//! - [`crash`]: the points where the kill tests stop harden.
//! - [`csv`]: sklearn-style CSV (`n_samples,n_features,class names...` header) and plain CSV with
//!   a named or last label column.
//! - [`tsv`]: text classification TSV (`label<TAB>text` with a header, extra columns allowed).
//! - [`tokenizer`]: the WordPiece tokenizer of text datasets and padded token batches.
//! - [`spelling`]: word recognition, the correction of misspelled words in front of a text
//!   model.
//! - [`panics`]: a library's panic on bad input turned into an error.
//! - [`embedded`]: the UCI digits and breast-cancer tables compiled into the crate.
//! - [`source`]: the dataset names the `harden` CLI accepts and how each one is loaded.
//! - [`split`] and [`scaler`]: seeded shuffles, stratified splits, min-max scaling fitted on the
//!   training split only.
//! - [`batch`]: batches of samples as tensors, through burn's `Dataset` and `Batcher` traits,
//!   and the one layout rule ([`Layout`]: tables `[N, F]`, images `[N, C, H, W]`).
//!
//! Images are `f32` in `[0, 1]` with shape `[N, C, H, W]`; tabular rows are `f32` with shape
//! `[N, F]`; labels are class indices `0..num_classes`.

pub mod atomic;
pub mod batch;
pub mod cifar;
pub mod crash;
pub mod csv;
mod dataset;
pub mod embedded;
mod error;
pub mod idx;
pub mod names;
pub mod panics;
mod read;
pub mod scaler;
pub mod source;
pub mod spelling;
pub mod split;
pub mod testing;
pub mod tokenizer;
pub mod tsv;

pub use batch::{ArrayBatch, ArrayBatcher, ArrayItem, Batches, Inputs, Layout, RankBatches};
pub use dataset::{ArrayDataset, TextDataset};
pub use error::DataError;
pub use scaler::MinMaxScaler;
pub use source::{DatasetSource, Splits};
pub use tokenizer::{TextTokenizer, TokenBatch};
