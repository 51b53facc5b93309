//! Edits of an image's JSON: writing a [`Json`] value back out, setting a
//! value at a dotted path (`entries.0.tc.comm`), and JSON Patch (RFC 6902).

use std::io::Write;

use super::out::JsonOut;
use super::parse::Json;
use crate::error::{Error, Result};

/// Write a value (Python `json.dump` layout, raw or indented).
pub fn write_value<W: Write>(out: &mut JsonOut<W>, v: &Json) -> Result<()> {
    match v {
        Json::Null => out.raw("null"),
        Json::Bool(b) => out.raw(if *b { "true" } else { "false" }),
        Json::Int(i) => out.int(*i),
        Json::Float(f) => {
            if f.is_finite() {
                out.raw(&format!("{f:?}"))
            } else if f.is_nan() {
                out.raw("NaN")
            } else if *f > 0.0 {
                out.raw("Infinity")
            } else {
                out.raw("-Infinity")
            }
        }
        Json::Str(s) => out.write_str(s),
        Json::Arr(a) => {
            out.begin_array()?;
            for x in a {
                out.elem()?;
                write_value(out, x)?;
            }
            out.end_array()
        }
        Json::Obj(m) => {
            out.begin_object()?;
            for (k, x) in m {
                out.key(k)?;
                write_value(out, x)?;
            }
            out.end_object()
        }
    }
}

/// A value as raw JSON text.
pub fn to_vec(v: &Json) -> Vec<u8> {
    let mut out = JsonOut::new(Vec::new(), false);
    let _ = write_value(&mut out, v);
    out.finish().unwrap_or_default()
}

/// One step of a path: an object key or a list index.
fn step<'a>(v: &'a mut Json, key: &str, create: bool) -> Result<&'a mut Json> {
    match v {
        Json::Obj(m) => {
            if let Some(pos) = m.iter().rposition(|(k, _)| k == key) {
                return Ok(&mut m[pos].1);
            }
            if create {
                m.push((key.to_string(), Json::Null));
                let last = m.len() - 1;
                return Ok(&mut m[last].1);
            }
            Err(Error::value(format!("no key {key:?}")))
        }
        Json::Arr(a) => {
            let n = a.len();
            let i: usize = key.parse().map_err(|_| Error::value(format!("{key:?} is not a list index")))?;
            a.get_mut(i).ok_or_else(|| Error::value(format!("index {i} is past the end of a list of {n}")))
        }
        other => Err(Error::value(format!("cannot look up {key:?} in {}", other.type_name()))),
    }
}

/// Set the value at a dotted path (keys and list indices): the last key of
/// an object is created if missing; everything before it must exist.
pub fn set_path(doc: &mut Json, path: &str, value: Json) -> Result<()> {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::value(format!("bad path {path:?}")));
    }
    let mut cur = doc;
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        cur = step(cur, p, last).map_err(|e| e.in_field(&parts[..i].join(".")))?;
    }
    *cur = value;
    Ok(())
}

fn unescape(tok: &str) -> String {
    tok.replace("~1", "/").replace("~0", "~")
}

fn pointer_parts(ptr: &str) -> Result<Vec<String>> {
    if ptr.is_empty() {
        return Ok(Vec::new());
    }
    let rest =
        ptr.strip_prefix('/').ok_or_else(|| Error::value(format!("JSON pointer {ptr:?} must start with '/'")))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn get_ptr<'a>(doc: &'a Json, parts: &[String]) -> Result<&'a Json> {
    let mut cur = doc;
    for p in parts {
        cur = match cur {
            Json::Obj(m) => m.iter().rev().find(|(k, _)| k == p).map(|(_, v)| v),
            Json::Arr(a) => p.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| Error::value(format!("path /{} does not exist", parts.join("/"))))?;
    }
    Ok(cur)
}

fn parent_mut<'a>(doc: &'a mut Json, parts: &[String]) -> Result<&'a mut Json> {
    let mut cur = doc;
    for p in parts {
        cur = step(cur, p, false)?;
    }
    Ok(cur)
}

fn add(doc: &mut Json, parts: &[String], value: Json) -> Result<()> {
    let Some((last, parent)) = parts.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parent)? {
        Json::Obj(m) => {
            m.retain(|(k, _)| k != last);
            m.push((last.clone(), value));
            Ok(())
        }
        Json::Arr(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| Error::value(format!("{last:?} is not a list index")))?;
            if i > a.len() {
                return Err(Error::value(format!("index {i} is past the end of a list of {}", a.len())));
            }
            a.insert(i, value);
            Ok(())
        }
        other => Err(Error::value(format!("cannot add into {}", other.type_name()))),
    }
}

