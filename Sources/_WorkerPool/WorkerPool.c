#include "WorkerPool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

// How long an idle worker spins before it sleeps, in pause instructions (some 50-100 microseconds:
// longer than the gaps between the loops of a decoding step, short enough not to steal a busy core).
#define SPIN_LIMIT 2000
#define MAX_WORKERS 255

// One loop at a time: the caller holds `job_lock` from publishing a loop until every worker has
// acknowledged it, so the job fields below never change under a worker that still reads them.
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_up = PTHREAD_COND_INITIALIZER;

static atomic_long generation = 0;   // bumped once per loop
static atomic_long next_item = 0;
static atomic_long acknowledged = 0; // workers done with the current loop
static atomic_long sleepers = 0;

static long job_items, job_threads;  // written under job_lock, before the generation bump
static attention_pool_task job_task;
static void *job_context;
static long workers = 0;             // started so far (under job_lock); ids 1 ... workers
static atomic_long started = 0;      // `workers`, for readers without job_lock
static long start_generation = 0;    // what a new worker has already seen

// The read-ahead request (attention_pool_read_ahead): IDLE, WRITING (the caller fills the fields),
// POSTED (a worker may take it), RUNNING (a worker reads).
enum { READ_IDLE, READ_WRITING, READ_POSTED, READ_RUNNING };
static atomic_int read_state = READ_IDLE;
static const char *read_bases[ATTENTION_READ_AHEAD_RANGES];
static long read_bytes[ATTENTION_READ_AHEAD_RANGES];
static int read_count, read_split;
static volatile long read_sink;
static atomic_int read_cancelled = 0;

void attention_pool_cancel_read_ahead(void) {
    int expected = READ_POSTED;
    if (atomic_compare_exchange_strong(&read_state, &expected, READ_IDLE)) return;
    if (expected == READ_IDLE) return;
    // Being written (by another caller) or read: stop the reader and wait for it.
    atomic_store(&read_cancelled, 1);
    for (;;) {
        expected = READ_POSTED;
        if (atomic_compare_exchange_strong(&read_state, &expected, READ_IDLE) || expected == READ_IDLE) break;
        CPU_RELAX();
    }
    atomic_store(&read_cancelled, 0);
}

int attention_pool_read_ahead(const void *const *bases, const long *bytes, int count, int split) {
    // A thread must be there, awake: a sleeping one takes nothing until the next loop wakes it.
    if (count <= 0 || count > ATTENTION_READ_AHEAD_RANGES || atomic_load(&started) == 0 || atomic_load(&sleepers) > 0) return 0;
    int expected = READ_IDLE;
    if (!atomic_compare_exchange_strong(&read_state, &expected, READ_WRITING)) return 0;
    for (int i = 0; i < count; i++) {
        read_bases[i] = (const char *)bases[i];
        read_bytes[i] = bytes[i];
    }
    read_count = count;
    read_split = split < 0 ? 0 : split > count ? count : split;
    atomic_store(&read_state, READ_POSTED);
    return 1;
}

// Reads the posted ranges, a byte of each 64-byte line, until done, cancelled, or a loop newer than
// `seen` starts (checked every 1 KiB).
static void read_ahead(long seen) {
    int expected = READ_POSTED;
    if (!atomic_compare_exchange_strong(&read_state, &expected, READ_RUNNING)) return;
    const char *bases[ATTENTION_READ_AHEAD_RANGES];
    long bytes[ATTENTION_READ_AHEAD_RANGES], done[ATTENTION_READ_AHEAD_RANGES];
    int count = read_count, split = read_split;
    for (int i = 0; i < count; i++) { bases[i] = read_bases[i]; bytes[i] = read_bytes[i]; done[i] = 0; }
    // The two streams' current ranges.
    int current[2] = {0, split};
    const int end[2] = {split, count};
    long sum = 0;
    for (int stream = 0;; stream ^= 1) {
        int other = stream ^ 1;
        while (current[stream] < end[stream] && done[current[stream]] >= bytes[current[stream]]) current[stream]++;
        if (current[stream] >= end[stream]) {
            while (current[other] < end[other] && done[current[other]] >= bytes[current[other]]) current[other]++;
            if (current[other] >= end[other]) break;
            continue;
        }
        int r = current[stream];
        long stop = done[r] + 4096 < bytes[r] ? done[r] + 4096 : bytes[r];
        for (long offset = done[r]; offset < stop; offset += 64) {
            if ((offset & 1023) == 0 && (atomic_load_explicit(&generation, memory_order_relaxed) != seen ||
                                         atomic_load_explicit(&read_cancelled, memory_order_relaxed))) goto finished;
            sum += *(const volatile char *)(bases[r] + offset);
        }
        done[r] = stop;
    }
finished:
    read_sink = sum;
    atomic_store(&read_state, READ_IDLE);
}

static void run_items(long worker) {
    for (;;) {
        long item = atomic_fetch_add(&next_item, 1);
        if (item >= job_items) return;
        job_task(job_context, item, worker);
    }
}

static void *worker_main(void *argument) {
    long id = (long)argument;
    long seen = start_generation;
    for (;;) {
        long current = atomic_load(&generation);
        for (int spins = 0; current == seen && spins < SPIN_LIMIT; spins++) {
            if (atomic_load_explicit(&read_state, memory_order_relaxed) == READ_POSTED) read_ahead(seen);
            CPU_RELAX();
            current = atomic_load(&generation);
        }
        if (current == seen) {
            pthread_mutex_lock(&sleep_lock);
            atomic_fetch_add(&sleepers, 1);
            while ((current = atomic_load(&generation)) == seen) pthread_cond_wait(&wake_up, &sleep_lock);
            atomic_fetch_sub(&sleepers, 1);
            pthread_mutex_unlock(&sleep_lock);
        }
        seen = current;
        if (id < job_threads) run_items(id);
        atomic_fetch_add(&acknowledged, 1);
    }
    return NULL;
}

int attention_pool_run(long items, long threads, attention_pool_task task, void *context) {
    if (threads > MAX_WORKERS + 1) threads = MAX_WORKERS + 1;
    if (threads <= 1 || items <= 1) {
        for (long item = 0; item < items; item++) task(context, item, 0);
        return 1;
    }
    if (pthread_mutex_trylock(&job_lock) != 0) return 0;
    start_generation = atomic_load(&generation);
    while (workers < threads - 1) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, worker_main, (void *)(workers + 1));
        pthread_attr_destroy(&attributes);
        if (failed) break;
        workers += 1;
        atomic_store(&started, workers);
    }
    if (workers == 0) {
        pthread_mutex_unlock(&job_lock);
        return 0;
    }
    // A read-ahead no thread has taken yet is dropped: its memory is promised only until now.
    int posted = READ_POSTED;
    atomic_compare_exchange_strong(&read_state, &posted, READ_IDLE);
    job_items = items;
    job_threads = threads;
    job_task = task;
    job_context = context;
    atomic_store(&next_item, 0);
    atomic_store(&acknowledged, 0);
    atomic_fetch_add(&generation, 1);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake_up);
        pthread_mutex_unlock(&sleep_lock);
    }
    run_items(0);
    while (atomic_load(&acknowledged) < workers) CPU_RELAX();
    pthread_mutex_unlock(&job_lock);
    return 1;
}
