//! The views of `crit x` (sk, tree, mounts, files, and the JSON forms of
//! ps/fds/mems/rss) on every fixture: golden files in tests/golden/views/
//! (made by our tool after checking them by eye; `CRIT_BLESS=1 cargo test`
//! rewrites them), counts checked against simple loops over the decoded
//! images, and the same outputs from container checkpoint archives made
//! from the fixtures (.tar, .tar.gz, .tar.zst, and unpacked), and hostile
//! archives refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use crit::checkpoint::Checkpoint;
use crit::explore::Notes;
use crit::json::Json;

use crate::util::*;

/// Every view `x` has, and whether it is text or JSON.
pub const VIEWS: &[(&str, bool)] = &[
    ("ps", true),
    ("fds", true),
    ("mems", true),
    ("rss", true),
    ("sk", false),
    ("sk", true),
    ("tree", false),
    ("tree", true),
    ("mounts", false),
    ("mounts", true),
    ("files", false),
    ("files", true),
];

/// Run one view (or `stats`) through the library.
pub fn render(ck: &Checkpoint, view: &str, json: bool) -> (String, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Notes::default();
    let r = match (view, json) {
        ("ps", false) => crit::explore::ps(ck, &mut out, &mut notes),
        ("fds", false) => crit::explore::fds(ck, &mut out, &mut notes),
        ("mems", false) => crit::explore::mems(ck, &mut out, &mut notes),
        ("rss", false) => crit::explore::rss(ck, &mut out, &mut notes),
        ("ps", true) => crit::views::ps_json(ck, &mut out, &mut notes),
        ("fds", true) => crit::views::fds_json(ck, &mut out, &mut notes),
        ("mems", true) => crit::views::mems_json(ck, &mut out, &mut notes),
        ("rss", true) => crit::views::rss_json(ck, &mut out, &mut notes),
        ("sk", j) => crit::views::sk(ck, &mut out, &mut notes, j),
        ("tree", j) => crit::views::tree(ck, &mut out, &mut notes, j),
        ("mounts", j) => crit::views::mounts(ck, &mut out, &mut notes, j),
        ("files", j) => crit::views::files(ck, &mut out, &mut notes, j),
        ("stats", j) => crit::stats::stats(ck, &mut out, &mut notes, j),
        (v, _) => panic!("no view {v}"),
    };
    r.unwrap_or_else(|e| panic!("{} x {view}: {e}", ck.source().display()));
    (String::from_utf8(out).unwrap(), notes.problems)
}

/// The path of the repository as it appears in outputs, made relative.
pub fn relative(s: &str) -> String {
    s.replace(&format!("{}/", root().display()), "")
}

/// Compare with a golden file, or write it when CRIT_BLESS is set.
pub fn golden(path: &Path, got: &str, failures: &mut Vec<String>) {
    if std::env::var_os("CRIT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, got).unwrap();
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(expect) if expect == got => {}
        Ok(expect) => {
            let line = got.lines().zip(expect.lines()).position(|(a, b)| a != b).unwrap_or(0);
            failures.push(format!(
                "{} differs at line {}:\n  ours:   {:?}\n  golden: {:?}",
                path.display(),
                line + 1,
                got.lines().nth(line).unwrap_or("<end>"),
                expect.lines().nth(line).unwrap_or("<end>")
            ));
        }
        Err(e) => failures.push(format!("{}: {e} (CRIT_BLESS=1 writes it)", path.display())),
    }
}

pub fn views_golden_dir(fx: &Path) -> PathBuf {
    root().join("tests/golden/views").join(fx.file_name().unwrap())
}

fn parse(s: &str) -> Json {
    crit::json::parse::parse_slice(s.as_bytes()).unwrap()
}

/// Decode an image to our raw JSON (the codec, not the views).
pub fn decoded(p: &Path) -> Json {
    let data = std::fs::read(p).unwrap();
    parse(std::str::from_utf8(&decode_bytes(&data, false, false).unwrap()).unwrap())
}

pub fn entries(p: &Path) -> Vec<Json> {
    match decoded(p).get("entries") {
        Some(Json::Arr(a)) => a.clone(),
        _ => Vec::new(),
    }
}

pub fn int(j: Option<&Json>) -> i128 {
    match j {
        Some(Json::Int(i)) => *i,
        _ => 0,
    }
}

