//! `crit serve` / `crit capture` against an in-process CRIU double (protocol
//! edge cases) and against the real CRIU (root only).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crit::stream::{self, CaptureOptions, Edit, Progress, ServeOptions};

use crate::util::*;

fn connect(sock: &Path) -> UnixStream {
    for _ in 0..500 {
        if let Ok(s) = UnixStream::connect(sock) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no listener on {}", sock.display());
}

/// CRIU's restore side: ask for a file, get the read end of its pipe.
fn open_served(s: &mut UnixStream, name: &str) -> Option<File> {
    stream::write_request(s, name).unwrap();
    if !stream::read_reply(s).unwrap() {
        return None;
    }
    let (r, w) = nix::unistd::pipe().unwrap();
    stream::send_fd(s, &w).unwrap();
    drop(w);
    Some(File::from(r))
}

fn fetch(s: &mut UnixStream, name: &str) -> Option<Vec<u8>> {
    let mut f = open_served(s, name)?;
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    Some(v)
}

fn run_serve(dir: &Path, opts: ServeOptions) -> mpsc::Receiver<crit::Result<stream::Summary>> {
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(stream::serve(&dir, &opts, Progress::new(None)));
    });
    rx
}

fn fixture_copy(tag: &str) -> (TempDir, PathBuf) {
    let fx = fixtures().into_iter().find(|f| f.ends_with("criu42-sleep")).unwrap();
    let tmp = TempDir::new(tag);
    for img in images(&fx) {
        std::fs::copy(&img, tmp.path().join(img.file_name().unwrap())).unwrap();
    }
    (tmp, fx)
}

#[test]
fn serve_answers_every_request_and_converts_json() {
    let (tmp, fx) = fixture_copy("serve");
    let d = tmp.path();
    // One image as crit JSON under its own name, one as NAME.json, one
    // file that is no image at all (a plugin's).
    let pstree = std::fs::read(fx.join("pstree.img")).unwrap();
    std::fs::write(d.join("pstree.img"), decode_bytes(&pstree, true, false).unwrap()).unwrap();
    let inventory = std::fs::read(fx.join("inventory.img")).unwrap();
    std::fs::remove_file(d.join("inventory.img")).unwrap();
    std::fs::write(d.join("inventory.img.json"), decode_bytes(&inventory, false, false).unwrap()).unwrap();
    std::fs::write(d.join("plugin-data.bin"), b"\x00\x01opaque").unwrap();
    let done = run_serve(d, ServeOptions::default());
    let mut s = connect(&d.join(stream::SERVE_SOCKET));
    assert_eq!(fetch(&mut s, "inventory.img").as_deref(), Some(&inventory[..]));
    assert_eq!(fetch(&mut s, "pstree.img").as_deref(), Some(&pstree[..]));
    assert_eq!(fetch(&mut s, "plugin-data.bin").as_deref(), Some(&b"\x00\x01opaque"[..]));
    assert_eq!(fetch(&mut s, "pidns-1.img"), None);
    assert_eq!(fetch(&mut s, "../inventory.img"), None);
    let pages = std::fs::read(fx.join("pages-1.img")).unwrap();
    assert_eq!(fetch(&mut s, "pages-1.img").as_deref(), Some(&pages[..]));
    // Repeated requests are fine.
    assert_eq!(fetch(&mut s, "pstree.img").as_deref(), Some(&pstree[..]));
    drop(s);
    let sum = done.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    assert_eq!(sum.missing, vec!["pidns-1.img".to_string()]);
    assert_eq!(sum.refused, vec!["../inventory.img".to_string()]);
    assert!(!sum.ok(), "a refused name is reported");
    assert!(sum.files.iter().all(|f| f.problem.is_none()), "{:?}", sum.files);
    assert!(!d.join(stream::SERVE_SOCKET).exists(), "socket removed after accept");
}

