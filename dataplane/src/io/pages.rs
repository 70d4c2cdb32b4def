//! Memory hints for the large per-worker tables (the NAT's session slots and
//! indexes): transparent huge pages, and cache prefetches. Neither changes any
//! byte of memory, so both are safe to offer for any slice or reference.
//!
//! Why huge pages: a table of tens of MiB read at random misses the TLB on
//! nearly every lookup with 4 KiB pages (in a VM each miss is a two-level page
//! walk); with 2 MiB pages the whole table fits in the TLB.

#![allow(unsafe_code)]

/// The transparent huge page size of x86-64 and arm64 with 4 KiB base pages.
const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the whole 2 MiB pages inside `buf` with transparent
/// huge pages (`madvise(MADV_HUGEPAGE)`, needed when the system's setting is
/// `madvise`). Pages not touched yet are still committed only when first
/// written. Returns false when `buf` holds no whole huge page or the kernel
/// refused (no THP support): the memory then simply keeps its small pages.
pub fn advise_huge_pages<T>(buf: &[T]) -> bool {
    let start = buf.as_ptr() as usize;
    let end = start + std::mem::size_of_val(buf);
    let first = start.next_multiple_of(HUGE_PAGE);
    let last = end - end % HUGE_PAGE;
    if last <= first {
        return false;
    }
    // SAFETY: [first, last) lies inside `buf`, memory this process owns, and
    // MADV_HUGEPAGE only changes how the kernel backs those pages: their contents
    // and every reference to them stay valid.
    let rc = unsafe {
        libc::madvise(
            first as *mut libc::c_void,
            last - first,
            libc::MADV_HUGEPAGE,
        )
    };
    rc == 0
}

/// Starts loading the cache line holding the start of `item` into all cache
/// levels, so a read shortly after does not wait for memory. A hint only.
#[inline(always)]
pub fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and changes no memory; `item` is a live
    // reference anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((item as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advises_only_whole_huge_pages() {
        assert!(!advise_huge_pages(&[0u64; 16]));
        // Three huge pages of room hold at least two whole ones, wherever they start.
        let big = vec![0u8; 3 * HUGE_PAGE];
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|s| !s.contains("[never]"));
        if thp {
            assert!(advise_huge_pages(&big));
        }
        assert!(big.iter().all(|&b| b == 0), "contents unchanged");
    }

    #[test]
    fn prefetch_is_only_a_hint() {
        let v = [7u32; 4];
        prefetch(&v[3]);
        assert_eq!(v, [7; 4]);
    }
}
