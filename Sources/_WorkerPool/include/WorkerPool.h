#ifndef ATTENTION_WORKER_POOL_H
#define ATTENTION_WORKER_POOL_H

/// One item of a parallel loop: `task(context, item, worker)`, `worker` in `0 ..< threads`.
typedef void (*attention_pool_task)(void *context, long item, long worker);

/// Runs `task` for every item in `0 ..< items` on `threads` threads: the caller (worker 0) and up to
/// `threads - 1` threads of a process-wide pool, which take items one at a time as they finish one.
///
/// The pool's threads stay awake (spinning) for a short while after a loop, so that the loops of a
/// decoding step, a few dozen of them a few microseconds apart, do not each wait for a thread to be
/// woken; then they sleep on a condition variable. Returns 1 when the loop ran, 0 if the pool was busy
/// with another caller's loop (or this one's: a loop inside a loop), in which case nothing ran and
/// the caller should run the loop another way.
int attention_pool_run(long items, long threads, attention_pool_task task, void *context);

/// The most memory ranges one read-ahead takes.
#define ATTENTION_READ_AHEAD_RANGES 8

/// Hands an idle pool thread memory to read while the caller works alone: ranges `0 ..< split` and
/// `split ..< count` (`bases[i]`, `bytes[i]` bytes each) are two streams, read in turn 4 KiB at a
/// time, each range in order. The reader stops within 1 KiB once the caller's next loop starts, and
/// a request no thread has taken by then is dropped. Reads only: the memory must stay mapped until
/// attention_pool_cancel_read_ahead returns (its owner calls that before freeing it). Returns 1 if
/// the request was posted for an awake pool thread, 0 if there is none or another request is
/// pending or being read (then nothing happens).
int attention_pool_read_ahead(const void *const *bases, const long *bytes, int count, int split);

/// Drops a read-ahead not yet taken and stops one being read, returning once no pool thread reads
/// the memory it named: for code about to free that memory.
void attention_pool_cancel_read_ahead(void);

#endif
