import _AllocatorTuning

/// Allocator settings for long numeric loops.
enum Allocator {
    /// Keeps freed blocks of up to 32 MiB in the heap instead of returning them to the system.
    ///
    /// glibc serves large blocks with fresh `mmap`s and returns them on `free`, so a loop that allocates
    /// the same few-megabyte arrays every step pays a page fault and a zeroed page for every 4 KiB each
    /// time (a quarter of the run time of `attention train`, 6% of `bench --embed-batch`, measured with
    /// perf). Reusing them costs only the memory the loop needs anyway. Every `attention` command runs
    /// with it. Elsewhere (Darwin's allocator reuses) this does nothing.
    static func reuseLargeBlocks() {
        _ = attention_reuse_large_blocks()
    }
}
