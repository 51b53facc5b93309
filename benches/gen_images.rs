//! Synthetic CRIU images for `scripts/bench.sh`.
//!
//! Writes the protobuf wire format by hand, with no dependency on the crate
//! under test (so the images are not shaped by our own encoder), in the byte
//! layout CRIU itself produces: the two 32-bit magics, then per entry a
//! little-endian u32 length and the message, fields in field-number order.
//!
//!   gen_images OUTDIR [FILES_ENTRIES [PAGEMAP_ENTRIES]]
//!
//! OUTDIR/files.img      FILES: file_entry, type REG with a reg_file_entry
//! OUTDIR/pagemap-1.img  PAGEMAP: pagemap_head, then pagemap_entry records
//! OUTDIR/tiny.img       FILES with a single entry (start-up timing)
//!
//! Built by the script with plain `rustc -O` (no Cargo target needed). The
//! output is deterministic: a fixed-seed xorshift generator.

use std::env;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

const IMG_COMMON_MAGIC: u32 = 0x5456_4319;
const FILES_MAGIC: u32 = 0x5630_3138;
const PAGEMAP_MAGIC: u32 = 0x5608_4025;

const PE_LAZY: u32 = 1 << 1;
const PE_PRESENT: u32 = 1 << 2;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn tag(buf: &mut Vec<u8>, field: u32, wire: u32) {
    varint(buf, u64::from(field << 3 | wire));
}

fn uint(buf: &mut Vec<u8>, field: u32, v: u64) {
    tag(buf, field, 0);
    varint(buf, v);
}

fn sint32(buf: &mut Vec<u8>, field: u32, v: i32) {
    tag(buf, field, 0);
    varint(buf, u64::from(((v << 1) ^ (v >> 31)) as u32));
}

fn bytes(buf: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(buf, field, 2);
    varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

struct Image {
    w: BufWriter<File>,
    bytes: u64,
}

impl Image {
    fn create(path: &Path, magic: u32) -> Image {
        let f = File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(&IMG_COMMON_MAGIC.to_le_bytes()).unwrap();
        w.write_all(&magic.to_le_bytes()).unwrap();
        Image { w, bytes: 8 }
    }
    fn entry(&mut self, msg: &[u8]) {
        self.w.write_all(&(msg.len() as u32).to_le_bytes()).unwrap();
        self.w.write_all(msg).unwrap();
        self.bytes += 4 + msg.len() as u64;
    }
    fn finish(mut self) -> u64 {
        self.w.flush().unwrap();
        self.bytes
    }
}

const DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/",
    "/usr/lib/python3/dist-packages/",
    "/var/lib/postgresql/15/main/base/16384/",
    "/home/app/.cache/",
    "/opt/service/lib/",
    "/usr/share/locale/en_US.UTF-8/LC_MESSAGES/",
    "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/plugins/",
];
const STEMS: &[&str] = &["libfoo", "libssl", "libcrypto", "libz", "libstdc++", "module", "relation", "blob"];
const SUFFIXES: &[&str] = &[".so", ".so.3", ".py", "", ".dat", ".log"];

// O_RDONLY, O_WRONLY|O_APPEND, O_RDWR|O_LARGEFILE, O_RDONLY|O_CLOEXEC|O_LARGEFILE,
// O_RDWR|O_CREAT|O_NONBLOCK|O_LARGEFILE, O_RDONLY|O_DIRECTORY|O_LARGEFILE
const FLAGS: &[u32] = &[0, 0o2001, 0o100002, 0o2100000, 0o104102, 0o300000];

