//! The `photonqa` binary; everything lives in the library (see `photonqa::cli`).

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    photonqa::cli::main()
}

/// Lets glibc's malloc keep the memory of freed buffers for the next ones.
///
/// A pass allocates the same chunk-sized buffers (slabs read, values as float64, errors, SSIM
/// filter planes) for every chunk. By default glibc gives a block above its mmap threshold
/// (128 KiB, raised only after such a block is freed) its own mapping and unmaps it on free,
/// and trims the heap top beyond 128 KiB, so each chunk faults its pages in afresh: 68,000 page
/// faults and 40 % of the CPU time of `photonqa metrics --only ssim` on a 256^3 float32 pair.
/// With blocks up to 32 MiB (glibc's largest allowed threshold) served from the heap and 256
/// MiB of free heap kept, that run takes 29,000 faults and a third less system time, at the same
/// peak memory. A process-wide policy, so the binary sets it and the library (also loaded into
/// Python's process) does not.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets malloc parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}
