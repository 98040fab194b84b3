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

#endif
