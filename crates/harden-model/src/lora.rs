//! Low-rank adapters (LoRA, Hu et al. 2022) on any burn module, through burn's own
//! [`Lora`] reparameterisation.
//!
//! [`attach`] freezes every weight of a module and adds trainable factors `a [d_in, r]`,
//! `b [r, d_out]` to its matrices (linear weights, embedding tables), so each adapted weight
//! reads `base + (alpha / r) a b`. burn's `Lora` leaves rank-4 convolution kernels frozen;
//! with [`LoraSpec::convolutions`] a kernel `[out, in, kh, kw]` gets the same burn
//! [`LoraAdapter`] over its matrix view `[out, in * kh * kw]` (`a [out, r]`, `b [r, in*kh*kw]`),
//! which burn's adapter reshapes back onto the kernel. Record paths end in `.lora.a` and
//! `.lora.b`.
//!
//! [`save_adapters`] writes the factors alone (a small `.bpk`), [`load_adapters`] applies them
//! over the base they were trained on, [`merge`] folds them into plain weights, and
//! [`export_peft`] writes them with PEFT's names and layouts plus an `adapter_config.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::module::{
    Lora, LoraAdapter, Module, ModuleDisplay, ModuleVisitor, Param, ParamGroup, Reparameterizer,
};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Which weights get adapters, and how large they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct LoraSpec {
    /// Rank `r` of the factors (at least 1).
    pub rank: usize,
    /// Scale numerator: the update is `(alpha / rank) a b` (finite, > 0).
    pub alpha: f64,
    /// Adapt only parameters whose path contains one of these (e.g. `fc1`, `encoder`); empty:
    /// every matrix (and every kernel with `convolutions`).
    pub targets: Vec<String>,
    /// Adapt convolution kernels too, over their `[out, in * kh * kw]` matrix view.
    pub convolutions: bool,
    /// Parameters whose path contains one of these are trained in full, without adapters
    /// (e.g. the output layer `fc2`).
    pub full: Vec<String>,
}

impl Default for LoraSpec {
    fn default() -> Self {
        Self {
            rank: 4,
            alpha: 8.0,
            targets: Vec::new(),
            convolutions: false,
            full: Vec::new(),
        }
    }
}

impl LoraSpec {
    /// Checks rank and alpha.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidConfig`] for a zero rank or an alpha that is not finite and
    /// positive.
    pub fn check(&self) -> Result<(), ModelError> {
        let bad = |message: String| ModelError::invalid("lora", message);
        if self.rank == 0 {
            return Err(bad("lora-rank must be at least 1".to_string()));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(bad(format!(
                "lora-alpha {} must be finite and > 0",
                self.alpha
            )));
        }
        Ok(())
    }

    fn matches(&self, path: &str) -> bool {
        let adapted = self.targets.is_empty() || self.targets.iter().any(|t| path.contains(t));
        adapted && !self.full.iter().any(|f| path.contains(f))
    }
}

/// burn's [`Lora`] for matrices, and the same [`LoraAdapter`] over the matrix view of
/// convolution kernels when asked.
struct Adapters<'a> {
    spec: &'a LoraSpec,
    lora: Lora,
}

impl Reparameterizer for Adapters<'_> {
    type Reparam = LoraAdapter;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<LoraAdapter>) {
        if !self.spec.matches(path) {
            return (param.set_require_grad(false), None);
        }
        if D != 4 || !self.spec.convolutions {
            return self.lora.reparameterize(path, param);
        }
        let base = param.set_require_grad(false);
        let tensor = base.val();
        let dims = tensor.dims();
        let (rows, cols) = (dims[0], dims[1..].iter().product::<usize>());
        let device = tensor.device();
        let rank = self.spec.rank;
        // As burn's Lora: `a` random and `b` zero, so the kernel starts unchanged and the
        // gradient of `b` (`a^T dL/dW`) is not zero.
        let a = Tensor::<2>::random(
            [rows, rank],
            Distribution::Normal(0.0, 1.0 / rank as f64),
            &device,
        );
        let b = Tensor::<2>::zeros([rank, cols], &device);
        let adapter = LoraAdapter {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            scale: self.spec.alpha / rank as f64,
        };
        (base, Some(adapter))
    }
}

