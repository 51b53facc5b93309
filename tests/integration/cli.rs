//! The command line as crit's own test (test/others/crit/test.sh) drives
//! it, and the error contract: crit's messages where crit has them, one
//! clear line otherwise, exit 1, nothing written on error.

use std::path::Path;
use std::process::Command;

use crate::util::*;

fn sh(script: &str, dir: &Path) -> std::process::Output {
    Command::new("sh").arg("-c").arg(script).current_dir(dir).env("CRIT", crit_bin()).output().unwrap()
}

fn first_image(dir: &Path) -> std::path::PathBuf {
    images(dir).into_iter().find(|p| p.extension().is_some_and(|e| e == "img") && !is_raw_image(p)).unwrap()
}

const UNKNOWN_MAGIC_TAIL: &str = "Maybe you are feeding me an image with raw data(i.e. pages.img)?";
const NOT_JSON: &str =
    "Cannot read JSON.\nMaybe you are feeding me an image with protobuf data? Encode expects JSON input.\n";

#[test]
fn decode_and_encode_in_all_nine_io_combinations() {
    let fx = &fixtures()[0];
    let img = first_image(fx);
    let tmp = TempDir::new("matrix");
    let d = tmp.path();
    std::fs::copy(&img, d.join("in.img")).unwrap();
    let ok = crit(&["decode", "-i", d.join("in.img").to_str().unwrap(), "-o", d.join("in.json").to_str().unwrap()]);
    assert!(ok.status.success());
    let json = std::fs::read(d.join("in.json")).unwrap();
    assert_ne!(json.last(), Some(&b'\n'), "-o output has no trailing newline");
    let mut with_nl = json.clone();
    with_nl.push(b'\n');
    let inputs = [("cat in.X | $CRIT CMD", "pipe"), ("$CRIT CMD -i in.X", "-i"), ("$CRIT CMD < in.X", "<")];
    let outputs = ["", " -o out.Y", " > out.Y"];
    for (cmd, x, expect_json) in [("decode", "img", true), ("encode", "json", false)] {
        for (inp, _) in inputs {
            for out in outputs {
                let _ = std::fs::remove_file(d.join("out.Y"));
                let script = format!("{}{}", inp.replace("CMD", cmd).replace('X', x), out);
                let o = sh(&script, d);
                assert!(o.status.success(), "{script}: {}", String::from_utf8_lossy(&o.stderr));
                let got = if out.is_empty() { o.stdout } else { std::fs::read(d.join("out.Y")).unwrap() };
                let expect = if expect_json {
                    if out.contains("-o") {
                        &json
                    } else {
                        &with_nl
                    }
                } else {
                    &std::fs::read(&img).unwrap()
                };
                assert_eq!(&got, expect, "{script}");
            }
        }
        // The wrong kind of input fails with crit's message, in every form.
        let wrong = if cmd == "decode" { "json" } else { "img" };
        for (inp, _) in inputs {
            for out in ["", " -o bad.Y"] {
                let script = format!("{}{}", inp.replace("CMD", cmd).replace('X', wrong), out);
                let o = sh(&script, d);
                assert_eq!(o.status.code(), Some(1), "{script}");
                let err = String::from_utf8_lossy(&o.stderr);
                if cmd == "decode" {
                    assert!(err.starts_with("Unknown magic 0x"), "{script}: {err}");
                    assert!(err.trim_end().ends_with(UNKNOWN_MAGIC_TAIL), "{script}: {err}");
                } else {
                    assert_eq!(err, NOT_JSON, "{script}");
                }
                assert!(o.stdout.is_empty(), "{script}: nothing on stdout");
                assert!(!d.join("bad.Y").exists(), "{script}: no output file on error");
            }
        }
    }
}

#[test]
fn json_fed_to_decode_is_crits_unknown_magic() {
    let tmp = TempDir::new("magic");
    let f = tmp.path().join("x.json");
    std::fs::write(&f, b"{\"magic\": \"PSTREE\", \"entries\": []}").unwrap();
    let o = crit(&["decode", "-i", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stderr), format!("Unknown magic 0x616d227b.\n{UNKNOWN_MAGIC_TAIL}\n"));
    // A negative magic prints as Python's %#x does.
    std::fs::write(&f, [0xff, 0xff, 0xff, 0xff]).unwrap();
    let o = crit(&["decode", "-i", f.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&o.stderr), format!("Unknown magic -0x1.\n{UNKNOWN_MAGIC_TAIL}\n"));
}

