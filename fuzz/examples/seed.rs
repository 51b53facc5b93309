//! Writes seed inputs for every fuzz target from the fixtures:
//! `cargo run --release --example seed -- OUTDIR` makes OUTDIR/<target>/.
//! scripts/fuzz.sh --seed minimises them into fuzz/corpus/.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crit::image::ImageReader;
use crit::transcode::{self, DecodeOptions};
use crit_fuzz::checks::join_dir;

fn put(out: &Path, target: &str, name: &str, data: &[u8]) {
    let d = out.join(target);
    fs::create_dir_all(&d).expect("create the seed directory");
    fs::write(d.join(name), data).expect("write a seed");
}

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: seed OUTDIR"));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&fixtures)
        .expect("tests/fixtures")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "src"))
        .collect();
    dirs.sort();
    let mut per_type: HashMap<u16, usize> = HashMap::new();
    for dir in dirs {
        let tag = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut names: Vec<PathBuf> = fs::read_dir(&dir).expect("fixture dir").flatten().map(|e| e.path()).collect();
        names.sort();
        let mut files = Vec::new();
        for p in names {
            let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
            let Ok(data) = fs::read(&p) else { continue };
            if !p.is_file() || name.ends_with(".md") || data.len() > 256 << 10 {
                continue;
            }
            let Ok(rd) = ImageReader::open(&data[..]) else { continue };
            drop(rd);
            if data.len() <= 64 << 10 && !name.starts_with("pages-") {
                files.push((name.clone(), data.clone()));
            }
            for (ctl, what) in [(0x00u8, "raw"), (0x13, "nice"), (0x2a, "nopl")] {
                let mut v = vec![ctl];
                v.extend_from_slice(&data);
                put(&out, "decode", &format!("{tag}-{name}-{what}"), &v);
            }
            for (nice, what) in [(false, "raw"), (true, "nice")] {
                if let Ok(j) = transcode::decode(&data[..], Vec::new(), DecodeOptions { nice, no_payload: false }) {
                    put(&out, "encode", &format!("{tag}-{name}-{what}.json"), &j);
                    if !nice {
                        put(&out, "json", &format!("{tag}-{name}.json"), &j);
                    }
                }
            }
            let mut rd = ImageReader::open(&data[..]).expect("opened above");
            while let Ok(Some(item)) = rd.next_item() {
                let id = item.msg.ty.0;
                let n = per_type.entry(id).or_default();
                if *n >= 3 {
                    continue;
                }
                *n += 1;
                let mut v = id.to_le_bytes().to_vec();
                v.extend_from_slice(&item.msg.to_bytes());
                put(&out, "message", &format!("{}-{n}", item.msg.ty.desc().name), &v);
            }
        }
        if files.iter().any(|(n, _)| n == "pstree.img") {
            put(&out, "x", &tag, &join_dir(&files));
            put(&out, "views", &tag, &join_dir(&files));
        }
        if tag == "criu41-pipes" {
            archives(&out, &dir);
        }
    }
    // Requests as CRIU sends them to the image streamer, and --set edits.
    let mut reqs = vec![0u8];
    for name in ["inventory.img", "pstree.img", "pages-1.img"] {
        let mut m = crit::wire::Message::new(crit::schema::msg::IMG_STREAMER_REQUEST_ENTRY);
        m.set("filename", crit::wire::Value::Str(name.as_bytes().to_vec())).expect("filename field");
        let b = m.to_bytes();
        reqs.extend_from_slice(&(b.len() as u32).to_le_bytes());
        reqs.extend_from_slice(&b);
    }
    put(&out, "stream", "requests", &reqs);
    for (i, set) in ["pstree.img:entries.0.pid=7", "core-1.img:entries.0.tc.comm=\"x\"", "pstree.img:entries.1={}"].iter().enumerate() {
        put(&out, "stream", &format!("set-{i}"), &[b"\x01", set.as_bytes()].concat());
    }
}

/// A container checkpoint archive of a fixture: images under checkpoint/,
/// plain, gzip and zstd.
fn archives(out: &Path, dir: &Path) {
    let tmp = std::env::temp_dir().join(format!("crit-seed-{}", std::process::id()));
    let ck = tmp.join("checkpoint");
    fs::create_dir_all(&ck).expect("scratch");
    for e in fs::read_dir(dir).expect("fixture").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("pages-") && !name.ends_with(".md") {
            let _ = fs::copy(e.path(), ck.join(&name));
        }
    }
    let _ = fs::write(tmp.join("config.dump"), b"{}");
    for (flag, ext) in [("", "tar"), ("-z", "tar.gz"), ("--zstd", "tar.zst")] {
        let file = tmp.join(format!("a.{ext}"));
        let mut cmd = std::process::Command::new("tar");
        cmd.arg("-C").arg(&tmp).arg("-cf").arg(&file);
        if !flag.is_empty() {
            cmd.arg(flag);
        }
        if cmd.arg("checkpoint").arg("config.dump").status().is_ok_and(|s| s.success()) {
            if let Ok(d) = fs::read(&file) {
                put(out, "archive", ext, &d);
            }
        }
    }
    let _ = fs::remove_dir_all(&tmp);
}
