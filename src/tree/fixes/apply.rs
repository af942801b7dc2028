//! Applies the matching rules of a fix set to one file's model. Metadata changes are made to a
//! copy of the model; value changes are made at once to values kept in the catalog and
//! otherwise become a per-variable [`Transform`] run when chunks are read. Every variable a rule
//! changes gets a line in its `history` attribute.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::rules::{CoordValues, FixSet, Rule};
use crate::operators::Transform;
use crate::sources::model::{
    Attr, AttrValue, DType, FileMeta, GroupMeta, InlineData, Storage, VarMeta,
};
use crate::tree::time::{encode, values};

/// A file after its fixes.
#[derive(Debug, Clone)]
pub struct Fixed {
    /// The fixed model (the original when no rule matched).
    pub meta: Arc<FileMeta>,
    /// Value transforms of variables whose values stay in the source file.
    pub transforms: HashMap<String, Transform>,
    /// Numbers (1-based) of the rules that matched.
    pub matched: Vec<usize>,
}

/// The numpy dtype name's [`DType`].
pub(super) fn parse_dtype(name: &str) -> Option<DType> {
    Some(match name {
        "int8" | "i1" => DType::I8,
        "uint8" | "u1" => DType::U8,
        "int16" | "i2" => DType::I16,
        "uint16" | "u2" => DType::U16,
        "int32" | "i4" => DType::I32,
        "uint32" | "u4" => DType::U32,
        "int64" | "i8" => DType::I64,
        "uint64" | "u8" => DType::U64,
        "float32" | "f4" => DType::F32,
        "float64" | "f8" => DType::F64,
        _ => return None,
    })
}

/// Applies every rule of `fixes` that matches a file with `keys` at `relative` path.
///
/// # Errors
/// A message naming the rule and variable when an action cannot apply (e.g. coordinate values
/// of the wrong length).
pub fn apply(
    fixes: &FixSet,
    meta: &Arc<FileMeta>,
    keys: &BTreeMap<String, String>,
    relative: &str,
    concat_dim: Option<&str>,
) -> Result<Fixed, String> {
    let matched: Vec<usize> = fixes
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.matches(keys, relative))
        .map(|(i, _)| i + 1)
        .collect();
    if matched.is_empty() {
        return Ok(Fixed {
            meta: meta.clone(),
            transforms: HashMap::new(),
            matched,
        });
    }
    let mut file = (**meta).clone();
    let mut state = State {
        root: &mut file.root,
        transforms: HashMap::new(),
        history: BTreeMap::new(),
    };
    for &number in &matched {
        let rule = &fixes.rules[number - 1];
        let tag = format!("atlasfs fix {number} ({})", fixes.name);
        state
            .rule(rule, &tag, concat_dim)
            .map_err(|e| format!("{tag} on {}: {e}", meta.path))?;
    }
    let State {
        transforms,
        history,
        ..
    } = state;
    for (name, lines) in history {
        if let Some(var) = file.root.vars.iter_mut().find(|v| v.name == name) {
            let mut text = var
                .attr("history")
                .and_then(AttrValue::as_text)
                .unwrap_or("")
                .to_owned();
            for line in lines {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&line);
            }
            set_attr(&mut var.attrs, "history", AttrValue::Text(text));
        }
    }
    Ok(Fixed {
        meta: Arc::new(file),
        transforms,
        matched,
    })
}

struct State<'a> {
    root: &'a mut GroupMeta,
    transforms: HashMap<String, Transform>,
    history: BTreeMap<String, Vec<String>>,
}

