//! The expression view: new variables computed per chunk from expressions over a group's
//! variables (the grammar and xarray's semantics are in [`crate::operators::kernels::expr`]),
//! and optionally one variable with a `band` dimension whose bands are expressions (the ocean
//! CDR atlas's `experimental` / `delta`). Inputs are CF-decoded, so `float32` stays `float32`;
//! the output's dimensions follow xarray's broadcasting by name, found once at build time.

use std::collections::HashMap;
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use super::decoded::{float_bytes, into_chunk, nan_fill_attr, nan_fill_bytes, Decoding};
use super::{arrays_of, is_coordinate, provenance, Builder};
use crate::config::ExprParams;
use crate::operators::kernels::expr::{self, Data, Expression, NamedArray};
use crate::operators::{
    element_f64, ChunkError, ChunkErrorKind, FingerprintWriter, Geometry, Operator,
    OperatorContext, Part, Recipe, Region,
};
use crate::sources::model::{Attr, AttrValue, DType, FileVersion, InlineData, Storage, VarMeta};
use crate::tree::{ArrayNode, GroupNode, Node, TreeError};

/// The expression type of stored integers of type `dtype`.
fn int_type(dtype: DType) -> Option<expr::IntType> {
    Some(match dtype {
        DType::I8 => expr::IntType::I8,
        DType::I16 => expr::IntType::I16,
        DType::I32 => expr::IntType::I32,
        DType::I64 => expr::IntType::I64,
        DType::U8 => expr::IntType::U8,
        DType::U16 => expr::IntType::U16,
        DType::U32 => expr::IntType::U32,
        DType::U64 => expr::IntType::U64,
        _ => return None,
    })
}

/// The served type of an expression result's type.
fn served(dtype: expr::DType) -> DType {
    match dtype {
        expr::DType::F32 => DType::F32,
        expr::DType::Int(t) => match t {
            expr::IntType::I8 => DType::I8,
            expr::IntType::I16 => DType::I16,
            expr::IntType::I32 => DType::I32,
            expr::IntType::I64 => DType::I64,
            expr::IntType::U8 => DType::U8,
            expr::IntType::U16 => DType::U16,
            expr::IntType::U32 => DType::U32,
            expr::IntType::U64 => DType::U64,
        },
        _ => DType::F64,
    }
}

/// The values of one input region as the expression sees them: stored integers exactly,
/// everything else CF-decoded.
fn input_data(input: &Input, raw: &[u8]) -> Data {
    if let (true, Some(t)) = (
        input.decoding.is_exact_integer(),
        int_type(input.decoding.raw()),
    ) {
        let size = input.decoding.raw().size().unwrap_or(1).max(1);
        let values = raw
            .chunks_exact(size)
            .map(|b| {
                let v = element_f64(b, input.decoding.raw());
                match input.decoding.raw() {
                    DType::I64 => i64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
                    DType::U64 => u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as i64,
                    _ => v as i64,
                }
            })
            .collect();
        return Data::Int(t, values);
    }
    let values = input.decoding.decode(raw);
    match input.decoding.float {
        DType::F32 => Data::F32(values.iter().map(|&v| v as f32).collect()),
        _ => Data::F64(values),
    }
}

/// Little-endian bytes of a result, as `dtype`.
fn result_bytes(data: &Data, dtype: DType) -> Vec<u8> {
    match (data, dtype) {
        (Data::Int(_, values), d) if !matches!(d, DType::F32 | DType::F64) => {
            let size = d.size().unwrap_or(8);
            let mut out = Vec::with_capacity(values.len() * size);
            for v in values {
                out.extend_from_slice(&v.to_le_bytes()[..size]);
            }
            out
        }
        (Data::F32(values), DType::F32) => {
            let mut out = Vec::with_capacity(values.len() * 4);
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out
        }
        _ => {
            let values = match data.clone().cast(expr::DType::F64) {
                Data::F64(v) => v,
                _ => Vec::new(),
            };
            float_bytes(&values, dtype)
        }
    }
}

/// One input variable of an expression.
#[derive(Debug, Clone)]
struct Input {
    name: String,
    array: Arc<ArrayNode>,
    decoding: Decoding,
}