#[test]
fn serve_applies_set_and_patch_edits() {
    let (tmp, fx) = fixture_copy("edit");
    let d = tmp.path();
    let core_name =
        images(&fx).into_iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with("core-")).unwrap();
    let core_name = core_name.file_name().unwrap().to_string_lossy().into_owned();
    let patch = d.join("p.json");
    std::fs::write(&patch, br#"[{"op": "replace", "path": "/entries/0/pid", "value": 4242}]"#).unwrap();
    let opts = ServeOptions {
        edits: vec![
            Edit::parse_set(&format!("{core_name}:entries.0.tc.comm=\"edited\"")).unwrap(),
            Edit::parse_patch(&format!("pstree.img={}", patch.display())).unwrap(),
        ],
    };
    let done = run_serve(d, opts);
    let mut s = connect(&d.join(stream::SERVE_SOCKET));
    let core = fetch(&mut s, &core_name).unwrap();
    let pstree = fetch(&mut s, "pstree.img").unwrap();
    drop(s);
    done.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    let json = String::from_utf8(decode_bytes(&core, false, false).unwrap()).unwrap();
    assert!(json.contains("\"comm\": \"edited\""), "{json}");
    let json = String::from_utf8(decode_bytes(&pstree, false, false).unwrap()).unwrap();
    assert!(json.contains("\"pid\": 4242"), "{json}");
    // A bad edit is refused before anything is served.
    assert!(Edit::parse_set("core.img:entries.0=notjson").is_err());
    assert!(stream::check_edits(d, &ServeOptions { edits: vec![Edit::parse_set("nope.img:a=1").unwrap()] }).is_err());
}

/// Build a pagemap of `n` single-page runs and the matching pages file.
fn big_pagemap(dir: &Path, n: u64) {
    let mut json = String::from("{\"magic\": \"PAGEMAP\", \"entries\": [{\"pages_id\": 1}");
    for i in 0..n {
        json.push_str(&format!(
            ", {{\"vaddr\": {}, \"compat_nr_pages\": 0, \"flags\": 4, \"nr_pages\": 1}}",
            0x7f0000000000u64 + i * 8192
        ));
    }
    json.push_str("]}");
    let img = encode_bytes(json.as_bytes()).unwrap();
    std::fs::write(dir.join("pagemap-1.img"), &img).unwrap();
    let page = vec![0xabu8; 4096];
    let mut f = File::create(dir.join("pages-1.img")).unwrap();
    for _ in 0..n {
        f.write_all(&page).unwrap();
    }
}

#[test]
fn serve_does_not_deadlock_on_a_large_pagemap() {
    let tmp = TempDir::new("deadlock");
    let d = tmp.path();
    big_pagemap(d, 150_000);
    assert!(std::fs::metadata(d.join("pagemap-1.img")).unwrap().len() > 2 << 20);
    let done = run_serve(d, ServeOptions::default());
    let mut s = connect(&d.join(stream::SERVE_SOCKET));
    // As CRIU does: read the head of the pagemap only, then ask for the
    // pages and read them all, then the rest of the pagemap.
    let mut pm = open_served(&mut s, "pagemap-1.img").unwrap();
    let mut head = vec![0u8; 4096];
    pm.read_exact(&mut head).unwrap();
    let pages = fetch(&mut s, "pages-1.img").unwrap();
    assert_eq!(pages.len(), 150_000 * 4096);
    let mut rest = Vec::new();
    pm.read_to_end(&mut rest).unwrap();
    assert_eq!(head.len() + rest.len() as usize, std::fs::metadata(d.join("pagemap-1.img")).unwrap().len() as usize);
    drop(s);
    assert!(done.recv_timeout(Duration::from_secs(60)).unwrap().unwrap().ok());
}

#[test]
fn serve_survives_criu_closing_a_pipe_early() {
    let tmp = TempDir::new("early");
    let d = tmp.path();
    big_pagemap(d, 20_000);
    let done = run_serve(d, ServeOptions::default());
    let mut s = connect(&d.join(stream::SERVE_SOCKET));
    let mut f = open_served(&mut s, "pages-1.img").unwrap();
    let mut some = vec![0u8; 1000];
    f.read_exact(&mut some).unwrap();
    drop(f);
    drop(s);
    let sum = done.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    assert!(sum.ok(), "{sum:?}");
    assert!(sum.files.iter().any(|f| f.name == "pages-1.img" && f.closed_early));
}