impl State<'_> {
    fn note(&mut self, var: &str, tag: &str, what: String) {
        self.history
            .entry(var.to_owned())
            .or_default()
            .push(format!("{tag}: {what}"));
    }

    fn var(&mut self, name: &str) -> Result<&mut VarMeta, String> {
        self.root
            .vars
            .iter_mut()
            .find(|v| v.name == name)
            .ok_or_else(|| format!("no variable {name}"))
    }

    /// The served type of a variable: its transform's output, or its own type.
    fn served(&self, var: &VarMeta) -> DType {
        self.transforms
            .get(&var.name)
            .map_or(var.dtype, |t| t.output)
    }

    fn transform(&mut self, name: &str, dtype: DType) -> &mut Transform {
        self.transforms
            .entry(name.to_owned())
            .or_insert_with(|| Transform::identity(dtype))
    }

    fn rule(&mut self, rule: &Rule, tag: &str, concat_dim: Option<&str>) -> Result<(), String> {
        for name in &rule.drop_vars {
            self.root.vars.retain(|v| &v.name != name);
            self.transforms.remove(name);
        }
        for (old, new) in &rule.rename {
            self.rename(old, new, tag);
        }
        for dim in &rule.flip {
            self.flip(dim, tag);
        }
        for (name, coords) in &rule.coords {
            self.coords(name, coords, tag)?;
        }
        for (name, &factor) in &rule.scale {
            self.scale(name, factor, tag)?;
        }
        for (name, dtype) in &rule.cast {
            let dtype = parse_dtype(dtype).ok_or_else(|| format!("unknown dtype {dtype}"))?;
            self.cast(name, dtype, tag)?;
        }
        for (name, &fill) in &rule.fill_value {
            let dtype = self.served(
                self.root
                    .var(name)
                    .ok_or_else(|| format!("no variable {name}"))?,
            );
            let var = self.var(name)?;
            var.fill = encode(&[fill], dtype);
            set_attr(&mut var.attrs, "_FillValue", typed(fill, dtype));
            self.note(name, tag, format!("fill_value {fill}"));
        }
        if let Some(time) = &rule.time {
            let bounds = self
                .root
                .var(&time.var)
                .and_then(|v| v.attr("bounds"))
                .and_then(AttrValue::as_text)
                .map(str::to_owned);
            for name in std::iter::once(time.var.clone()).chain(bounds) {
                let Ok(var) = self.var(&name) else { continue };
                if let Some(units) = &time.units {
                    set_attr(&mut var.attrs, "units", AttrValue::Text(units.clone()));
                }
                if let Some(calendar) = &time.calendar {
                    set_attr(
                        &mut var.attrs,
                        "calendar",
                        AttrValue::Text(calendar.clone()),
                    );
                }
                let what = format!(
                    "time units={:?} calendar={:?}",
                    time.units.as_deref().unwrap_or("(unchanged)"),
                    time.calendar.as_deref().unwrap_or("(unchanged)")
                );
                self.note(&name, tag, what);
            }
        }
        for (name, attrs) in &rule.set_attrs {
            for (key, value) in attrs {
                let value = toml_attr(value)
                    .ok_or_else(|| format!("attribute {key}: unsupported value {value}"))?;
                if name == "." {
                    set_attr(&mut self.root.attrs, key, value);
                } else {
                    set_attr(&mut self.var(name)?.attrs, key, value);
                    self.note(name, tag, format!("set_attrs {key}"));
                }
            }
        }
        for (name, keys) in &rule.drop_attrs {
            if name == "." {
                self.root.attrs.retain(|a| !keys.contains(&a.name));
            } else {
                self.var(name)?.attrs.retain(|a| !keys.contains(&a.name));
                self.note(name, tag, format!("drop_attrs {}", keys.join(", ")));
            }
        }
        for (attr, name) in &rule.promote_attrs {
            self.promote(attr, name, concat_dim, tag)?;
        }
        Ok(())
    }

    fn rename(&mut self, old: &str, new: &str, tag: &str) {
        if let Some(var) = self.root.vars.iter_mut().find(|v| v.name == old) {
            var.name = new.to_owned();
            if let Some(t) = self.transforms.remove(old) {
                self.transforms.insert(new.to_owned(), t);
            }
            self.note(new, tag, format!("rename {old} -> {new}"));
        }
        let mut renamed_dim = false;
        for dim in &mut self.root.dims {
            if dim.name == old {
                dim.name = new.to_owned();
                renamed_dim = true;
            }
        }
        for var in &mut self.root.vars {
            for dim in &mut var.dims {
                if dim == old {
                    *dim = new.to_owned();
                    renamed_dim = true;
                }
            }
        }
        if renamed_dim {
            let users: Vec<String> = self
                .root
                .vars
                .iter()
                .filter(|v| v.dims.iter().any(|d| d == new))
                .map(|v| v.name.clone())
                .collect();
            for user in users {
                self.note(&user, tag, format!("rename dimension {old} -> {new}"));
            }
        }
    }

    fn flip(&mut self, dim: &str, tag: &str) {
        let users: Vec<(String, usize)> = self
            .root
            .vars
            .iter()
            .filter_map(|v| {
                v.dims
                    .iter()
                    .position(|d| d == dim)
                    .map(|a| (v.name.clone(), a))
            })
            .collect();
        for (name, axis) in users {
            let served = self.served(self.root.var(&name).expect("listed above"));
            let var = self.var(&name).expect("listed above");
            if let Storage::Inline(InlineData::Bytes(bytes)) = &var.storage {
                let flipped = Transform {
                    flip: vec![axis],
                    ..Transform::identity(var.dtype)
                }
                .apply(bytes.clone(), var.dtype, &var.shape);
                var.storage = Storage::Inline(InlineData::Bytes(flipped));
            } else {
                self.transform(&name, served).flip.push(axis);
            }
            self.note(&name, tag, format!("flip {dim}"));
        }
    }

    fn coords(&mut self, name: &str, coords: &CoordValues, tag: &str) -> Result<(), String> {
        let var = self.var(name)?;
        let n = var.len() as usize;
        let vals: Vec<f64> = match coords {
            CoordValues::List(v) if v.len() == n => v.clone(),
            CoordValues::List(v) => {
                return Err(format!("{name} has {n} values, the fix gives {}", v.len()))
            }
            CoordValues::Range { start, step } => (0..n).map(|i| start + step * i as f64).collect(),
        };
        if !var.dtype.is_float() && vals.iter().any(|v| v.fract() != 0.0) {
            var.dtype = DType::F64;
            var.fill = DType::F64.default_fill();
        }
        var.storage = Storage::Inline(InlineData::Bytes(encode(&vals, var.dtype)));
        self.transforms.remove(name);
        self.note(name, tag, "coords values replaced".to_owned());
        Ok(())
    }

    fn scale(&mut self, name: &str, factor: f64, tag: &str) -> Result<(), String> {
        let served = self.served(
            self.root
                .var(name)
                .ok_or_else(|| format!("no variable {name}"))?,
        );
        let output = if served.is_float() {
            served
        } else {
            DType::F64
        };
        let var = self.var(name)?;
        // Fill and missing values scale with the data, so masked elements stay masked.
        for attr in var
            .attrs
            .iter_mut()
            .filter(|a| a.name == "_FillValue" || a.name == "missing_value")
        {
            if let Some(v) = attr.value.as_f64s() {
                let scaled: Vec<f64> = v.iter().map(|x| cast_like(x * factor, output)).collect();
                attr.value = typed_vec(&scaled, output);
            }
        }
        let fill = values_of(&var.fill, var.dtype)
            .map(|f| encode(&[cast_like(f * factor, output)], output));
        match &var.storage {
            Storage::Inline(InlineData::Bytes(_)) => {
                let vals: Vec<f64> = values(var)
                    .unwrap_or_default()
                    .iter()
                    .map(|v| v * factor)
                    .collect();
                var.storage = Storage::Inline(InlineData::Bytes(encode(&vals, output)));
                var.dtype = output;
                if let Some(fill) = fill {
                    var.fill = fill;
                }
            }
            _ => {
                let t = self.transform(name, output);
                t.scale *= factor;
                t.offset *= factor;
                t.output = output;
            }
        }
        self.note(name, tag, format!("scale by {factor}"));
        Ok(())
    }

    fn cast(&mut self, name: &str, dtype: DType, tag: &str) -> Result<(), String> {
        let var = self.var(name)?;
        for attr in var
            .attrs
            .iter_mut()
            .filter(|a| a.name == "_FillValue" || a.name == "missing_value")
        {
            if let Some(v) = attr.value.as_f64s() {
                attr.value = typed_vec(&v, dtype);
            }
        }
        match &var.storage {
            Storage::Inline(InlineData::Bytes(_)) => {
                let vals = values(var).unwrap_or_default();
                let fill = values_of(&var.fill, var.dtype);
                var.storage = Storage::Inline(InlineData::Bytes(encode(&vals, dtype)));
                var.fill = fill.map_or_else(|| dtype.default_fill(), |f| encode(&[f], dtype));
                var.dtype = dtype;
            }
            _ => self.transform(name, dtype).output = dtype,
        }
        self.note(
            name,
            tag,
            format!("cast to {}", format!("{dtype:?}").to_lowercase()),
        );
        Ok(())
    }

    fn promote(
        &mut self,
        attr: &str,
        name: &str,
        concat_dim: Option<&str>,
        tag: &str,
    ) -> Result<(), String> {
        let value = self
            .root
            .attrs
            .iter()
            .find(|a| a.name == attr)
            .map(|a| a.value.clone())
            .ok_or_else(|| format!("no global attribute {attr} to promote"))?;
        let (dims, n) = match concat_dim.and_then(|d| self.root.dims.iter().find(|x| x.name == d)) {
            Some(dim) => (vec![dim.name.clone()], dim.len),
            None => (Vec::new(), 1),
        };
        let shape: Vec<u64> = if dims.is_empty() { Vec::new() } else { vec![n] };
        let (dtype, storage) = match &value {
            AttrValue::Text(_) | AttrValue::Strings(_) => {
                let text = value.as_text().unwrap_or_default().to_owned();
                (
                    DType::String,
                    Storage::Inline(InlineData::Strings(vec![text; n as usize])),
                )
            }
            numeric => {
                let v = numeric
                    .as_f64s()
                    .and_then(|v| v.first().copied())
                    .unwrap_or(f64::NAN);
                let dtype = if v.fract() == 0.0 {
                    DType::I64
                } else {
                    DType::F64
                };
                (
                    dtype,
                    Storage::Inline(InlineData::Bytes(encode(&vec![v; n as usize], dtype))),
                )
            }
        };
        self.root.vars.retain(|v| v.name != name);
        self.root.vars.push(VarMeta {
            name: name.to_owned(),
            dims,
            shape,
            dtype,
            attrs: Vec::new(),
            fill: dtype.default_fill(),
            storage,
        });
        self.note(
            name,
            tag,
            format!("promote_attrs from global attribute {attr}"),
        );
        Ok(())
    }
}

