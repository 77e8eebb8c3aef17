//! HotFlip (Ebrahimi et al. 2018): token substitutions chosen by the first-order change of the
//! loss. Replacing token `x_i` by `v` changes the loss by about `(e_v - e_{x_i}) . g_i`, with
//! `g_i` the loss gradient at token `i`'s embedding; each step makes the best such replacement
//! at a position not yet changed, for every text of the batch at once.

use burn::tensor::{Bool, Int, Tensor, TensorData};
use serde::Serialize;

use crate::error::{EDITS, ParamError, check_count};
use crate::loss::{cross_entropy, margin};
use crate::text::EmbeddingModel;

/// The HotFlip attack; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotFlip {
    max_flips: usize,
}

/// The outcome of HotFlip on one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Flipped {
    /// The token ids after the attack.
    pub ids: Vec<u32>,
    /// `(position, old id, new id)` per replacement, in order.
    pub flips: Vec<(usize, u32, u32)>,
    /// Whether the original was classified correctly.
    pub clean_correct: bool,
    /// Whether the final ids are misclassified while the original was not.
    pub success: bool,
    /// Forward-and-backward passes spent on this sequence.
    pub queries: usize,
}

fn ids_tensor(
    seqs: &[Vec<u32>],
    device: &burn::tensor::Device,
) -> (Tensor<2, Int>, Tensor<2, Bool>) {
    let n = seqs.len();
    let len = seqs.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let mut ids = vec![0i64; n * len];
    let mut pad = vec![true; n * len];
    for (r, s) in seqs.iter().enumerate() {
        for (c, &t) in s.iter().enumerate() {
            ids[r * len + c] = i64::from(t);
            pad[r * len + c] = false;
        }
    }
    (
        Tensor::from_data(TensorData::new(ids, [n, len]), device),
        Tensor::from_data(TensorData::new(pad, [n, len]), device),
    )
}

impl HotFlip {
    /// Replaces at most `max_flips` tokens per sequence.
    ///
    /// # Errors
    ///
    /// [`ParamError`] naming `max_flips` when 0.
    pub fn new(max_flips: usize) -> Result<Self, ParamError> {
        check_count("max_flips", max_flips, EDITS)?;
        Ok(Self { max_flips })
    }

    /// The budget of replaced tokens per sequence.
    pub fn max_flips(&self) -> usize {
        self.max_flips
    }

    /// Attacks the sequences `seqs` (token ids, no padding) of classes `labels` on `device`;
    /// ids in `forbidden` (padding, unknown) are never inserted.
    ///
    /// # Panics
    ///
    /// Panics when `seqs` and `labels` differ in length or a sequence is empty.
    pub fn attack<M: EmbeddingModel + ?Sized>(
        &self,
        model: &M,
        seqs: &[Vec<u32>],
        labels: &[u32],
        forbidden: &[u32],
        device: &burn::tensor::Device,
    ) -> Vec<Flipped> {
        assert_eq!(seqs.len(), labels.len(), "one label per sequence");
        assert!(seqs.iter().all(|s| !s.is_empty()), "empty sequence");
        let n = seqs.len();
        let labels_t: Tensor<1, Int> = Tensor::from_data(
            TensorData::new(labels.iter().map(|&l| i64::from(l)).collect(), [n]),
            device,
        );
        let table = model.embedding_table().detach().without_autodiff(); // [V, E]
        let [vocab, _] = table.dims();
        let mut penalty = vec![0f32; vocab];
        for &f in forbidden {
            if let Some(p) = penalty.get_mut(f as usize) {
                *p = -1e30;
            }
        }
        let penalty = Tensor::<2>::from_data(TensorData::new(penalty, [1, vocab]), device);
        let mut out: Vec<Flipped> = seqs
            .iter()
            .map(|s| Flipped {
                ids: s.clone(),
                flips: Vec::new(),
                clean_correct: false,
                success: false,
                queries: 0,
            })
            .collect();
        for step in 0..=self.max_flips {
            let current: Vec<Vec<u32>> = out.iter().map(|f| f.ids.clone()).collect();
            let (ids, pad) = ids_tensor(&current, device);
            let [_, len] = ids.dims();
            let emb = model.embed(ids).detach().autodiff().require_grad();
            let logits = model.logits_embedded(emb.clone(), pad);
            let margins: Vec<f32> = margin(logits.clone().detach(), labels_t.clone())
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 margins");
            let mut active = vec![false; n];
            for (i, f) in out.iter_mut().enumerate() {
                if step == 0 {
                    f.clean_correct = margins[i] > 0.0;
                }
                f.success = f.clean_correct && margins[i] <= 0.0;
                active[i] = f.clean_correct && !f.success && f.flips.len() < self.max_flips;
            }
            if step == self.max_flips || !active.iter().any(|&a| a) {
                break;
            }
            let loss = cross_entropy(logits, labels_t.clone()).sum();
            let g = emb
                .grad(&loss.backward())
                .map(crate::attack::zero_non_finite)
                .expect("gradient of the embeddings");
            let width = table.dims()[1];
            let g = g.without_autodiff();
            let flat_g: Tensor<2> = g.clone().reshape([n * len, width]);
            let here: Tensor<2> = (emb.detach().without_autodiff() * g)
                .sum_dim(2)
                .reshape([n * len, 1]);
            let gain = flat_g.matmul(table.clone().transpose()) - here + penalty.clone();
            let (best, best_id) = gain.max_dim_with_indices(1);
            let best: Vec<f32> = best
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 gains");
            let best_id: Vec<i64> = best_id
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .expect("int ids");
            for (i, f) in out.iter_mut().enumerate() {
                f.queries += 1;
                if !active[i] {
                    continue;
                }
                let changed: Vec<usize> = f.flips.iter().map(|&(p, _, _)| p).collect();
                let choice = (0..f.ids.len())
                    .filter(|p| !changed.contains(p))
                    .map(|p| (p, best[i * len + p], best_id[i * len + p] as u32))
                    .filter(|&(p, _, v)| v != f.ids[p])
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                if let Some((p, _, v)) = choice {
                    f.flips.push((p, f.ids[p], v));
                    f.ids[p] = v;
                }
            }
        }
        for f in &mut out {
            f.queries += 1;
        }
        out
    }
}