/// CRIU's dump side: send files whose writes interleave.
fn send_files(sock: &Path, files: &[(String, Vec<u8>)]) {
    let mut s = connect(sock);
    let mut writers = Vec::new();
    for (name, _) in files {
        stream::write_request(&mut s, name).unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        stream::send_fd(&s, &r).unwrap();
        drop(r);
        writers.push(File::from(w));
    }
    drop(s); // the socket closes before the pipes: capture must still drain them
    let mut pos = vec![0usize; files.len()];
    loop {
        let mut any = false;
        for (i, (_, data)) in files.iter().enumerate() {
            if pos[i] < data.len() {
                let end = (pos[i] + 3000).min(data.len());
                writers[i].write_all(&data[pos[i]..end]).unwrap();
                pos[i] = end;
                any = true;
            }
        }
        if !any {
            break;
        }
    }
}

fn run_capture(dir: &Path, json: bool) -> mpsc::Receiver<crit::Result<stream::Summary>> {
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(stream::capture(&dir, &CaptureOptions { json }, Progress::new(None)));
    });
    rx
}

#[test]
fn capture_drains_interleaved_pipes_and_serve_gives_them_back() {
    let fx = fixtures().into_iter().find(|f| f.ends_with("criu41-pipes")).unwrap();
    let files: Vec<(String, Vec<u8>)> = images(&fx)
        .iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(p).unwrap()))
        .collect();
    for json in [false, true] {
        let tmp = TempDir::new("capture");
        let d = tmp.path();
        let done = run_capture(d, json);
        send_files(&d.join(stream::CAPTURE_SOCKET), &files);
        let sum = done.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
        assert!(sum.ok(), "{sum:?}");
        assert_eq!(sum.files.len(), files.len());
        // Serve what was captured (binary or JSON) and compare.
        let served = run_serve(d, ServeOptions::default());
        let mut s = connect(&d.join(stream::SERVE_SOCKET));
        for (name, data) in &files {
            assert_eq!(fetch(&mut s, name).as_ref(), Some(data), "{name} (json: {json})");
        }
        drop(s);
        served.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    }
}

#[test]
fn capture_without_inventory_is_an_incomplete_dump() {
    let tmp = TempDir::new("incomplete");
    let d = tmp.path();
    let done = run_capture(d, false);
    send_files(&d.join(stream::CAPTURE_SOCKET), &[("core-1.img".into(), vec![1, 2, 3])]);
    let sum = done.recv_timeout(Duration::from_secs(30)).unwrap().unwrap();
    assert!(!sum.ok());
    assert!(sum.files.iter().any(|f| f.problem.as_deref().is_some_and(|p| p.contains("incomplete"))));
}

// ---------------------------------------------------------------------------
// With the real CRIU.

fn criu_ready() -> Option<&'static Reference> {
    if !is_root() {
        eprintln!("SKIP: needs root to dump and restore with CRIU");
        return None;
    }
    reference()
}

fn crit_bg(args: &[&str]) -> std::process::Child {
    Command::new(crit_bin()).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn wait_line(child: &mut std::process::Child, want: &str) {
    let out = child.stdout.as_mut().unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while out.read(&mut b).unwrap_or(0) == 1 {
        buf.push(b[0]);
        if buf.ends_with(b"\n") && String::from_utf8_lossy(&buf).contains(want) {
            return;
        }
    }
    panic!("no {want:?} from crit: {}", String::from_utf8_lossy(&buf));
}

fn finish(child: std::process::Child) {
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "crit failed: {}", String::from_utf8_lossy(&o.stderr));
}

/// Dump `pid` through `crit capture` (binary or JSON) into `dir`.
fn dump_streamed(r: &Reference, dir: &Path, pid: u32, json: bool) {
    let d = dir.to_str().unwrap();
    let args: Vec<&str> = if json { vec!["capture", "--json", d] } else { vec!["capture", d] };
    let mut cap = crit_bg(&args);
    wait_line(&mut cap, "socket-init");
    let o = Command::new(r.criu())
        .args(["dump", "--stream", "-v4", "-o", "dump.log", "-t", &pid.to_string(), "-D", d])
        .output()
        .unwrap();
    assert!(o.status.success(), "criu dump --stream failed:\n{}", errors_of(&dir.join("dump.log")));
    finish(cap);
}