/// Evaluates one expression (or, with a band dimension first, one per band) chunk by chunk.
#[derive(Debug)]
struct Evaluate {
    /// The expressions and their text; one unless banded.
    expressions: Vec<(Expression, String)>,
    inputs: Vec<Input>,
    /// The output's dimensions (after `band` when banded).
    dims: Vec<String>,
    banded: bool,
}

impl Evaluate {
    /// Each input with the region `region` (of the output) covers of it.
    fn regions(&self, region: &Region) -> Vec<(&Input, Region)> {
        let skip = usize::from(self.banded);
        self.inputs
            .iter()
            .map(|input| {
                let (mut start, mut count) = (Vec::new(), Vec::new());
                for (d, dim) in input.array.dims.iter().enumerate() {
                    match self.dims.iter().position(|o| o == dim) {
                        Some(o) => {
                            start.push(region.start[o + skip]);
                            count.push(region.count[o + skip]);
                        }
                        None => {
                            start.push(0);
                            count.push(input.array.geometry.shape[d]);
                        }
                    }
                }
                (input, Region { start, count })
            })
            .collect()
    }
}

fn eval_error(e: impl std::fmt::Display) -> ChunkError {
    ChunkError::new(ChunkErrorKind::Unsupported, None, e.to_string())
}

/// `array` (dims a subset of `dims`) repeated over the missing dimensions of `shape`.
fn broadcast(array: &NamedArray, dims: &[String], shape: &[u64]) -> Vec<f64> {
    let values: Vec<f64> = match array.data() {
        Data::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        Data::F64(v) => v.clone(),
        Data::Int(..) | Data::Bool(_) => match array.data().clone().cast(expr::DType::F64) {
            Data::F64(v) => v,
            _ => Vec::new(),
        },
    };
    if array.dims() == dims {
        return values;
    }
    let total: u64 = shape.iter().product();
    let mut strides = vec![0u64; dims.len()];
    let mut stride = 1u64;
    for (d, len) in array.dims().iter().zip(array.shape()).rev() {
        if let Some(o) = dims.iter().position(|x| x == d) {
            strides[o] = stride;
        }
        stride *= *len as u64;
    }
    let mut out = Vec::with_capacity(total as usize);
    let mut index = vec![0u64; dims.len()];
    for _ in 0..total {
        let at: u64 = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.push(values.get(at as usize).copied().unwrap_or(f64::NAN));
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

impl Operator for Evaluate {
    fn describe(&self, _: &Geometry) -> String {
        let texts: Vec<&str> = self.expressions.iter().map(|(_, t)| t.as_str()).collect();
        format!("= {}", texts.join(" | "))
    }

    fn fingerprint(&self, out: &mut FingerprintWriter<'_>) {
        out.write(&("expression", 1u32, self.banded, &self.dims));
        for (_, text) in &self.expressions {
            out.write(text);
        }
        for input in &self.inputs {
            out.write(&(&input.name, input.decoding.identity()));
            out.input(&input.array);
        }
    }

    fn chunk_identity(&self, _: &[u128], _: &Region, _: &[u64], _: &mut Xxh3) {}

    fn inputs(&self, geometry: &Geometry, index: &[u64]) -> Vec<(Arc<ArrayNode>, Region)> {
        self.regions(&geometry.chunk_region(index))
            .into_iter()
            .map(|(input, region)| (input.array.clone(), region))
            .collect()
    }

    fn check(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<(), ChunkError> {
        for (input, region) in self.regions(&geometry.chunk_region(index)) {
            context.regions.check_region(&input.array, &region)?;
        }
        Ok(())
    }

    fn compute(
        &self,
        geometry: &Geometry,
        index: &[u64],
        context: &OperatorContext<'_>,
    ) -> Result<Vec<u8>, ChunkError> {
        let region = geometry.chunk_region(index);
        let (expression, _) = match self.banded {
            true => self
                .expressions
                .get(index.first().copied().unwrap_or(0) as usize),
            false => self.expressions.first(),
        }
        .ok_or_else(|| eval_error("no such band"))?;
        let used = expression.variables();
        let mut named = HashMap::new();
        for (input, input_region) in self.regions(&region) {
            if !used.contains(&input.name.as_str()) {
                continue;
            }
            let raw = context.regions.read_region(&input.array, &input_region)?;
            let data = input_data(input, &raw);
            let shape = input_region.count.iter().map(|&c| c as usize).collect();
            let array =
                NamedArray::new(input.array.dims.clone(), shape, data).map_err(eval_error)?;
            named.insert(input.name.clone(), array);
        }
        let result = expression.evaluate(&named).map_err(eval_error)?;
        let skip = usize::from(self.banded);
        let bytes = if !self.banded && result.dims() == self.dims.as_slice() {
            result_bytes(result.data(), geometry.dtype)
        } else {
            float_bytes(
                &broadcast(&result, &self.dims, &region.count[skip..]),
                geometry.dtype,
            )
        };
        Ok(into_chunk(bytes, &region, &geometry.chunks, &geometry.fill))
    }
}

/// The output dims and type of `expression` over `group`'s variables, and its inputs.
fn plan(
    builder: &Builder<'_>,
    name: &str,
    text: &str,
    expression: &Expression,
    group: &GroupNode,
) -> Result<(Vec<String>, expr::DType, Vec<Input>), TreeError> {
    let arrays = arrays_of(group);
    let mut inputs = Vec::new();
    let mut dummies = HashMap::new();
    let mut sizes: HashMap<&str, (u64, &str)> = HashMap::new();
    let used = expression.variables();
    if used.is_empty() {
        return Err(builder.config_error(format!("expression {name} = {text:?} reads no variable")));
    }
    for var in used {
        let Some((_, array)) = arrays.iter().find(|(n, _)| n.as_str() == var) else {
            let known: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
            return Err(builder.config_error(format!(
                "expression {name} = {text:?}: unknown variable {var:?} (the group has: {})",
                known.join(", ")
            )));
        };
        let Some(decoding) = Decoding::of(array) else {
            return Err(builder.config_error(format!(
                "expression {name} = {text:?}: {var:?} holds text, not numbers"
            )));
        };
        for (dim, &len) in array.dims.iter().zip(&array.geometry.shape) {
            match sizes.get(dim.as_str()) {
                Some(&(other, by)) if other != len => {
                    return Err(builder.config_error(format!(
                        "expression {name} = {text:?}: dimension {dim:?} has {other} elements in {by:?} but {len} in {var:?}"
                    )))
                }
                _ => {
                    sizes.insert(dim.as_str(), (len, var));
                }
            }
        }
        let ones = vec![1usize; array.dims.len()];
        let data = match (decoding.is_exact_integer(), int_type(decoding.raw())) {
            (true, Some(t)) => Data::Int(t, vec![1]),
            _ if decoding.float == DType::F32 => Data::F32(vec![1.0]),
            _ => Data::F64(vec![1.0]),
        };
        let dummy = NamedArray::new(array.dims.clone(), ones, data)
            .map_err(|e| builder.config_error(format!("expression {name}: {e}")))?;
        dummies.insert(var.to_owned(), dummy);
        inputs.push(Input {
            name: var.to_owned(),
            array: (*array).clone(),
            decoding,
        });
    }
    let result = expression
        .evaluate(&dummies)
        .map_err(|e| builder.config_error(format!("expression {name} = {text:?}: {e}")))?;
    let dtype = result.data().dtype();
    if dtype == expr::DType::Bool {
        return Err(builder.config_error(format!(
            "expression {name} = {text:?} is a comparison: use it as the condition of where"
        )));
    }
    Ok((result.dims().to_vec(), dtype, inputs))
}

/// Shape and chunks of `dims`: lengths from the inputs, chunks from the first input that has
/// each dimension.
fn layout(dims: &[String], inputs: &[Input]) -> (Vec<u64>, Vec<u64>) {
    dims.iter()
        .map(|dim| {
            inputs
                .iter()
                .find_map(|i| {
                    let d = i.array.dims.iter().position(|x| x == dim)?;
                    Some((i.array.geometry.shape[d], i.array.geometry.chunks[d]))
                })
                .unwrap_or((1, 1))
        })
        .unzip()
}

/// The expression view of one group.
pub(super) fn apply(
    builder: &mut Builder<'_>,
    params: &ExprParams,
    source: &GroupNode,
    path: &str,
) -> Result<GroupNode, TreeError> {
    let texts: Vec<String> = params
        .variables
        .iter()
        .chain(&params.bands)
        .map(|(n, _, t)| format!("{n} = {t}"))
        .collect();
    let mut out = GroupNode {
        attrs: provenance(&source.attrs, builder.view, &texts.join("; ")),
        children: Default::default(),
    };
    for (name, array) in arrays_of(source) {
        let carried = builder
            .view
            .variables
            .as_ref()
            .is_some_and(|v| v.contains(name));
        if is_coordinate(source, name, array) || carried {
            let alias = builder.alias(array, format!("{path}/{name}"));
            out.children.insert(name.clone(), Node::Array(alias));
        }
    }
    for (name, expression, text) in &params.variables {
        let (dims, dtype, inputs) = plan(builder, name, text, expression, source)?;
        let dtype = served(dtype);
        let (shape, chunks) = layout(&dims, &inputs);
        let operator = Evaluate {
            expressions: vec![(expression.clone(), text.clone())],
            inputs,
            dims: dims.clone(),
            banded: false,
        };
        let mut attrs = nan_fill_attr(dtype);
        attrs.push(Attr {
            name: "expression".into(),
            value: AttrValue::Text(text.clone()),
        });
        let geometry = Geometry {
            shape,
            chunks,
            dtype,
            fill: nan_fill_bytes(dtype),
        };
        let node = builder.array(
            format!("{path}/{name}"),
            dims,
            geometry,
            attrs,
            Recipe::new(Arc::new(operator), crate::operators::Encoding::Bytes),
        );
        out.children.insert(name.clone(), Node::Array(node));
    }
    if !params.bands.is_empty() {
        band(builder, params, source, path, &mut out)?;
    }
    Ok(out)
}

/// The band variable and its `band` coordinate.
fn band(
    builder: &mut Builder<'_>,
    params: &ExprParams,
    source: &GroupNode,
    path: &str,
    out: &mut GroupNode,
) -> Result<(), TreeError> {
    let mut dims: Vec<String> = Vec::new();
    let mut inputs: Vec<Input> = Vec::new();
    let mut all_f32 = true;
    for (label, expression, text) in &params.bands {
        let (d, dtype, i) = plan(builder, label, text, expression, source)?;
        all_f32 &= dtype == expr::DType::F32;
        for dim in d {
            if !dims.contains(&dim) {
                dims.push(dim);
            }
        }
        for input in i {
            if !inputs.iter().any(|x| x.name == input.name) {
                inputs.push(input);
            }
        }
    }
    let dtype = if all_f32 { DType::F32 } else { DType::F64 };
    let (shape, chunks) = layout(&dims, &inputs);
    let labels: Vec<String> = params.bands.iter().map(|(l, _, _)| l.clone()).collect();
    let n = labels.len() as u64;
    let operator = Evaluate {
        expressions: params
            .bands
            .iter()
            .map(|(_, e, t)| (e.clone(), t.clone()))
            .collect(),
        inputs,
        dims: dims.clone(),
        banded: true,
    };
    let mut all_dims = vec!["band".to_owned()];
    all_dims.extend(dims);
    let geometry = Geometry {
        shape: std::iter::once(n).chain(shape).collect(),
        chunks: std::iter::once(1).chain(chunks).collect(),
        dtype,
        fill: nan_fill_bytes(dtype),
    };
    let variable = builder.array(
        format!("{path}/{}", params.band_variable),
        all_dims,
        geometry,
        nan_fill_attr(dtype),
        Recipe::new(Arc::new(operator), crate::operators::Encoding::Bytes),
    );
    out.children
        .insert(params.band_variable.clone(), Node::Array(variable));
    let part = Part {
        path: format!("view {}", builder.view.name).into(),
        version: FileVersion {
            size: 0,
            mtime_ns: 0,
            etag: 0,
        },
        var: Arc::new(VarMeta {
            name: "band".into(),
            dims: vec!["band".into()],
            shape: vec![n],
            dtype: DType::String,
            attrs: Vec::new(),
            fill: Vec::new(),
            storage: Storage::Inline(InlineData::Strings(labels)),
        }),
        origin: vec![0],
        transform: None,
    };
    let coordinate = builder.array(
        format!("{path}/band"),
        vec!["band".into()],
        Geometry {
            shape: vec![n],
            chunks: vec![n],
            dtype: DType::String,
            fill: Vec::new(),
        },
        Vec::new(),
        Recipe::from_parts(vec![part], DType::String),
    );
    out.children.insert("band".into(), Node::Array(coordinate));
    Ok(())
}
