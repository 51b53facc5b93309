//! Shared helpers: fixtures, goldens, the built binary, reference tools.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn crit_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_crit"))
}

/// Run our binary.
pub fn crit(args: &[&str]) -> Output {
    Command::new(crit_bin()).args(args).output().expect("run crit")
}

/// Every fixture directory (a complete dump).
pub fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join("inventory.img").exists())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixtures found");
    v
}

/// Every directory of images with goldens: the dumps and the crafted set.
pub fn image_dirs() -> Vec<PathBuf> {
    let mut v = fixtures();
    v.push(root().join("tests/fixtures/crafted"));
    v
}

/// Every image file of a fixture directory.
pub fn images(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.extension().is_some_and(|e| e == "md" || e == "json" || e == "py" || e == "sh"))
        .collect();
    v.sort();
    v
}

/// Every image of every fixture directory (crafted images included).
pub fn all_images() -> Vec<PathBuf> {
    image_dirs().iter().flat_map(|d| images(d)).collect()
}

/// The golden directory of a fixture.
pub fn golden_dir(fixture: &Path) -> PathBuf {
    root().join("tests/golden").join(fixture.file_name().unwrap())
}

/// Whether the file is one crit cannot decode by design (no magic).
pub fn is_raw_image(p: &Path) -> bool {
    let name = p.file_name().unwrap().to_string_lossy();
    crit::magic::RAW_IMAGE_PREFIXES.iter().any(|pre| name.starts_with(pre))
}

pub fn decode_bytes(data: &[u8], nice: bool, nopl: bool) -> crit::Result<Vec<u8>> {
    crit::transcode::decode(data, Vec::new(), crit::transcode::DecodeOptions { nice, no_payload: nopl })
}

pub fn encode_bytes(json: &[u8]) -> crit::Result<Vec<u8>> {
    crit::transcode::encode(json, Vec::new())
}

/// The reference tools (CRIU 4.1.1 and its crit), installed by
/// scripts/reference-tools.sh into a private folder; None, with the reason
/// printed, when they cannot be had here.
pub struct Reference {
    pub dir: PathBuf,
}

impl Reference {
    pub fn crit(&self) -> PathBuf {
        self.dir.join("bin/crit")
    }
    pub fn criu(&self) -> PathBuf {
        self.dir.join("bin/criu")
    }
}

pub fn reference() -> Option<&'static Reference> {
    static R: OnceLock<Result<Reference, String>> = OnceLock::new();
    let r = R.get_or_init(|| {
        if std::env::var_os("CRIT_NO_REFERENCE").is_some() {
            return Err("CRIT_NO_REFERENCE is set".into());
        }
        let dir =
            std::env::var_os("CRIT_REFERENCE_DIR").map(PathBuf::from).unwrap_or_else(|| root().join(".reference"));
        let out = Command::new("bash")
            .arg(root().join("scripts/reference-tools.sh"))
            .env("CRIT_REFERENCE_DIR", &dir)
            .output()
            .map_err(|e| format!("cannot run scripts/reference-tools.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "scripts/reference-tools.sh failed: {}",
                String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
            ));
        }
        Ok(Reference { dir })
    });
    match r {
        Ok(r) => Some(r),
        Err(why) => {
            eprintln!("SKIP: reference tools unavailable: {why}");
            None
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY-free check: /proc/self/status Uid line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// A scratch directory removed at drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("crit-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An ipcns-shm image whose every entry has `in_pagemaps: true`.
pub fn shm_in_pagemaps(data: &[u8]) -> bool {
    let Ok(rd) = crit::image::ImageReader::open(data) else { return false };
    if rd.kind().name != "IPCNS_SHM" {
        return false;
    }
    let mut any = false;
    for item in rd {
        match item {
            Ok((it, _)) if it.msg.bool("in_pagemaps") == Some(true) => any = true,
            _ => return false,
        }
    }
    any
}

/// Kill a process (a restored one) and wait until its pid is free again:
/// reap it if it became our child (a test may make this process a child
/// subreaper), else wait for whoever reaps it.
pub fn kill_and_reap(pid: u32) {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    let p = nix::unistd::Pid::from_raw(pid as i32);
    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
    for _ in 0..500 {
        let _ = waitpid(p, Some(WaitPidFlag::WNOHANG));
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A `sleep` in its own session with stdio on /dev/null: a process CRIU can
/// dump, and the child to reap after the dump.
pub fn spawn_sleep() -> (std::process::Child, u32) {
    let child = dumpable(Command::new("setsid").args(["sleep", "1000"])).spawn().unwrap();
    let pid = child.id();
    std::thread::sleep(std::time::Duration::from_millis(200));
    (child, pid)
}

/// Prepare a command whose process CRIU will dump: standard streams on
/// /dev/null and no other descriptor inherited from the test process (CRIU
/// dumps every open file, and one the test runner inherited, say a deleted
/// file, would make the restore fail for reasons of its own).
pub fn dumpable(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: close_range is async-signal-safe; marking descriptors 3 and
    // up close-on-exec leaves std's own exec-status pipe working.
    unsafe {
        cmd.pre_exec(|| {
            const CLOSE_RANGE_CLOEXEC: u32 = 4;
            nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC);
            Ok(())
        })
    }
}

/// The error lines of a CRIU log (less the RLIMIT one every run has here).
pub fn errors_of(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Error") && !l.contains("RLIMIT_NOFILE"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A small deterministic generator (xorshift), so generated test cases
/// replay exactly.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    pub fn bytes(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Integers of every size, edges included.
    pub fn int(&mut self) -> u64 {
        match self.below(7) {
            0 => self.below(10),
            1 => u64::MAX - self.below(3),
            2 => (1u64 << self.below(64)).wrapping_sub(self.below(2)),
            3 => self.next() >> self.below(64),
            4 => self.below(1 << 20),
            5 => 10u64.pow(self.below(20) as u32).wrapping_sub(self.below(2)),
            _ => self.next(),
        }
    }
}