fn restore_streamed(r: &Reference, dir: &Path, extra: &[&str]) {
    let d = dir.to_str().unwrap();
    let mut args = vec!["serve", d];
    args.extend_from_slice(extra);
    let mut srv = crit_bg(&args);
    wait_line(&mut srv, "socket-init");
    let o = Command::new(r.criu())
        .args(["restore", "--stream", "-d", "-v4", "-o", "restore.log", "-D", d])
        .output()
        .unwrap();
    assert!(o.status.success(), "criu restore --stream failed:\n{}", errors_of(&dir.join("restore.log")));
    finish(srv);
}

fn comm_and_kill(pid: u32) -> String {
    let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    kill_and_reap(pid);
    c
}

#[test]
fn real_criu_dumps_and_restores_through_capture_and_serve() {
    let Some(r) = criu_ready() else { return };
    // Binary images.
    let tmp = TempDir::new("real-bin");
    let (mut child, pid) = spawn_sleep();
    dump_streamed(r, tmp.path(), pid, false);
    let _ = child.wait();
    assert!(tmp.path().join("inventory.img").exists());
    restore_streamed(r, tmp.path(), &[]);
    assert_eq!(comm_and_kill(pid), "sleep\n");
    // JSON images, restored with an edit.
    let tmp = TempDir::new("real-json");
    let (mut child, pid) = spawn_sleep();
    dump_streamed(r, tmp.path(), pid, true);
    let _ = child.wait();
    assert!(tmp.path().join(format!("core-{pid}.img.json")).exists());
    let set = format!("core-{pid}.img:entries.0.tc.comm=\"edited\"");
    restore_streamed(r, tmp.path(), &["--set", &set]);
    assert_eq!(comm_and_kill(pid), "edited\n");
}

#[test]
fn real_criu_restores_a_fragmented_pagemap_through_serve() {
    let Some(r) = criu_ready() else { return };
    let tmp = TempDir::new("frag");
    let bin = tmp.path().join("frag");
    let cc = Command::new("cc").args(["-O1", "-o"]).arg(&bin).arg(root().join("tests/src/frag.c")).output();
    match cc {
        Ok(o) if o.status.success() => {}
        _ => {
            eprintln!("SKIP: no C compiler");
            return;
        }
    }
    let ready = tmp.path().join("ready");
    let mut child = dumpable(Command::new("setsid").arg(&bin).arg("140000").arg(&ready)).spawn().unwrap();
    let pid = child.id();
    for _ in 0..500 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let dir = tmp.path().join("img");
    std::fs::create_dir(&dir).unwrap();
    let o = Command::new(r.criu())
        .args(["dump", "-v4", "-o", "dump.log", "-t", &pid.to_string(), "-D"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "criu dump failed:\n{}", errors_of(&dir.join("dump.log")));
    let _ = child.wait();
    let pm = std::fs::metadata(dir.join(format!("pagemap-{pid}.img"))).unwrap().len();
    assert!(pm > 2 << 20, "pagemap is only {pm} bytes");
    restore_streamed(r, &dir, &[]);
    let comm = comm_and_kill(pid);
    assert_eq!(comm, "frag\n");
}

#[test]
fn real_criu_starts_crit_from_its_pre_stream_action_script() {
    let Some(r) = criu_ready() else { return };
    let tmp = TempDir::new("hook");
    let hook = tmp.path().join("hook.sh");
    let log = tmp.path().join("crit.log");
    let dir = tmp.path().join("img");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = pre-stream ] || exit 0\nexec {} \"$CRIT_MODE\" \"$CRTOOLS_IMAGE_DIR\" --detach --log {} >/dev/null\n",
            crit_bin().display(),
            log.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&hook).status().unwrap();
    let wait_log = |word: &str| {
        for _ in 0..1000 {
            if std::fs::read_to_string(&log).unwrap_or_default().contains(word) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("crit did not finish: {}", std::fs::read_to_string(&log).unwrap_or_default());
    };
    let (mut child, pid) = spawn_sleep();
    let o = Command::new(r.criu())
        .env("CRIT_MODE", "capture")
        .args(["dump", "--stream", "-v4", "-o", "dump.log", "--action-script"])
        .arg(&hook)
        .args(["-t", &pid.to_string(), "-D"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "criu dump failed:\n{}", errors_of(&dir.join("dump.log")));
    let _ = child.wait();
    wait_log("captured");
    assert!(dir.join("inventory.img").exists());
    let o = Command::new(r.criu())
        .env("CRIT_MODE", "serve")
        .args(["restore", "--stream", "-d", "-v4", "-o", "restore.log", "--action-script"])
        .arg(&hook)
        .arg("-D")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "criu restore failed:\n{}", errors_of(&dir.join("restore.log")));
    wait_log("served");
    assert_eq!(comm_and_kill(pid), "sleep\n");
}

