//! Benchmark of `crit serve` and `crit capture` on unchanged images: CPU
//! seconds per GB and peak RSS of the crit process, for two image sizes
//! (RSS must not grow with the size).  Run: `cargo bench --bench stream`.
//!
//! The benchmark plays CRIU's side of the protocol itself (the same
//! messages and SCM_RIGHTS pipes as `criu --stream`), moving the data
//! through pipes with splice so the client costs little.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crit::stream;

fn crit_bin() -> PathBuf {
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    p.join("crit")
}

fn connect(sock: &Path) -> UnixStream {
    for _ in 0..1000 {
        if let Ok(s) = UnixStream::connect(sock) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no listener on {}", sock.display());
}

fn splice_all(from: &File, to: &File) -> u64 {
    use nix::fcntl::{splice, SpliceFFlags};
    let mut n = 0;
    loop {
        match splice(from.as_fd(), None, to.as_fd(), None, 1 << 20, SpliceFFlags::SPLICE_F_MOVE) {
            Ok(0) => return n,
            Ok(k) => n += k as u64,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("splice: {e}"),
        }
    }
}

/// CPU seconds (user + system) and peak RSS (KiB) of a finished child.
fn rusage_of(pid: i32) -> (f64, i64) {
    let mut status = 0;
    let mut ru: nix::libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers.
    let r = unsafe { nix::libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    let t = |tv: nix::libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime) + t(ru.ru_stime), ru.ru_maxrss)
}

fn make_pages(path: &Path, bytes: u64) {
    let mut f = File::create(path).unwrap();
    let mut block = vec![0u8; 1 << 20];
    for (i, b) in block.iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    let mut left = bytes;
    while left > 0 {
        let k = left.min(block.len() as u64) as usize;
        f.write_all(&block[..k]).unwrap();
        left -= k as u64;
    }
    f.sync_all().unwrap();
}

fn serve_once(dir: &Path) -> (f64, i64, f64, u64) {
    let child =
        Command::new(crit_bin()).arg("serve").arg(dir).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id() as i32;
    let mut s = connect(&dir.join(stream::SERVE_SOCKET));
    let t = Instant::now();
    stream::write_request(&mut s, "pages-1.img").unwrap();
    assert!(stream::read_reply(&mut s).unwrap());
    let (r, w) = nix::unistd::pipe().unwrap();
    stream::send_fd(&s, &w).unwrap();
    drop(w);
    let sink = File::create("/dev/null").unwrap();
    let n = splice_all(&File::from(r), &sink);
    drop(s);
    let wall = t.elapsed().as_secs_f64();
    let (cpu, rss) = rusage_of(pid);
    std::mem::forget(child);
    (cpu, rss, wall, n)
}

fn capture_once(dir: &Path, src: &Path) -> (f64, i64, f64, u64) {
    let out = dir.join("captured");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let child =
        Command::new(crit_bin()).arg("capture").arg(&out).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id() as i32;
    let mut s = connect(&out.join(stream::CAPTURE_SOCKET));
    let t = Instant::now();
    let mut n = 0;
    for name in ["pages-1.img", "inventory.img"] {
        stream::write_request(&mut s, name).unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        stream::send_fd(&s, &r).unwrap();
        drop(r);
        let w = File::from(w);
        if name == "pages-1.img" {
            n = splice_all(&File::open(src).unwrap(), &w);
        } else {
            (&w).write_all(&[0x16, 0x31, 0x31, 0x58]).unwrap();
        }
    }
    drop(s);
    let (cpu, rss) = rusage_of(pid);
    let wall = t.elapsed().as_secs_f64();
    std::mem::forget(child);
    assert_eq!(std::fs::metadata(out.join("pages-1.img")).unwrap().len(), n);
    let _ = std::fs::remove_dir_all(&out);
    (cpu, rss, wall, n)
}

fn main() {
    let base = std::env::var_os("CRIT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("crit-bench-stream"));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    println!("| operation | image | CPU s | CPU s/GB | wall s | peak RSS MiB |");
    println!("|---|---|---:|---:|---:|---:|");
    for gib in [1u64, 2] {
        let dir = base.join(format!("img{gib}"));
        std::fs::create_dir_all(&dir).unwrap();
        let pages = dir.join("pages-1.img");
        make_pages(&pages, gib << 30);
        for (what, (cpu, rss, wall, n)) in [("serve", serve_once(&dir)), ("capture", capture_once(&base, &pages))] {
            let gb = n as f64 / 1e9;
            println!(
                "| {what} | {gib} GiB pages | {cpu:.3} | {:.3} | {wall:.2} | {:.1} |",
                cpu / gb,
                rss as f64 / 1024.0
            );
        }
        let _ = std::fs::remove_file(&pages);
    }
    let _ = std::fs::remove_dir_all(&base);
}