fn reg_file(rng: &mut Rng, id: u32, name: &mut String) -> Vec<u8> {
    let mut m = Vec::with_capacity(160);
    uint(&mut m, 1, u64::from(id));
    uint(&mut m, 2, u64::from(FLAGS[rng.below(FLAGS.len() as u64) as usize]));
    uint(&mut m, 3, if rng.below(3) == 0 { 0 } else { rng.below(1 << 24) });
    // fown: mostly zeros as in real dumps, sometimes an owner
    let mut fown = Vec::with_capacity(16);
    let owned = rng.below(8) == 0;
    let uid = if owned { 1000 + rng.below(50) } else { 0 };
    uint(&mut fown, 1, uid);
    uint(&mut fown, 2, uid);
    uint(&mut fown, 3, if owned { 29 } else { 0 }); // SIGIO
    uint(&mut fown, 4, if owned { 1 } else { 0 });
    uint(&mut fown, 5, if owned { 1 + rng.below(4_000_000) } else { 0 });
    bytes(&mut m, 5, &fown);
    name.clear();
    name.push_str(DIRS[rng.below(DIRS.len() as u64) as usize]);
    name.push_str(STEMS[rng.below(STEMS.len() as u64) as usize]);
    name.push_str(&format!("-{:05}", id % 100_000));
    name.push_str(SUFFIXES[rng.below(SUFFIXES.len() as u64) as usize]);
    bytes(&mut m, 6, name.as_bytes());
    sint32(&mut m, 7, 20 + rng.below(40) as i32);
    uint(&mut m, 8, rng.below(64 << 20));
    uint(&mut m, 10, if rng.below(2) == 0 { 0o100644 } else { 0o100755 });
    if rng.below(4) != 0 {
        // an ELF build-id, 20 bytes as 5 u32 (unpacked repeated field)
        for _ in 0..5 {
            uint(&mut m, 11, rng.next() >> 32);
        }
    }
    m
}

fn file_entry(rng: &mut Rng, id: u32, name: &mut String) -> Vec<u8> {
    let reg = reg_file(rng, id, name);
    let mut m = Vec::with_capacity(reg.len() + 12);
    uint(&mut m, 1, 1); // type = REG
    uint(&mut m, 2, u64::from(id));
    bytes(&mut m, 3, &reg);
    m
}

fn files(path: &Path, n: u32) -> u64 {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut img = Image::create(path, FILES_MAGIC);
    let mut name = String::new();
    for id in 1..=n {
        img.entry(&file_entry(&mut rng, id, &mut name));
    }
    img.finish()
}

fn pagemap(path: &Path, n: u32) -> u64 {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut img = Image::create(path, PAGEMAP_MAGIC);
    let mut head = Vec::new();
    uint(&mut head, 1, 1); // pages_id
    img.entry(&head);
    let mut vaddr: u64 = 0x40_0000;
    let mut m = Vec::with_capacity(32);
    for i in 0..n {
        // a new mapping now and then, far away; otherwise a gap of a few pages
        if i % 1000 == 0 && i > 0 {
            vaddr += (1 + rng.below(1 << 20)) << 12;
        } else {
            vaddr += rng.below(8) << 12;
        }
        let span = if rng.below(10) == 0 { 512 } else { 16 };
        let nr_pages = 1 + rng.below(span);
        let flags = if rng.below(4) == 0 { PE_LAZY | PE_PRESENT } else { PE_PRESENT };
        m.clear();
        uint(&mut m, 1, vaddr);
        uint(&mut m, 2, 0); // compat_nr_pages
        uint(&mut m, 4, u64::from(flags));
        uint(&mut m, 5, nr_pages);
        img.entry(&m);
        vaddr += nr_pages << 12;
    }
    img.finish()
}

fn main() {
    let args: Vec<String> = env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: gen_images OUTDIR [FILES_ENTRIES [PAGEMAP_ENTRIES]]");
        std::process::exit(2);
    }
    let dir = Path::new(&args[1]);
    std::fs::create_dir_all(dir).unwrap();
    let nf: u32 = args.get(2).map_or(200_000, |s| s.parse().expect("FILES_ENTRIES"));
    let np: u32 = args.get(3).map_or(500_000, |s| s.parse().expect("PAGEMAP_ENTRIES"));
    let fb = files(&dir.join("files.img"), nf);
    let pb = pagemap(&dir.join("pagemap-1.img"), np);
    let tb = files(&dir.join("tiny.img"), 1);
    println!("files.img      {nf:>8} entries {fb:>10} bytes");
    println!("pagemap-1.img  {np:>8} entries {pb:>10} bytes");
    println!("tiny.img       {:>8} entries {tb:>10} bytes", 1);
}
