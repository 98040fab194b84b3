#define _GNU_SOURCE
#include "attention_mpi.h"

#ifdef __linux__
#include <sched.h>
#endif

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

// Open MPI's ABI: handles are pointers, MPI_STATUS_IGNORE is NULL, MPI_THREAD_SERIALIZED is 2.
typedef void *handle;
enum { thread_serialized = 2, max_error_string = 256 };

static struct {
    int (*Init_thread)(int *, char ***, int, int *);
    int (*Initialized)(int *);
    int (*Finalized)(int *);
    int (*Finalize)(void);
    int (*Comm_rank)(handle, int *);
    int (*Comm_size)(handle, int *);
    int (*Comm_set_errhandler)(handle, handle);
    int (*Isend)(const void *, int, handle, int, int, handle, handle *);
    int (*Irecv)(void *, int, handle, int, int, handle, handle *);
    int (*Iallreduce)(const void *, void *, int, handle, handle, handle, handle *);
    int (*Test)(handle *, int *, void *);
    int (*Abort)(handle, int);
    int (*Error_string)(int, char *, int *);
    int (*Get_library_version)(char *, int *);
    handle comm_world, byte, int64, op_max, errors_return;
} mpi;

static int loaded = 0;

int attention_mpi_load(const char *const *candidates, int count, char *error, size_t capacity) {
    if (loaded) return 0;
    if (capacity > 0) error[0] = 0;
    for (int c = 0; c < count; c++) {
        // RTLD_GLOBAL: Open MPI's own plugins resolve symbols of libmpi.
        void *library = dlopen(candidates[c], RTLD_NOW | RTLD_GLOBAL);
        if (!library) {
            snprintf(error, capacity, "%s", dlerror());
            continue;
        }
        const char *missing = NULL;
#define RESOLVE(field, name)                                       \
        if (!missing && !(*(void **)&mpi.field = dlsym(library, name))) missing = name;
        RESOLVE(Init_thread, "MPI_Init_thread")
        RESOLVE(Initialized, "MPI_Initialized")
        RESOLVE(Finalized, "MPI_Finalized")
        RESOLVE(Finalize, "MPI_Finalize")
        RESOLVE(Comm_rank, "MPI_Comm_rank")
        RESOLVE(Comm_size, "MPI_Comm_size")
        RESOLVE(Comm_set_errhandler, "MPI_Comm_set_errhandler")
        RESOLVE(Isend, "MPI_Isend")
        RESOLVE(Irecv, "MPI_Irecv")
        RESOLVE(Iallreduce, "MPI_Iallreduce")
        RESOLVE(Test, "MPI_Test")
        RESOLVE(Abort, "MPI_Abort")
        RESOLVE(Error_string, "MPI_Error_string")
        RESOLVE(Get_library_version, "MPI_Get_library_version")
        RESOLVE(comm_world, "ompi_mpi_comm_world")
        RESOLVE(byte, "ompi_mpi_byte")
        RESOLVE(int64, "ompi_mpi_int64_t")
        RESOLVE(op_max, "ompi_mpi_op_max")
        RESOLVE(errors_return, "ompi_mpi_errors_return")
#undef RESOLVE
        if (missing) {
            snprintf(error, capacity, "%s has no symbol %s (an Open MPI 4 or later library is needed)", candidates[c], missing);
            dlclose(library);
            continue;
        }
        loaded = 1;
        return 0;
    }
    return -1;
}

int attention_mpi_init(int *rank, int *size) {
    int initialized = 0, code = mpi.Initialized(&initialized);
    if (code) return code;
    if (!initialized) {
        int provided = 0;
        if ((code = mpi.Init_thread(NULL, NULL, thread_serialized, &provided))) return code;
    }
    if ((code = mpi.Comm_set_errhandler(mpi.comm_world, mpi.errors_return))) return code;
    if ((code = mpi.Comm_rank(mpi.comm_world, rank))) return code;
    return mpi.Comm_size(mpi.comm_world, size);
}

int attention_mpi_finalize(void) {
    int finalized = 0;
    mpi.Finalized(&finalized);
    return finalized ? 0 : mpi.Finalize();
}

int attention_mpi_isend(const void *bytes, int count, int destination, int tag, attention_mpi_request *request) {
    return mpi.Isend(bytes, count, mpi.byte, destination, tag, mpi.comm_world, request);
}

int attention_mpi_irecv(void *bytes, int count, int source, int tag, attention_mpi_request *request) {
    return mpi.Irecv(bytes, count, mpi.byte, source, tag, mpi.comm_world, request);
}

int attention_mpi_iallreduce_max(const int64_t *input, int64_t *output, int count, attention_mpi_request *request) {
    return mpi.Iallreduce(input, output, count, mpi.int64, mpi.op_max, mpi.comm_world, request);
}

int attention_mpi_test(attention_mpi_request *request, int *done) {
    return mpi.Test(request, done, NULL);
}

void attention_mpi_abort(int code) { mpi.Abort(mpi.comm_world, code); }

void attention_mpi_error_string(int code, char *text, size_t capacity) {
    char buffer[max_error_string + 1] = {0};
    int length = 0;
    if (!loaded || mpi.Error_string(code, buffer, &length)) snprintf(buffer, sizeof buffer, "MPI error %d", code);
    snprintf(text, capacity, "%s", buffer);
}

void attention_mpi_library_version(char *text, size_t capacity) {
    char buffer[8192] = {0};
    int length = 0;
    if (!loaded || mpi.Get_library_version(buffer, &length)) buffer[0] = 0;
    char *newline = strchr(buffer, '\n');
    if (newline) *newline = 0;
    snprintf(text, capacity, "%s", buffer);
}

int attention_processors_available(void) {
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
    return 0;
}
