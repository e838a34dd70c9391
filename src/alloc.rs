//! The process's global allocator: the system allocator, except that every single allocation
//! of [`RESERVE_FROM_BYTES`] or more is an anonymous private mapping made with `MAP_NORESERVE`.
//!
//! Why (issue 11): the kafka-protocol crate sizes `Vec::with_capacity` and zeroed byte
//! buffers from the count a request *declares*, before it checks that the bytes exist. A
//! 30-byte Metadata request declaring 2^31-1 topics asks for 154 GB at once; the system
//! allocator refuses (Linux's overcommit heuristic turns down a mapping larger than RAM +
//! swap), and Rust aborts the whole process on a failed allocation. A `MAP_NORESERVE` mapping
//! is address space only: the kernel commits a page when it is first written. The decoder
//! then writes the few elements the frame really holds, fails on the missing bytes, and the
//! mapping is returned whole. Physical memory stays proportional to the bytes received,
//! whatever count was declared, for every request type and version of every listener, and
//! for the crate's future versions, without touching its decoders.
//!
//! The policy is decided by the layout's size alone, so `dealloc` and `realloc` know which
//! side an allocation came from without any bookkeeping. Allocations below the threshold (all
//! but a handful in a running broker) take the system allocator's path unchanged: one size
//! comparison is the whole cost.
//!
//! Limits: address space is 128 TiB on x86-64 Linux; the largest request the decoders can
//! make is 2^32 elements times the element size (under 1 TiB), and only the threads that
//! decode at the moment hold such a reservation, for microseconds. With
//! `vm.overcommit_memory=2` the kernel ignores `MAP_NORESERVE`; the broker warns at start
//! ([`overcommit_is_strict`]).

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are reserved address space rather than committed memory.
/// Far below any machine's RAM, so no request the kernel would refuse goes to `System`; far
/// above what the broker allocates in normal operation (request frames up to
/// `socket.request.max.bytes` are the only routine exception, and a mapping suits them too).
pub(crate) const RESERVE_FROM_BYTES: usize = 64 << 20;

/// Mappings are page-aligned; larger alignments (never asked for by the broker's types) stay
/// with the system allocator.
const MAPPING_ALIGN: usize = 4096;

/// The system allocator with large allocations as lazily committed mappings.
#[derive(Debug)]
pub(crate) struct GuardedAllocator;

fn reserved(layout: &Layout) -> bool {
    layout.size() >= RESERVE_FROM_BYTES && layout.align() <= MAPPING_ALIGN
}

#[allow(unsafe_code)]
mod sys {
    use std::ptr;

    /// A fresh, zero-filled, private mapping of `len` bytes that commits no memory up front;
    /// null when the address space is exhausted.
    pub(super) fn map(len: usize) -> *mut u8 {
        // SAFETY: an anonymous mapping at an address of the kernel's choosing touches no
        // existing memory; the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            ptr::null_mut()
        } else {
            p.cast()
        }
    }

    /// Returns a mapping made by [`map`] (or [`remap`]) of `len` bytes.
    ///
    /// # Safety
    /// `p` and `len` must be exactly a live mapping of ours, no longer used.
    pub(super) unsafe fn unmap(p: *mut u8, len: usize) {
        // SAFETY: the caller passes a whole mapping of ours; nothing refers to it any more.
        unsafe { libc::munmap(p.cast(), len) };
    }

    /// Grows or shrinks a mapping, moving it if need be; null on failure (the old one stays).
    ///
    /// # Safety
    /// `p` and `old` must be exactly a live mapping of ours.
    #[cfg(target_os = "linux")]
    pub(super) unsafe fn remap(p: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: `p`/`old` are a whole mapping of ours; MREMAP_MAYMOVE lets the kernel move it
        // and the caller uses only the returned address afterwards.
        let q = unsafe { libc::mremap(p.cast(), old, new, libc::MREMAP_MAYMOVE) };
        if q == libc::MAP_FAILED {
            ptr::null_mut()
        } else {
            q.cast()
        }
    }
}

// SAFETY: every pointer handed out is either the system allocator's (for layouts `reserved`
// says no to) or a fresh mapping of at least `layout.size()` bytes, page-aligned, hence aligned
// for every layout sent there. `dealloc` and `realloc` route by the same `reserved(layout)`
// test on the layout the allocation was made with, so each pointer goes back to its source.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if reserved(&layout) {
            sys::map(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if reserved(&layout) {
            // Anonymous mappings are zero-filled, and untouched pages stay uncommitted.
            sys::map(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if reserved(&layout) {
            // SAFETY: `reserved(layout)` means `alloc` mapped exactly `layout.size()` bytes.
            unsafe { sys::unmap(p, layout.size()) }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(p, layout) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (for the layout): the caller guarantees `new_size` with `layout.align()` is a
        // valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (reserved(&layout), reserved(&new_layout)) {
            // SAFETY: forwarded with the caller's guarantees.
            (false, false) => unsafe { System.realloc(p, layout, new_size) },
            #[cfg(target_os = "linux")]
            // SAFETY: `p` is a mapping of exactly `layout.size()` bytes.
            (true, true) => unsafe { sys::remap(p, layout.size(), new_size) },
            _ => {
                // Crossing the threshold (or no mremap): move the bytes to the other side.
                // SAFETY: `new_layout` is valid (above); on success both regions are live and
                // distinct, and the old one is released through the path that made it.
                unsafe {
                    let q = self.alloc(new_layout);
                    if !q.is_null() {
                        std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                        self.dealloc(p, layout);
                    }
                    q
                }
            }
        }
    }
}

/// True when Linux's `vm.overcommit_memory` is 2 (strict accounting), under which the kernel
/// ignores `MAP_NORESERVE` and a hostile declared count can still exhaust the commit limit.
pub(crate) fn overcommit_is_strict() -> bool {
    std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|s| s.trim() == "2")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident set size of this process, from /proc (Linux).
    fn rss_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    #[test]
    fn a_capacity_far_beyond_the_machine_costs_only_what_is_written() {
        // What the crate's decoder does with a declared count of 2^31-1 elements of 72 bytes.
        let before = rss_bytes();
        let mut v: Vec<[u8; 72]> = Vec::with_capacity(i32::MAX as usize);
        v.push([7; 72]);
        v.push([8; 72]);
        // Tests run side by side in this process: the margin is loose, the request is 154 GB.
        assert!(rss_bytes() < before + (1 << 30), "only the touched pages are committed");
        assert_eq!(v[1][0], 8);
    }

    #[test]
    fn zeroed_buffers_and_growth_across_the_threshold_keep_their_bytes() {
        let zeroed = vec![0u8; 3 * RESERVE_FROM_BYTES];
        assert!(zeroed.iter().step_by(4096).all(|b| *b == 0));
        let mut v: Vec<u8> = Vec::with_capacity(1024);
        v.extend((0..1024).map(|i| i as u8));
        v.reserve_exact(RESERVE_FROM_BYTES); // system -> mapping
        v.reserve_exact(2 * RESERVE_FROM_BYTES); // mapping -> bigger mapping
        assert!((0..1024).all(|i| v[i] == i as u8));
        v.shrink_to_fit(); // mapping -> system
        assert!((0..1024).all(|i| v[i] == i as u8));
    }
}
