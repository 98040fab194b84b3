// The few MPI calls ring attention makes, reached through dlopen so that nothing in the package
// needs MPI to build: `attention` runs without MPI installed and finds it only for --distributed.
//
// The handles MPI defines as macros (MPI_COMM_WORLD, MPI_BYTE, ...) are, in Open MPI, addresses of
// exported globals; this shim looks them up by name. Every function returns an MPI error code
// (0 = MPI_SUCCESS) unless its comment says otherwise.
#ifndef ATTENTION_MPI_H
#define ATTENTION_MPI_H

#include <stddef.h>
#include <stdint.h>

typedef void *attention_mpi_request;

/// Opens the first library of `candidates` that loads and resolves every symbol. Returns 0, or -1
/// with what went wrong written to `error`.
int attention_mpi_load(const char *const *candidates, int count, char *error, size_t capacity);

/// MPI_Init_thread(MPI_THREAD_SERIALIZED) unless MPI is already initialized; errors on
/// MPI_COMM_WORLD are returned, not fatal. Writes the rank and size of MPI_COMM_WORLD.
int attention_mpi_init(int *rank, int *size);
int attention_mpi_finalize(void);

/// Non-blocking send or receive of `count` bytes on MPI_COMM_WORLD.
int attention_mpi_isend(const void *bytes, int count, int destination, int tag, attention_mpi_request *request);
int attention_mpi_irecv(void *bytes, int count, int source, int tag, attention_mpi_request *request);
/// Non-blocking element-wise maximum of `count` int64 values over every rank of MPI_COMM_WORLD.
int attention_mpi_iallreduce_max(const int64_t *input, int64_t *output, int count, attention_mpi_request *request);
/// Sets `done` to 1 when the request finished (the request is then freed), else 0.
int attention_mpi_test(attention_mpi_request *request, int *done);

/// MPI_Abort on MPI_COMM_WORLD: ends every rank with `code`.
void attention_mpi_abort(int code);
/// The text of an MPI error code.
void attention_mpi_error_string(int code, char *text, size_t capacity);
/// The MPI library's version line (MPI_Get_library_version), or an empty string.
void attention_mpi_library_version(char *text, size_t capacity);

/// The processors this process may run on: its CPU affinity, which mpirun narrows when it binds
/// ranks to cores (not an MPI call; 0 where the system cannot say).
int attention_processors_available(void);

#endif