#[test]
fn serve_converts_to_an_older_layout_on_the_fly() {
    let (tmp, fx) = fixture_copy("serve-convert");
    let d = tmp.path();
    let before: Vec<(String, Vec<u8>)> = images(d)
        .iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(p).unwrap()))
        .collect();
    let mut srv = crit_bg(&["serve", d.to_str().unwrap(), "--convert-to", "4.1"]);
    wait_line(&mut srv, "socket-init");
    let mut s = connect(&d.join(stream::SERVE_SOCKET));
    let pm_name = images(&fx)
        .into_iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .find(|n| n.starts_with("pagemap-"))
        .unwrap();
    let pm = fetch(&mut s, &pm_name).unwrap();
    let inv = fetch(&mut s, "inventory.img").unwrap();
    drop(s);
    finish(srv);
    assert_eq!(inv, std::fs::read(fx.join("inventory.img")).unwrap());
    let rd = crit::image::ImageReader::open(&pm[..]).unwrap();
    let mut n = 0;
    for it in rd {
        let (it, _) = it.unwrap();
        if it.role == crit::image::Role::PagemapEntry {
            assert_eq!(it.msg.u64("compat_nr_pages"), it.msg.u64("nr_pages"));
            n += 1;
        }
    }
    assert!(n > 0);
    // The images directory is as it was, and nothing is left beside it.
    for (name, data) in before {
        assert_eq!(std::fs::read(d.join(&name)).unwrap(), data, "{name}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(d.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".crit-serve-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn real_criu_41_restores_a_42_layout_served_with_convert_to() {
    let Some(r) = criu_ready() else { return };
    let tmp = TempDir::new("real-conv");
    let dump = tmp.path().join("dump");
    std::fs::create_dir(&dump).unwrap();
    let (mut child, pid) = spawn_sleep();
    let o = Command::new(r.criu())
        .args(["dump", "-v4", "-o", "dump.log", "-t", &pid.to_string(), "-D"])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", errors_of(&dump.join("dump.log")));
    let _ = child.wait();
    // The 4.2 layout, which CRIU 4.1.1 cannot restore as it is ...
    let up = tmp.path().join("up");
    crit::convert::convert(
        &dump,
        &up,
        &crit::convert::Options { to: crit::convert::Version(4, 2), force: false, link: false },
    )
    .unwrap();
    // ... converted back while it is served.
    restore_streamed(r, &up, &["--convert-to", "4.1"]);
    assert_eq!(comm_and_kill(pid), "sleep\n");
}

#[test]
fn real_criu_restores_a_pre_dump_chain_through_serve() {
    let Some(r) = criu_ready() else { return };
    let tmp = TempDir::new("real-chain");
    let dump = tmp.path().join("dump");
    std::fs::create_dir(&dump).unwrap();
    let (mut child, pid) = spawn_sleep();
    let o = Command::new(r.criu())
        .args(["dump", "-v4", "-o", "dump.log", "-t", &pid.to_string(), "-D"])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", errors_of(&dump.join("dump.log")));
    let _ = child.wait();
    let chain = tmp.path().join("chain");
    std::fs::create_dir(&chain).unwrap();
    // CRIU cannot follow parents while streaming: serve flattens the chain.
    let top = crate::mem::three_level_chain(&dump, &chain, pid, false);
    restore_streamed(r, &top, &[]);
    assert_eq!(comm_and_kill(pid), "sleep\n");
}