fn set_attr(attrs: &mut Vec<Attr>, name: &str, value: AttrValue) {
    match attrs.iter_mut().find(|a| a.name == name) {
        Some(a) => a.value = value,
        None => attrs.push(Attr {
            name: name.to_owned(),
            value,
        }),
    }
}

fn values_of(bytes: &[u8], dtype: DType) -> Option<f64> {
    (bytes.len() == dtype.size()?).then(|| crate::operators::element_f64(bytes, dtype))
}

/// `v` rounded as storing it in `dtype` would.
fn cast_like(v: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F32 => v as f32 as f64,
        d if !d.is_float() => v.round(),
        _ => v,
    }
}

fn typed(v: f64, dtype: DType) -> AttrValue {
    typed_vec(&[v], dtype)
}

/// Attribute values of the given type.
fn typed_vec(v: &[f64], dtype: DType) -> AttrValue {
    match dtype {
        DType::I8 => AttrValue::I8(v.iter().map(|&x| x as i8).collect()),
        DType::U8 | DType::Char => AttrValue::U8(v.iter().map(|&x| x as u8).collect()),
        DType::I16 => AttrValue::I16(v.iter().map(|&x| x as i16).collect()),
        DType::U16 => AttrValue::U16(v.iter().map(|&x| x as u16).collect()),
        DType::I32 => AttrValue::I32(v.iter().map(|&x| x as i32).collect()),
        DType::U32 => AttrValue::U32(v.iter().map(|&x| x as u32).collect()),
        DType::I64 => AttrValue::I64(v.iter().map(|&x| x as i64).collect()),
        DType::U64 => AttrValue::U64(v.iter().map(|&x| x as u64).collect()),
        DType::F32 => AttrValue::F32(v.iter().map(|&x| x as f32).collect()),
        DType::F64 | DType::String => AttrValue::F64(v.to_vec()),
    }
}

fn toml_attr(value: &toml::Value) -> Option<AttrValue> {
    Some(match value {
        toml::Value::String(s) => AttrValue::Text(s.clone()),
        toml::Value::Integer(i) => AttrValue::I64(vec![*i]),
        toml::Value::Float(f) => AttrValue::F64(vec![*f]),
        toml::Value::Boolean(b) => AttrValue::I8(vec![i8::from(*b)]),
        toml::Value::Array(items) => {
            if items.iter().all(toml::Value::is_integer) {
                AttrValue::I64(items.iter().filter_map(toml::Value::as_integer).collect())
            } else if items.iter().all(|v| v.is_float() || v.is_integer()) {
                AttrValue::F64(
                    items
                        .iter()
                        .filter_map(|v| v.as_float().or(v.as_integer().map(|i| i as f64)))
                        .collect(),
                )
            } else if items.iter().all(toml::Value::is_str) {
                AttrValue::Strings(
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                )
            } else {
                return None;
            }
        }
        _ => return None,
    })
}