pub fn arr(j: Option<&Json>) -> Vec<Json> {
    match j {
        Some(Json::Arr(a)) => a.clone(),
        _ => Vec::new(),
    }
}

pub fn string(j: Option<&Json>) -> String {
    match j {
        Some(Json::Str(s)) => String::from_utf8_lossy(s).into_owned(),
        _ => String::new(),
    }
}

#[test]
fn views_match_goldens() {
    let mut failures = Vec::new();
    for fx in fixtures() {
        let ck = Checkpoint::open(&fx).unwrap();
        let gdir = views_golden_dir(&fx);
        for &(view, json) in VIEWS {
            let (out, notes) = render(&ck, view, json);
            if !notes.is_empty() {
                failures.push(format!("{} x {view}: problems {notes:?}", fx.display()));
            }
            if json {
                // Well-formed JSON, always.
                crit::json::parse::parse_slice(out.as_bytes())
                    .unwrap_or_else(|e| panic!("{} x {view} --json: {e}", fx.display()));
            }
            let name = if json { format!("{view}.json") } else { format!("{view}.txt") };
            golden(&gdir.join(name), &relative(&out), &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn images_named(fx: &Path, prefix: &str) -> Vec<PathBuf> {
    images(fx).into_iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix)).collect()
}

#[test]
fn sk_lists_every_socket_of_files_img() {
    let mut seen = 0;
    for fx in fixtures() {
        let ck = Checkpoint::open(&fx).unwrap();
        let (out, _) = render(&ck, "sk", true);
        let socks = arr(parse(&out).get("sockets"));
        // Independent count: socket entries of files.img.
        let files = entries(&fx.join("files.img"));
        let expect: Vec<i128> =
            files.iter().filter(|f| string(f.get("type")).ends_with("SK")).map(|f| int(f.get("id"))).collect();
        let got: Vec<i128> = socks.iter().map(|s| int(s.get("id"))).collect();
        assert_eq!(got, expect, "{}", fx.display());
        seen += got.len();
        // Queued bytes of each socket: the sum of its sk-queues entries
        // (unix), or its tcp-stream queues (TCP).
        let q = if fx.join("sk-queues.img").exists() { entries(&fx.join("sk-queues.img")) } else { Vec::new() };
        for s in &socks {
            let id = int(s.get("id"));
            let fam = string(s.get("family"));
            let sum: i128 = q.iter().filter(|e| int(e.get("id_for")) == id).map(|e| int(e.get("length"))).sum();
            if fam == "UNIX" {
                assert_eq!(int(s.get("recv_queue")), sum, "{} socket {id}", fx.display());
            }
            if string(s.get("proto")) == "TCP" {
                let img = fx.join(format!("tcp-stream-{:x}.img", int(s.get("ino"))));
                if img.exists() {
                    let t = &entries(&img)[0];
                    assert_eq!(int(s.get("recv_queue")), int(t.get("inq_len")));
                    assert_eq!(int(s.get("send_queue")), int(t.get("outq_len")));
                }
            }
            // Owners: the fdinfo entries pointing at it.
            let mut owners = 0;
            for fdi in images_named(&fx, "fdinfo-") {
                owners += entries(&fdi).iter().filter(|e| int(e.get("id")) == id).count();
            }
            assert_eq!(arr(s.get("owners")).len(), owners, "{} socket {id}", fx.display());
        }
    }
    assert!(seen >= 30, "only {seen} sockets in the fixtures");
}

#[test]
fn tcp_queues_are_the_streams() {
    let fx = root().join("tests/fixtures/criu42-tcp");
    let ck = Checkpoint::open(&fx).unwrap();
    let (out, _) = render(&ck, "sk", true);
    let socks = arr(parse(&out).get("sockets"));
    let mut n = 0;
    for img in images_named(&fx, "tcp-stream-") {
        let ino = i128::from_str_radix(
            img.file_name().unwrap().to_string_lossy().trim_start_matches("tcp-stream-").trim_end_matches(".img"),
            16,
        )
        .unwrap();
        let t = &entries(&img)[0];
        let s = socks.iter().find(|s| int(s.get("ino")) == ino).expect("socket of the stream");
        assert_eq!(int(s.get("recv_queue")), int(t.get("inq_len")));
        assert_eq!(int(s.get("send_queue")), int(t.get("outq_len")));
        n += 1;
    }
    assert_eq!(n, 4);
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn tree_reads_command_lines_from_the_pages() {
    let mut checked = 0;
    for fx in fixtures() {
        let ck = Checkpoint::open(&fx).unwrap();
        let (out, notes) = render(&ck, "tree", true);
        assert!(notes.is_empty(), "{}: {notes:?}", fx.display());
        let doc = parse(&out);
        let mut stack = arr(doc.get("processes"));
        let pages: Vec<Vec<u8>> = images_named(&fx, "pages-").iter().map(|p| std::fs::read(p).unwrap()).collect();
        let pstree = entries(&fx.join("pstree.img"));
        let mut procs = 0;
        while let Some(p) = stack.pop() {
            procs += 1;
            stack.extend(arr(p.get("children")));
            let pid = int(p.get("pid"));
            let core = &entries(&fx.join(format!("core-{pid}.img")))[0];
            let dead = int(core.get("tc").and_then(|tc| tc.get("task_state"))) == 2;
            if dead {
                assert_eq!(p.get("cmdline"), Some(&Json::Null));
                assert!(arr(p.get("threads")).is_empty());
                continue;
            }
            // Threads: the pstree entry's list.
            let pe = pstree.iter().find(|e| int(e.get("pid")) == pid).unwrap();
            let tids: Vec<i128> = arr(pe.get("threads")).iter().map(|t| int(Some(t))).collect();
            let got: Vec<i128> = arr(p.get("threads")).iter().map(|t| int(t.get("tid"))).collect();
            assert_eq!(got, tids, "{} {pid}", fx.display());
            // uid from the core's creds.
            let creds = core.get("thread_core").and_then(|t| t.get("creds")).unwrap();
            assert_eq!(int(p.get("creds").and_then(|c| c.get("uid"))), int(creds.get("uid")));
            // Every argument and variable we read is in the raw pages, and
            // the lengths add up to mm_arg_end - mm_arg_start.
            let mm = &entries(&fx.join(format!("mm-{pid}.img")))[0];
            let args = arr(p.get("cmdline"));
            assert!(!args.is_empty(), "{} {pid}: no command line", fx.display());
            let total: i128 = args.iter().map(|a| string(Some(a)).len() as i128 + 1).sum();
            assert_eq!(total, int(mm.get("mm_arg_end")) - int(mm.get("mm_arg_start")), "{} {pid}", fx.display());
            for s in args.iter().chain(arr(p.get("environ")).iter()) {
                let b = string(Some(s)).into_bytes();
                assert!(pages.iter().any(|pg| contains(pg, &b)), "{} {pid}: {:?} not in the pages", fx.display(), s);
            }
            if fx.file_name().unwrap().to_string_lossy().starts_with("criu41-") {
                // scripts/make-fixtures.sh starts each program with FX_WORK set.
                let want = format!("FX_WORK=/tmp/crit-fixtures/{}", fx.file_name().unwrap().to_string_lossy());
                assert!(
                    arr(p.get("environ")).iter().any(|e| string(Some(e)) == want),
                    "{} {pid}: no {want}",
                    fx.display()
                );
            }
            checked += 1;
        }
        assert_eq!(procs, pstree.len(), "{}", fx.display());
    }
    assert!(checked >= 20, "only {checked} command lines checked");
}

#[test]
fn tree_shows_the_zombie() {
    let ck = Checkpoint::open(root().join("tests/fixtures/criu41-tree")).unwrap();
    let (out, _) = render(&ck, "tree", false);
    let line = out.lines().find(|l| l.contains("fx-z")).unwrap();
    assert!(line.contains("(dead, exit status 7)"), "{line}");
}

#[test]
fn mounts_and_files_cover_their_images() {
    for fx in fixtures() {
        let ck = Checkpoint::open(&fx).unwrap();
        // Mounts: every entry of every mountpoints image, once.
        let (out, _) = render(&ck, "mounts", true);
        let mut stack: Vec<Json> =
            arr(parse(&out).get("namespaces")).iter().flat_map(|n| arr(n.get("mounts"))).collect();
        let mut ids = Vec::new();
        while let Some(m) = stack.pop() {
            ids.push(int(m.get("mnt_id")));
            stack.extend(arr(m.get("children")));
        }
        ids.sort();
        let mut expect: Vec<i128> =
            images_named(&fx, "mountpoints-").iter().flat_map(|p| entries(p)).map(|e| int(e.get("mnt_id"))).collect();
        expect.sort();
        assert_eq!(ids, expect, "{}", fx.display());
        // Files: every files.img entry, and every fd of every fdinfo image
        // among the owners.
        let (out, _) = render(&ck, "files", true);
        let files = arr(parse(&out).get("files"));
        assert_eq!(files.len(), entries(&fx.join("files.img")).len(), "{}", fx.display());
        let fds: usize = files.iter().map(|f| arr(f.get("fds")).len()).sum();
        let expect: usize = images_named(&fx, "fdinfo-").iter().map(|p| entries(p).len()).sum();
        assert_eq!(fds, expect, "{}", fx.display());
    }
}

#[test]
fn cli_x_accepts_json_and_new_views() {
    let fx = root().join("tests/fixtures/criu41-unix");
    let out = crit(&["x", fx.to_str().unwrap(), "sk", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ck = Checkpoint::open(&fx).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), render(&ck, "sk", true).0);
    let out = crit(&["x", fx.to_str().unwrap(), "ps"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), render(&ck, "ps", false).0);
    let out = crit(&["x", fx.to_str().unwrap(), "nosuchview"]);
    assert_eq!(out.status.code(), Some(2));
}

// ---------------------------------------------------------------------------
// Archives.

pub const CONFIG_DUMP: &str = r#"{"id":"8d3f0c6a1b2e4f5a9c7d","name":"fixture-web","rootfsImage":"sha256:0123","rootfsImageRef":"0123abcd","rootfsImageName":"docker.io/library/busybox:latest","runtime":"crun","createdTime":"2025-01-02T03:04:05.678Z","checkpointedTime":"2025-01-02T04:05:06Z","restoredTime":"0001-01-01T00:00:00Z","restored":false}"#;
pub const SPEC_DUMP: &str = r#"{"ociVersion":"1.0.2","annotations":{"io.container.manager":"libpod","org.opencontainers.image.stopSignal":"15"}}"#;

/// Lay a fixture out as a Podman checkpoint: the images in checkpoint/,
/// stats-dump, config.dump and spec.dump at the top.  `pad_pages` appends
/// zeros to pages-1.img (past every page the pagemaps use) to make it
/// larger than the archive's in-memory cache.
pub fn podman_layout(fx: &Path, pad_pages: u64) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for img in images(fx) {
        let name = img.file_name().unwrap().to_string_lossy().into_owned();
        let mut data = std::fs::read(&img).unwrap();
        if name == "pages-1.img" {
            data.resize(data.len() + pad_pages as usize, 0);
        }
        if name == "stats-dump" {
            v.push((name, data));
        } else {
            v.push((format!("checkpoint/{name}"), data));
        }
    }
    v.push(("config.dump".into(), CONFIG_DUMP.as_bytes().to_vec()));
    v.push(("spec.dump".into(), SPEC_DUMP.as_bytes().to_vec()));
    v.push(("rootfs-diff.tar".into(), vec![0u8; 1024]));
    v
}

/// A tar of these members (with a directory entry for checkpoint/).
pub fn tar_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    b.append_data(&mut dir, "checkpoint/", std::io::empty()).unwrap();
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o600);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn compress(tar: &[u8], kind: &str) -> Vec<u8> {
    match kind {
        "tar" => tar.to_vec(),
        "tar.gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        "tar.zst" => zstd::stream::encode_all(tar, 3).unwrap(),
        k => panic!("{k}"),
    }
}

/// Write a Podman-like archive of a fixture into `dir`.
pub fn make_archive(fx: &Path, dir: &Path, kind: &str, pad: u64) -> PathBuf {
    let p = dir.join(format!("{}.{kind}", fx.file_name().unwrap().to_string_lossy()));
    std::fs::write(&p, compress(&tar_of(&podman_layout(fx, pad)), kind)).unwrap();
    p
}

const ARCHIVE_FIXTURES: &[&str] = &["criu41-tree", "criu41-unix", "criu41-namespaces", "criu42-tcp"];

#[test]
fn archives_give_the_same_views_as_the_directory() {
    let tmp = TempDir::new("archive-views");
    for name in ARCHIVE_FIXTURES {
        let fx = root().join("tests/fixtures").join(name);
        let dir = Checkpoint::open(&fx).unwrap();
        // The unpacked layout too.
        let unpacked = tmp.path().join(format!("{name}-unpacked"));
        for (m, data) in podman_layout(&fx, 0) {
            let p = unpacked.join(&m);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        let mut sources = vec![unpacked];
        for kind in ["tar", "tar.gz", "tar.zst"] {
            sources.push(make_archive(&fx, tmp.path(), kind, 0));
        }
        for src in &sources {
            let ck = Checkpoint::open(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
            for &(view, json) in VIEWS {
                assert_eq!(render(&ck, view, json), render(&dir, view, json), "{} x {view} json={json}", src.display());
            }
        }
    }
}

#[test]
fn archive_members_larger_than_the_cache_are_streamed() {
    // pages-1.img padded past the in-memory limit: the tree view reads the
    // command lines by decompressing up to the member, in place.
    let tmp = TempDir::new("archive-big");
    let fx = root().join("tests/fixtures/criu41-tree");
    let dir = Checkpoint::open(&fx).unwrap();
    let pad = crit::archive::CACHE_MEMBER_MAX + 12345;
    for kind in ["tar", "tar.gz", "tar.zst"] {
        let p = make_archive(&fx, tmp.path(), kind, pad);
        let src = crit::archive::ArchiveSource::open(&p).unwrap();
        let big = std::fs::metadata(fx.join("pages-1.img")).unwrap().len() + pad;
        assert!(src.cached_bytes() < big, "{kind}: the big member was cached");
        let ck = Checkpoint::from_source(Box::new(src));
        assert_eq!(render(&ck, "tree", true), render(&dir, "tree", true), "{kind}");
        assert_eq!(render(&ck, "rss", false), render(&dir, "rss", false), "{kind}");
        // Reads at any offset, backwards too, give the file's bytes.
        let orig = std::fs::read(fx.join("pages-1.img")).unwrap();
        for off in [orig.len() as u64 - 100, 0, 4096, big - 10] {
            let mut buf = vec![0xaau8; 64];
            let n = ck.source().read_at("pages-1.img", off, &mut buf).unwrap();
            let want: Vec<u8> =
                (off..(off + 64).min(big)).map(|i| orig.get(i as usize).copied().unwrap_or(0)).collect();
            assert_eq!(&buf[..n], &want[..], "{kind} at {off}");
        }
    }
}

/// One ustar header block, written by hand so that any name can be put in.
fn raw_header(name: &str, typeflag: u8, link: &str, size: usize) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len().min(100)].copy_from_slice(&name.as_bytes()[..name.len().min(100)]);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn raw_member(out: &mut Vec<u8>, name: &str, typeflag: u8, link: &str, data: &[u8]) {
    out.extend(raw_header(name, typeflag, link, data.len()));
    out.extend(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

#[test]
fn hostile_archive_members_are_refused() {
    let tmp = TempDir::new("archive-hostile");
    let fx = root().join("tests/fixtures/criu41-unix");
    let good = tar_of(&podman_layout(&fx, 0));
    let good = &good[..good.len() - 1024]; // without the end-of-archive blocks
    let long = format!("checkpoint/{}/../../../x", "d".repeat(120));
    type AddMember = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, AddMember)> = vec![
        ("dotdot", Box::new(|t| raw_member(t, "../x", b'0', "", b"evil"))),
        ("inner-dotdot", Box::new(|t| raw_member(t, "checkpoint/../../x", b'0', "", b"evil"))),
        ("absolute", Box::new(|t| raw_member(t, "/tmp/x", b'0', "", b"evil"))),
        ("symlink-out", Box::new(|t| raw_member(t, "checkpoint/pages-9.img", b'2', "../../etc/passwd", b""))),
        ("symlink-abs", Box::new(|t| raw_member(t, "checkpoint/pages-9.img", b'2', "/etc/passwd", b""))),
        ("hardlink-out", Box::new(|t| raw_member(t, "checkpoint/pages-9.img", b'1', "../x", b""))),
        (
            "gnu-longname",
            Box::new(move |t| {
                let mut name = long.clone().into_bytes();
                name.push(0);
                raw_member(t, "././@LongLink", b'L', "", &name);
                raw_member(t, "short", b'0', "", b"evil");
            }),
        ),
    ];
    for (what, add) in &cases {
        let mut t = good.to_vec();
        add(&mut t);
        t.extend([0u8; 1024]);
        for kind in ["tar", "tar.gz", "tar.zst"] {
            let p = tmp.path().join(format!("{what}.{kind}"));
            std::fs::write(&p, compress(&t, kind)).unwrap();
            let err = match Checkpoint::open(&p) {
                Ok(_) => panic!("{what}.{kind}: opened"),
                Err(e) => e.to_string(),
            };
            assert!(err.contains("refused") && err.contains("archive root"), "{what}.{kind}: {err}");
            let out = crit(&["x", p.to_str().unwrap(), "ps"]);
            assert_eq!(out.status.code(), Some(1), "{what}.{kind}");
            assert!(out.stdout.is_empty());
            assert!(String::from_utf8_lossy(&out.stderr).contains("refused"), "{what}.{kind}");
        }
    }
    // Links that stay inside are followed.
    let mut t = good.to_vec();
    raw_member(&mut t, "checkpoint/extra-link", b'2', "../spec.dump", b"");
    t.extend([0u8; 1024]);
    let p = tmp.path().join("inside.tar");
    std::fs::write(&p, &t).unwrap();
    let ck = Checkpoint::open(&p).unwrap();
    let mut buf = vec![0u8; SPEC_DUMP.len()];
    let n = ck.source().read_at("extra-link", 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], SPEC_DUMP.as_bytes());
}

#[test]
fn not_an_archive_is_a_clear_error() {
    let fx = root().join("tests/fixtures/criu41-unix/pstree.img");
    let out = crit(&["stats", fx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a checkpoint directory or archive"));
    let tmp = TempDir::new("archive-empty");
    let p = tmp.path().join("empty.tar");
    std::fs::write(&p, [0u8; 2048]).unwrap();
    let mut t = raw_header("x", b'0', "", 0);
    t.extend([0u8; 1024]);
    std::fs::write(&p, &t).unwrap();
    let err = Checkpoint::open(&p).err().unwrap().to_string();
    assert!(err.contains("no CRIU images"), "{err}");
    // Cut archives: a clear error, never a panic or a partial view.
    let fx = root().join("tests/fixtures/criu41-unix");
    for kind in ["tar", "tar.gz", "tar.zst"] {
        let full = std::fs::read(make_archive(&fx, tmp.path(), kind, 0)).unwrap();
        let p = tmp.path().join(format!("cut.{kind}"));
        std::fs::write(&p, &full[..full.len() * 2 / 3]).unwrap();
        let err = Checkpoint::open(&p).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("truncated") || err.contains("cannot read the archive"), "{kind}: {err:?}");
    }
}

#[test]
fn pagemap_entries_without_pages_do_not_move_the_offsets() {
    // Entries that are lazy only, or in a parent, have no pages in the
    // pages file: put one before every run of each process and one in the
    // middle, and the command lines read must not change.
    let tmp = TempDir::new("pagemap-holes");
    let fx = root().join("tests/fixtures/criu41-tree");
    for img in images(&fx) {
        std::fs::copy(&img, tmp.path().join(img.file_name().unwrap())).unwrap();
    }
    let want = render(&Checkpoint::open(&fx).unwrap(), "tree", true);
    let mut added = 0;
    for pm in images_named(tmp.path(), "pagemap-") {
        let json = String::from_utf8(decode_bytes(&std::fs::read(&pm).unwrap(), false, false).unwrap()).unwrap();
        let at = json.find("}, {\"vaddr\"").expect("a pagemap with entries") + 3;
        let second = json[at..].find("}, {\"vaddr\"").map(|i| at + i + 3).unwrap();
        let edited = format!(
            "{}{{\"vaddr\": 4096, \"compat_nr_pages\": 3, \"flags\": 2}}, {}{{\"vaddr\": 4521984, \"compat_nr_pages\": 2, \"flags\": 1}}, {}",
            &json[..at],
            &json[at..second],
            &json[second..]
        );
        std::fs::write(&pm, encode_bytes(edited.as_bytes()).unwrap()).unwrap();
        added += 1;
    }
    assert_eq!(added, 5);
    let ck = Checkpoint::open(tmp.path()).unwrap();
    assert_eq!(render(&ck, "tree", true), want);
    let (out, _) = render(&ck, "stats", true);
    let s = parse(&out);
    let total = s.get("memory").and_then(|m| m.get("total")).unwrap();
    assert_eq!(int(total.get("pages_lazy")), 3 * 5);
    assert_eq!(int(total.get("pages_in_parent")), 2 * 5);
}
