//! Support for crit's fuzz targets: the property checks (shared with the
//! test suite, which replays tests/regressions/ through them) and an
//! allocator that turns an allocation out of proportion to the input into a
//! crash libFuzzer records.
//!
//! libFuzzer's own `-malloc_limit_mb` works only when a sanitizer runtime
//! provides malloc hooks; this allocator gives the same check in every
//! build, ASan or `--sanitizer none`, stable or nightly.

pub mod checks;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Largest single allocation allowed.  Inputs are at most a few hundred
/// KiB (`-max_len`), so anything this big is an allocation sized by a
/// number read from the input, not by the input.
pub const MAX_ONE_ALLOC: usize = 64 << 20;
/// Most memory allowed live at once (below libFuzzer's -rss_limit_mb=512).
pub const MAX_LIVE: usize = 448 << 20;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The global allocator of every fuzz target.
pub struct Bounded;

#[cold]
fn over(size: usize) -> ! {
    // No allocation here: stderr is unbuffered and integers format in place.
    let live = LIVE.load(Ordering::Relaxed);
    let _ = writeln!(
        std::io::stderr(),
        "==crit-fuzz== allocation limit: {size} bytes requested with {live} live (limits {MAX_ONE_ALLOC} one, {MAX_LIVE} live)"
    );
    std::process::abort()
}

#[inline]
fn admit(size: usize) {
    if size > MAX_ONE_ALLOC || LIVE.load(Ordering::Relaxed).saturating_add(size) > MAX_LIVE {
        over(size)
    }
}

// SAFETY: every method forwards to the system allocator with the caller's
// layout unchanged; the bookkeeping only counts bytes.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        admit(layout.size());
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        admit(layout.size());
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            admit(new_size - layout.size());
            if new_size > MAX_ONE_ALLOC {
                over(new_size)
            }
        }
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Bounded = Bounded;