/// Freezes `model` and attaches adapters as `spec` says; parameters matching
/// [`LoraSpec::full`] stay trainable in full. Attach to a model without adapters, on the
/// device it trains on (with autodiff, for training).
///
/// # Errors
///
/// [`ModelError::InvalidConfig`] when `spec` fails its [`check`](LoraSpec::check), or when no
/// parameter got an adapter (the targets match nothing).
pub fn attach<M: Module>(model: M, spec: &LoraSpec) -> Result<M, ModelError> {
    spec.check()?;
    // Every size is checked before an adapter is allocated: adapters that would hold more
    // numbers than the weights they adapt save nothing and, with a large enough rank, would
    // not fit in memory.
    let mut shapes = Shapes {
        spec,
        path: Vec::new(),
        found: Vec::new(),
    };
    model.visit(&mut shapes);
    let weights: u128 = shapes.found.iter().map(|(_, r, c)| (*r * *c) as u128).sum();
    let sides: u128 = shapes.found.iter().map(|(_, r, c)| (*r + *c) as u128).sum();
    if sides > 0 && spec.rank as u128 * sides > weights {
        return Err(ModelError::invalid(
            "lora",
            format!(
                "lora-rank {} gives adapters of {} numbers, more than the {weights} of the {} weights they adapt: at most {}",
                spec.rank,
                spec.rank as u128 * sides,
                shapes.found.len(),
                weights / sides
            ),
        ));
    }
    let adapters = Adapters {
        spec,
        lora: Lora::new(spec.rank, spec.alpha),
    };
    let mut model = model.apply_reparameterization(adapters);
    if !spec.full.is_empty() {
        model = model.unfreeze_group(ParamGroup::from_any_predicates(spec.full.clone()));
    }
    if count(&model).adapted == 0 {
        return Err(ModelError::invalid(
            "lora",
            format!(
                "no weight matched the LoRA targets {:?}{}",
                spec.targets,
                if spec.convolutions {
                    ""
                } else {
                    " (convolution kernels need --lora-convolutions)"
                }
            ),
        ));
    }
    Ok(model)
}

/// Parameter counts of a module.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCount {
    /// Every parameter, adapter factors included.
    pub total: usize,
    /// Parameters that receive gradients (adapters, and weights trained in full).
    pub trainable: usize,
    /// Weights that carry an adapter.
    pub adapted: usize,
    /// Elements of the adapter factors.
    pub adapter: usize,
}

/// The `(path, rows, cols)` of every weight `spec` would adapt: matrices, and convolution
/// kernels (as their `[out, in * kh * kw]` view) when it adapts them.
struct Shapes<'a> {
    spec: &'a LoraSpec,
    path: Vec<String>,
    found: Vec<(String, usize, usize)>,
}

impl ModuleVisitor for Shapes<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        if (D == 2 || (D == 4 && self.spec.convolutions)) && self.spec.matches(&path) {
            let dims = param.lazy_shape().dims::<D>();
            let cols = dims[1..].iter().product();
            self.found.push((path, dims[0], cols));
        }
    }
}

#[derive(Default)]
struct Counter {
    count: ParamCount,
    path: Vec<String>,
}

impl ModuleVisitor for Counter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n = param.lazy_shape().num_elements();
        self.count.total += n;
        if param.val().is_require_grad() {
            self.count.trainable += n;
        }
        if self.path.iter().any(|p| p == "lora") {
            self.count.adapter += n;
            // Each adapter has two factors, `a` and `b`.
            if self.path.last().is_some_and(|p| p == "a") {
                self.count.adapted += 1;
            }
        }
    }
}

/// Counts `model`'s parameters; trainable ones only on a model with autodiff.
pub fn count<M: Module>(model: &M) -> ParamCount {
    let mut counter = Counter::default();
    model.visit(&mut counter);
    counter.count
}

/// Folds the adapters into the weights: a plain module (on the same device, without autodiff)
/// whose weights are `base + (alpha / r) a b`.
pub fn merge<M: Module>(model: &M) -> M {
    model.valid().materialize()
}

