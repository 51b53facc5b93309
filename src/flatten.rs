//! Flattening an incremental (pre-dump) chain: a pagemap whose entries say
//! `PE_PARENT` (or the older `in_parent`) gets those pages from the parent
//! dumps, so the result is self-contained.  CRIU cannot follow a parent
//! chain while streaming, and a converted copy lives elsewhere, so both
//! `serve` and `convert` use this.
//!
//! The flattened pagemap has the same entries, with every parent entry now
//! `PE_PRESENT`; the flattened pages file holds the pages of every present
//! entry in pagemap order, as CRIU reads them.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::image::{ImageReader, ImageWriter, Role};
use crate::mem::{pe, Found, Pagemap, PAGE_SIZE};
use crate::wire::Value;

/// Whether pagemap image `name` of `dir` has entries that need a parent.
pub fn needs_parent(dir: &Path, name: &str) -> Result<bool> {
    let Some(pm) = Pagemap::open(dir, name)? else { return Ok(false) };
    Ok(pm.levels().first().is_some_and(|l| l.runs().iter().any(|r| r.flags & pe::PARENT != 0)))
}

/// The `pages_id` of a pagemap image.
pub fn pages_id(dir: &Path, name: &str) -> Result<Option<u32>> {
    Ok(Pagemap::open(dir, name)?.and_then(|p| p.levels().first().map(|l| l.pages_id)))
}

/// Write the flattened pagemap image.
pub fn write_pagemap<W: Write>(dir: &Path, name: &str, w: W) -> Result<W> {
    let path = dir.join(name);
    let f = std::fs::File::open(&path).map_err(|e| Error::from(e).in_file(&path))?;
    let mut rd = ImageReader::open(std::io::BufReader::with_capacity(1 << 16, f)).map_err(|e| e.in_file(name))?;
    let mut out = ImageWriter::new(w, rd.kind())?;
    while let Some(mut it) = rd.next_item().map_err(|e| e.in_file(name))? {
        if it.role == Role::PagemapEntry {
            let m = &mut it.msg;
            let parent =
                m.bool("in_parent") == Some(true) || m.u64("flags").is_some_and(|f| f & pe::PARENT as u64 != 0);
            if parent {
                let flags = m.u64("flags").unwrap_or(0) & !(pe::PARENT as u64) | pe::PRESENT as u64;
                m.set("flags", Value::Uint(flags))?;
                if m.has("in_parent") {
                    m.set("in_parent", Value::Bool(false))?;
                }
            }
        }
        out.write_message(&it.msg)?;
    }
    out.finish()
}

/// Write the flattened pages file of pagemap image `name`.
pub fn write_pages<W: Write>(dir: &Path, name: &str, mut w: W) -> Result<(W, u64)> {
    let pm = Pagemap::open(dir, name)?.ok_or_else(|| Error::other(format!("no {name}")).in_file(name))?;
    if let Some(b) = pm.broken_link() {
        return Err(Error::other(format!("the parent dump cannot be read: {b}")).in_file(name));
    }
    let Some(top) = pm.levels().first() else { return Ok((w, 0)) };
    let mut runs = top.runs().to_vec();
    runs.sort_by_key(|r| r.entry);
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    for r in runs {
        if r.flags & (pe::PRESENT | pe::PARENT) == 0 {
            continue; // lazy: no pages in the images
        }
        let mut addr = r.vaddr;
        while addr < r.end() {
            let (found, n) = pm.find(addr);
            let n = n.min(r.end() - addr).min(buf.len() as u64);
            match found {
                Found::Pages { level, offset } => {
                    let chunk = &mut buf[..n as usize];
                    pm.read_pages(level, offset, chunk)?;
                    w.write_all(chunk)?;
                }
                Found::Lazy | Found::Hole | Found::MissingParent => {
                    return Err(Error::other(format!(
                        "the page at {addr:#x} is in no dump of the chain (entry {})",
                        r.entry
                    ))
                    .in_file(name));
                }
            }
            addr += n;
            total += n;
        }
    }
    debug_assert_eq!(total % PAGE_SIZE, 0);
    Ok((w, total))
}
