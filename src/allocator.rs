//! The process allocator: mimalloc, asked for a plain block wherever the alignment every
//! mimalloc block has is enough.
//!
//! `mimalloc::MiMalloc` passes every layout to `mi_malloc_aligned`. In mimalloc v3 that call
//! takes its fast path only while the size class's free list has a block; when the list is empty
//! it falls back to over-allocating (size + alignment) unless the block size is a power of two,
//! and it never refills the list the way `mi_malloc` does. Serving `/v1/near`, callgrind counted
//! about seven of the twenty-eight allocations of each request on that path, at ~300
//! instructions each against ~40 for `mi_malloc`. std's own `System` allocator makes the same
//! choice with the C library's `malloc`.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{mi_free, mi_malloc, mi_realloc, mi_zalloc};

/// The alignment of every `mi_malloc` block whose size is at least this alignment: mimalloc's
/// `MI_MAX_ALIGN_SIZE` (16; its size classes are multiples of two words, and of one word only
/// for blocks of one word).
const MIN_ALIGN: usize = 16;

/// mimalloc as the global allocator; `#[global_allocator] static A: Allocator = Allocator;`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Allocator;

/// Whether a plain block of `size` bytes is aligned enough for `align`.
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

// SAFETY: each method hands the layout to mimalloc, either unchanged (`MiMalloc`) or as a plain
// request when `plain` shows mimalloc's block alignment covers it; every block is freed by
// `mi_free`, which takes blocks from either path.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            mi_malloc(layout.size()).cast()
        } else {
            mimalloc::MiMalloc.alloc(layout)
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            mi_zalloc(layout.size()).cast()
        } else {
            mimalloc::MiMalloc.alloc_zeroed(layout)
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain(layout.align(), new_size) {
            mi_realloc(ptr.cast::<c_void>(), new_size).cast()
        } else {
            mimalloc::MiMalloc.realloc(ptr, layout, new_size)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size up to past the small size classes, at every alignment from 1 to 4 KiB, freshly
    /// allocated, zeroed and grown: the block is aligned and its bytes usable.
    #[test]
    fn blocks_are_aligned_for_every_size_and_alignment() {
        let a = Allocator;
        let sizes = (1..=300).chain([511, 512, 1000, 4095, 4096, 10_000, 70_000, 1 << 20]);
        for size in sizes {
            for align in (0..=12).map(|s| 1usize << s) {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // Many at once, so some come from refilled free lists rather than fresh pages.
                let blocks: Vec<*mut u8> = (0..40)
                    .map(|i| unsafe {
                        let p = if i % 2 == 0 {
                            a.alloc(layout)
                        } else {
                            a.alloc_zeroed(layout)
                        };
                        assert!(!p.is_null(), "size {size} align {align}");
                        assert_eq!(p as usize % align, 0, "size {size} align {align}");
                        if i % 2 == 1 {
                            assert!((0..size).all(|k| *p.add(k) == 0), "zeroed {size}");
                        }
                        p.write_bytes(0xA5, size);
                        p
                    })
                    .collect();
                for p in blocks {
                    unsafe {
                        let grown = a.realloc(p, layout, size * 3);
                        assert!(!grown.is_null());
                        assert_eq!(grown as usize % align, 0, "realloc {size} align {align}");
                        assert!((0..size).all(|k| *grown.add(k) == 0xA5), "kept {size}");
                        let grown_layout = Layout::from_size_align(size * 3, align).unwrap();
                        a.dealloc(grown, grown_layout);
                    }
                }
            }
        }
    }
}