#[test]
fn raw_pages_image_is_unknown_magic() {
    for fx in fixtures() {
        let pages = images(&fx).into_iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with("pages-"));
        let Some(pages) = pages else { continue };
        let data = std::fs::read(&pages).unwrap();
        let m = i32::from_le_bytes(data[..4].try_into().unwrap());
        let o = crit(&["show", pages.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        let expect = format!("Unknown magic {}.\n{UNKNOWN_MAGIC_TAIL}\n", crit::error::py_hex(m as i64));
        assert_eq!(String::from_utf8_lossy(&o.stderr), expect);
        return;
    }
    panic!("no pages image in the fixtures");
}

#[test]
fn errors_name_file_offset_entry_and_field() {
    let fx = &fixtures()[0];
    let pstree = std::fs::read(fx.join("pstree.img")).unwrap();
    let tmp = TempDir::new("err");
    // Truncated inside the first entry.
    let cut = tmp.path().join("pstree.img");
    std::fs::write(&cut, &pstree[..pstree.len() - 3]).unwrap();
    let o = crit(&["decode", "-i", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("crit: "), "{err}");
    assert!(err.contains(cut.to_str().unwrap()) && err.contains("offset 12") && err.contains("entry 0"), "{err}");
    assert!(err.contains("truncated"), "{err}");
    // A bad JSON value names the entry and the field.
    let json = tmp.path().join("bad.json");
    std::fs::write(
        &json,
        br#"{"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 1, "sid": 1}, {"pid": "x1"}]}"#,
    )
    .unwrap();
    let o = crit(&["encode", "-i", json.to_str().unwrap(), "-o", tmp.path().join("o.img").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("entry 1") && err.contains("field pid") && err.contains("\"x1\""), "{err}");
    assert!(!tmp.path().join("o.img").exists());
    // Missing required fields are named.
    std::fs::write(&json, br#"{"magic": "PSTREE", "entries": [{"pid": 1}]}"#).unwrap();
    let o = crit(&["encode", "-i", json.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("missing required fields: ppid,pgid,sid"), "{err}");
    // A missing input file.
    let o = crit(&["decode", "-i", "/nonexistent/x.img"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.img"));
}

#[test]
fn failed_output_leaves_existing_file_untouched() {
    let tmp = TempDir::new("atomic");
    let out = tmp.path().join("keep.img");
    std::fs::write(&out, b"precious").unwrap();
    let json = tmp.path().join("bad.json");
    std::fs::write(
        &json,
        br#"{"magic": "PSTREE", "entries": [{"pid": 1, "ppid": 0, "pgid": 1, "sid": 1}, {"pid": -1}]}"#,
    )
    .unwrap();
    let o = crit(&["encode", "-i", json.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(left.len(), 2, "no temporary file left behind");
}

#[test]
fn in_place_recode_is_safe() {
    let fx = &fixtures()[0];
    let tmp = TempDir::new("inplace");
    let img = tmp.path().join("pstree.img");
    std::fs::copy(fx.join("pstree.img"), &img).unwrap();
    let j = tmp.path().join("p.json");
    assert!(crit(&["decode", "-i", img.to_str().unwrap(), "-o", j.to_str().unwrap()]).status.success());
    assert!(
        crit(&["decode", "-f", "nice", "-i", j.to_str().unwrap(), "-o", j.to_str().unwrap()]).status.code() == Some(1)
    );
    assert!(j.exists() && std::fs::read(&j).unwrap().starts_with(b"{\"magic\""), "failed in-place run kept the file");
    assert!(crit(&["encode", "-i", j.to_str().unwrap(), "-o", img.to_str().unwrap()]).status.success());
    assert_eq!(std::fs::read(&img).unwrap(), std::fs::read(fx.join("pstree.img")).unwrap());
}

#[test]
fn format_flag_and_pretty_agree() {
    let fx = &fixtures()[0];
    let core = first_image(fx);
    let a = crit(&["decode", "--pretty", "-i", core.to_str().unwrap()]);
    let b = crit(&["decode", "-f", "nice", "-i", core.to_str().unwrap()]);
    let c = crit(&["show", core.to_str().unwrap()]);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.stdout, c.stdout);
    // Piped stdout defaults to raw, so scripts keep working.
    let d = crit(&["decode", "-i", core.to_str().unwrap()]);
    let e = crit(&["decode", "-f", "raw", "-i", core.to_str().unwrap()]);
    assert_eq!(d.stdout, e.stdout);
    assert!(!d.stdout[..d.stdout.len() - 1].contains(&b'\n'));
}

#[test]
fn usage_errors_exit_2_and_no_command_exits_1() {
    assert_eq!(crit(&["decode", "--bogus"]).status.code(), Some(2));
    assert_eq!(crit(&["decode", "-f", "fancy"]).status.code(), Some(2));
    let o = crit(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("too few arguments"));
    let v = crit(&["--version"]);
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).contains("4.2"));
}

#[test]
fn info_prints_crits_layout() {
    let fx = &fixtures()[0];
    let o = crit(&["info", fx.join("pstree.img").to_str().unwrap()]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("{\n    \"magic\": \"PSTREE\",\n    \"count\": "), "{text}");
    assert!(text.ends_with("\n}\n"));
}
