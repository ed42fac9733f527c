// posix_spawn with the parts Swift's Glibc module does not import (closefrom, a clean
// signal state), for TandemProcess. Foundation's Process is not used: on Linux its
// `run()` reads past a readdir buffer while it looks for open descriptors and crashes
// at random (swift-corelibs-foundation PR 5472, after Swift 6.3.1).
#ifndef TANDEM_SPAWN_H
#define TANDEM_SPAWN_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (both NULL-terminated) and stores its pid.
/// `in`, `out` and `err` become the child's descriptors 0, 1 and 2; -1 leaves that one
/// inherited. Every other descriptor is closed in the child, every signal has its default
/// action there and none is blocked. Returns 0, or an errno value (ENOENT: no such
/// executable).
int tandem_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], int in, int out, int err);

/// pipe2(fds, O_CLOEXEC): both ends closed on exec. Returns 0, or -1 with errno set.
int tandem_pipe(int fds[2]);

#endif
