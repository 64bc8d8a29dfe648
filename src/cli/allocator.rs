//! The allocator policy of `photonqa metrics`.

/// Lets glibc's malloc keep the memory of freed buffers for the next ones.
///
/// A pass allocates the same chunk-sized buffers (slabs read, values as float64, errors, SSIM
/// filter planes) for every chunk. By default glibc gives a block above its mmap threshold
/// (128 KiB, raised only after such a block is freed) its own mapping and unmaps it on free,
/// and trims the heap top beyond 128 KiB, so each chunk faults its pages in afresh. Measured on
/// `photonqa metrics --only ssim` of a 256^3 float32 pair: 68,000 page faults and 0.20 s of
/// system time (40 % of the CPU time) by default; 26,000 faults and 0.09 s with blocks up to
/// 32 MiB (glibc's largest allowed threshold) served from the heap and up to 64 MiB of free heap
/// kept, at 8 % more peak memory. Only `photonqa metrics` sets it: a sweep's memory follows
/// `--memory-budget` and its buffers' sizes vary, and there the memory kept raised the peak by
/// half (the seed scenario: 102 -> 153 MB) for a tenth of its system time. A process-wide
/// policy, so the command sets it and the library (also loaded into Python's process) does not.
pub(super) fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets malloc parameters; called before the command starts threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}
