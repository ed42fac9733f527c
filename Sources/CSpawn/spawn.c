#define _GNU_SOURCE
#include "tandem_spawn.h"

#include <signal.h>
#include <spawn.h>
#include <fcntl.h>
#include <unistd.h>

int tandem_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int tandem_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], int in, int out, int err) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int result = posix_spawn_file_actions_init(&actions);
    if (result != 0) return result;
    result = posix_spawnattr_init(&attributes);
    if (result != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return result;
    }
    const int sources[3] = {in, out, err};
    for (int target = 0; target < 3 && result == 0; target++) {
        if (sources[target] >= 0) result = posix_spawn_file_actions_adddup2(&actions, sources[target], target);
    }
    // Nothing of the parent's leaks into the child: not its store files, sockets or the
    // other ends of its pipes.
    if (result == 0) result = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    // The spawning thread's mask and ignored signals are not the child's: a server started
    // from a thread that blocks SIGTERM must still end on SIGTERM.
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    if (result == 0) result = posix_spawnattr_setsigdefault(&attributes, &all);
    if (result == 0) result = posix_spawnattr_setsigmask(&attributes, &none);
    if (result == 0) result = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (result == 0) result = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return result;
}
