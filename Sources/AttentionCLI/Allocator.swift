import _AllocatorTuning

/// Allocator settings for long numeric loops.
enum Allocator {
    /// Keeps freed blocks of up to 32 MiB in the heap instead of returning them to the system.
    ///
    /// glibc serves large blocks with fresh `mmap`s and returns them on `free`, so a loop that allocates
    /// the same few-megabyte arrays every step pays a page fault and a zeroed page for every 4 KiB each
    /// time (a quarter of the run time of `attention train`, measured with perf; `bench --embed-batch`
    /// showed page faults too, but no measurable gain from this in alternating runs, so only `train`
    /// uses it). Reusing them costs only the memory the loop needs anyway. Elsewhere (Darwin's
    /// allocator reuses) this does nothing.
    static func reuseLargeBlocks() {
        _ = attention_reuse_large_blocks()
    }

    /// Every thread of the process allocates from one heap (glibc's main arena), so that blocks freed
    /// by one step are reused by the next whatever thread runs it. glibc gives threads other than the
    /// first arenas of their own, whose heaps it shrinks and unmaps as blocks come and go: `serve`'s
    /// generator thread then spent 6% of its time in page faults and zeroing fresh pages for each
    /// step's arrays (perf, eight clients, AMD EPYC Zen 4); with one arena none. Call it first thing
    /// in the process: glibc fixes the number of arenas when a second thread first allocates.
    static func useOneArena() {
        _ = attention_use_one_arena()
    }
}