/// Saves only the adapter factors of `model` (and the weights trained in full, `full`) to the
/// burnpack file `path`, atomically.
///
/// # Errors
///
/// [`ModelError::Save`] when the file cannot be written.
pub fn save_adapters<M: Module + ModuleDisplay>(
    model: &M,
    spec: &LoraSpec,
    path: &Path,
) -> Result<(), ModelError> {
    let pattern = adapter_pattern(spec);
    crate::atomic::write_with(path, |tmp| -> Result<(), BoxError> {
        let mut store = BurnpackStore::from_file(tmp)
            .auto_extension(false)
            .overwrite(true)
            .with_regex(&pattern);
        Ok(model.save_into(&mut store)?)
    })
    .map_err(|source| ModelError::Save {
        path: path.to_path_buf(),
        source,
    })
}

/// The record paths an adapters file holds: factors, and the weights trained in full.
fn adapter_pattern(spec: &LoraSpec) -> String {
    let mut parts = vec![r"\.lora\.[ab]$".to_string()];
    parts.extend(spec.full.iter().map(|f| crate::store::regex_escape(f)));
    parts.join("|")
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Loads an adapters file written by [`save_adapters`] into `model`, which must carry the same
/// adapters (built by [`attach`] with the same spec over the same base).
///
/// # Errors
///
/// [`ModelError::Load`] when the file is missing or unreadable, [`ModelError::Mismatch`] when
/// an adapter is missing from it or has another shape.
pub fn load_adapters<M: Module + ModuleDisplay>(
    mut model: M,
    spec: &LoraSpec,
    path: &Path,
) -> Result<M, ModelError> {
    if !path.is_file() {
        return Err(ModelError::Load {
            path: path.to_path_buf(),
            message: "no such file".to_string(),
        });
    }
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .validate(false)
        .allow_partial(true)
        .with_regex(&adapter_pattern(spec));
    let result = model.load_from(&mut store).map_err(|e| ModelError::Load {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    // The filter leaves the base out of the file, but burn-store lists it as missing.
    let saved = |p: &str| {
        p.ends_with(".lora.a") || p.ends_with(".lora.b") || spec.full.iter().any(|f| p.contains(f))
    };
    crate::store::check_applied_where(path, &result, saved)?;
    Ok(model)
}

/// One exported adapter: PEFT's name stem, and its two factors in PEFT's layout.
struct PeftAdapter {
    stem: String,
    embedding: bool,
    a: (Vec<usize>, Vec<f32>),
    b: (Vec<usize>, Vec<f32>),
}

/// `[rows, cols]` row-major values transposed.
fn transpose(rows: usize, cols: usize, values: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// Writes `model`'s adapters as a PEFT adapter: `adapter_model.safetensors` and
/// `adapter_config.json` in the folder `dir` (created if needed), with the module names of
/// the model's PyTorch equivalent (`pytorch_names`, as [`store::save`](crate::store::save)
/// writes them; prefixed `base_model.model.` as PEFT does).
///
/// Layouts, for `delta = (alpha / r) B A` in PyTorch's `[out, in]` weight layout:
/// linear `lora_A.weight [r, in]` = `a^T`, `lora_B.weight [out, r]` = `b^T`; embedding
/// `lora_embedding_A [r, vocab]` = `a^T`, `lora_embedding_B [width, r]` = `b^T`; convolution
/// `lora_A.weight [r, in, kh, kw]` = `b`, `lora_B.weight [out, r, 1, 1]` = `a`.
///
/// # Errors
///
/// [`ModelError::Save`] when a file cannot be written.
pub fn export_peft<M: Module>(
    model: &M,
    spec: &LoraSpec,
    pytorch_names: &[(String, String)],
    dir: &Path,
) -> Result<(), ModelError> {
    let save_err = |source: BoxError| ModelError::Save {
        path: dir.to_path_buf(),
        source,
    };
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
    for t in model.collect(None, None, true) {
        let bytes = t.to_bytes().map_err(|e| save_err(e.to_string().into()))?;
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(t.name.clone(), (t.shape.to_vec(), values));
    }
    let embeddings = embedding_weights(model);
    let mut adapters = Vec::new();
    let mut modules = Vec::new();
    for (name, (base_shape, _)) in &tensors {
        let (Some((a_shape, a)), Some((b_shape, b))) = (
            tensors.get(&format!("{name}.lora.a")),
            tensors.get(&format!("{name}.lora.b")),
        ) else {
            continue;
        };
        let module = name.rsplit_once('.').map_or("", |(m, _)| m);
        let module = to_pytorch(module, pytorch_names);
        let embedding = embeddings.contains(name);
        let r = a_shape[1];
        let adapter = match base_shape.len() {
            2 => PeftAdapter {
                stem: module.clone(),
                embedding,
                a: (vec![r, a_shape[0]], transpose(a_shape[0], r, a)),
                b: (vec![b_shape[1], r], transpose(r, b_shape[1], b)),
            },
            _ => {
                let mut a_kernel = vec![r];
                a_kernel.extend_from_slice(&base_shape[1..]);
                PeftAdapter {
                    stem: module.clone(),
                    embedding: false,
                    a: (a_kernel, b.clone()),
                    b: (vec![a_shape[0], r, 1, 1], a.clone()),
                }
            }
        };
        modules.push(module.rsplit('.').next().unwrap_or(&module).to_string());
        adapters.push(adapter);
    }
    std::fs::create_dir_all(dir).map_err(|e| save_err(e.into()))?;
    let mut views = Vec::new();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for adapter in &adapters {
        let (a_name, b_name) = if adapter.embedding {
            (
                format!("base_model.model.{}.lora_embedding_A", adapter.stem),
                format!("base_model.model.{}.lora_embedding_B", adapter.stem),
            )
        } else {
            (
                format!("base_model.model.{}.lora_A.weight", adapter.stem),
                format!("base_model.model.{}.lora_B.weight", adapter.stem),
            )
        };
        for (name, (shape, values)) in [(a_name, &adapter.a), (b_name, &adapter.b)] {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            owned.push((name, shape.clone(), bytes));
        }
    }
    for (name, shape, bytes) in &owned {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map_err(|e| save_err(e.to_string().into()))?;
        views.push((name.clone(), view));
    }
    let file = safetensors::serialize(views, None).map_err(|e| save_err(e.to_string().into()))?;
    crate::atomic::write_bytes(&dir.join("adapter_model.safetensors"), &file)
        .map_err(|e| save_err(e.into()))?;
    modules.sort();
    modules.dedup();
    let config = serde_json::json!({
        "peft_type": "LORA",
        "r": spec.rank,
        "lora_alpha": spec.alpha,
        "lora_dropout": 0.0,
        "bias": "none",
        "target_modules": modules,
        "modules_to_save": spec.full,
        "fan_in_fan_out": false,
        "inference_mode": true,
    });
    let text = serde_json::to_string_pretty(&config).map_err(|e| save_err(e.into()))?;
    crate::atomic::write_bytes(&dir.join("adapter_config.json"), text.as_bytes())
        .map_err(|e| save_err(e.into()))?;
    Ok(())
}

/// burn's path `module` in the names of the PyTorch equivalent.
fn to_pytorch(module: &str, pytorch_names: &[(String, String)]) -> String {
    let dotted = format!("{module}.");
    for (burn, torch) in pytorch_names {
        if let Some(rest) = dotted.strip_prefix(burn.as_str()) {
            return format!("{torch}{rest}").trim_end_matches('.').to_string();
        }
    }
    module.to_string()
}

/// The record paths (`tokens.weight`, ...) of the embedding tables in `model` (burn stores
/// those `[vocab, width]` and reads them by row), in one pass. Enum variants are left out of
/// the paths, as in the record names of `collect(.., skip_enum_variants = true)`.
fn embedding_weights<M: Module>(model: &M) -> BTreeSet<String> {
    #[derive(Default)]
    struct Finder {
        path: Vec<String>,
        types: Vec<String>,
        found: BTreeSet<String>,
    }
    impl ModuleVisitor for Finder {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.types.push(container_type.to_string());
            if !container_type.starts_with("Enum:") {
                self.path.push(name.to_string());
            }
        }
        fn exit_module(&mut self, _name: &str, container_type: &str) {
            self.types.pop();
            if !container_type.starts_with("Enum:") {
                self.path.pop();
            }
        }
        fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
            // The last container is the module that owns the parameter.
            if self.types.last().is_some_and(|t| t == "Struct:Embedding") {
                self.found.insert(self.path.join("."));
            }
        }
    }
    let mut finder = Finder::default();
    model.visit(&mut finder);
    finder.found
}