fn remove(doc: &mut Json, parts: &[String]) -> Result<Json> {
    let Some((last, parent)) = parts.split_last() else {
        return Err(Error::value("cannot remove the whole document"));
    };
    match parent_mut(doc, parent)? {
        Json::Obj(m) => {
            let pos = m
                .iter()
                .rposition(|(k, _)| k == last)
                .ok_or_else(|| Error::value(format!("path /{} does not exist", parts.join("/"))))?;
            Ok(m.remove(pos).1)
        }
        Json::Arr(a) => {
            let i: usize = last.parse().map_err(|_| Error::value(format!("{last:?} is not a list index")))?;
            if i >= a.len() {
                return Err(Error::value(format!("index {i} is past the end of a list of {}", a.len())));
            }
            Ok(a.remove(i))
        }
        other => Err(Error::value(format!("cannot remove from {}", other.type_name()))),
    }
}

/// Apply a JSON Patch (RFC 6902): a list of operations.
pub fn apply_patch(doc: &mut Json, patch: &Json) -> Result<()> {
    let Json::Arr(ops) = patch else {
        return Err(Error::value("a JSON patch is a list of operations"));
    };
    for (i, op) in ops.iter().enumerate() {
        apply_op(doc, op).map_err(|e| e.in_index(i))?;
    }
    Ok(())
}

fn str_member<'a>(op: &'a Json, k: &str) -> Result<String> {
    match op.get(k) {
        Some(Json::Str(s)) => Ok(String::from_utf8_lossy(s).into_owned()),
        _ => Err(Error::value(format!("operation needs a string {k:?}"))),
    }
}

fn apply_op(doc: &mut Json, op: &Json) -> Result<()> {
    let name = str_member(op, "op")?;
    let path = pointer_parts(&str_member(op, "path")?)?;
    let value = || op.get("value").cloned().ok_or_else(|| Error::value("operation needs a \"value\""));
    match name.as_str() {
        "add" => add(doc, &path, value()?),
        "remove" => remove(doc, &path).map(|_| ()),
        "replace" => {
            get_ptr(doc, &path)?;
            remove(doc, &path)?;
            add(doc, &path, value()?)
        }
        "move" => {
            let from = pointer_parts(&str_member(op, "from")?)?;
            let v = remove(doc, &from)?;
            add(doc, &path, v)
        }
        "copy" => {
            let from = pointer_parts(&str_member(op, "from")?)?;
            let v = get_ptr(doc, &from)?.clone();
            add(doc, &path, v)
        }
        "test" => {
            if get_ptr(doc, &path)? == &value()? {
                Ok(())
            } else {
                Err(Error::value(format!("test failed at /{}", path.join("/"))))
            }
        }
        other => Err(Error::value(format!("unknown patch operation {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse::parse_slice;

    fn j(s: &str) -> Json {
        parse_slice(s.as_bytes()).unwrap()
    }

    #[test]
    fn dotted_paths() {
        let mut d = j(r#"{"entries": [{"tc": {"comm": "a"}}]}"#);
        set_path(&mut d, "entries.0.tc.comm", j(r#""edited""#)).unwrap();
        assert_eq!(to_vec(&d), br#"{"entries": [{"tc": {"comm": "edited"}}]}"#);
        set_path(&mut d, "entries.0.tc.new", j("1")).unwrap();
        assert!(set_path(&mut d, "entries.5.tc", j("1")).is_err());
        assert!(set_path(&mut d, "entries.x", j("1")).is_err());
    }

    #[test]
    fn rfc6902() {
        let mut d = j(r#"{"a": [1, 2], "b": {"c": 3}}"#);
        let p = j(r#"[
            {"op": "add", "path": "/a/1", "value": 9},
            {"op": "replace", "path": "/b/c", "value": 4},
            {"op": "copy", "from": "/b/c", "path": "/d"},
            {"op": "move", "from": "/a/0", "path": "/a/-"},
            {"op": "remove", "path": "/b"},
            {"op": "test", "path": "/d", "value": 4}
        ]"#);
        apply_patch(&mut d, &p).unwrap();
        assert_eq!(to_vec(&d), br#"{"a": [9, 2, 1], "d": 4}"#);
        assert!(apply_patch(&mut d, &j(r#"[{"op": "test", "path": "/d", "value": 5}]"#)).is_err());
        assert!(apply_patch(&mut d, &j(r#"[{"op": "remove", "path": "/zz"}]"#)).is_err());
    }
}
