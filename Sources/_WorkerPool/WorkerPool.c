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
static long start_generation = 0;    // what a new worker has already seen

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
    }
    if (workers == 0) {
        pthread_mutex_unlock(&job_lock);
        return 0;
    }
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
