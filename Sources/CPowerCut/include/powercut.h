// A test-only SQLite VFS that simulates a power cut (Tests only; never linked into tandem).
#ifndef TANDEM_POWERCUT_H
#define TANDEM_POWERCUT_H

/// Registers the VFS named "powercut" (over the default one). Idempotent. Returns 0 on success.
int tandem_powercut_register(void);

/// Simulates a power cut for every file whose path starts with `prefix`: each file goes back
/// to what it held at its last fsync (later writes and truncations are undone), and from now
/// on every write, truncate, sync and delete of such a file fails with an I/O error, as the
/// machine is off. Returns the number of bytes of writes it discarded.
long long tandem_powercut_cut(const char *prefix);

/// From now on every fsync of a file whose path starts with `prefix` takes `micros` longer
/// (a slow disk): the time between a commit's last write and its becoming visible. NULL
/// ends it.
void tandem_powercut_slow_syncs(const char *prefix, int micros);

/// As `tandem_powercut_slow_syncs`, and with `powersafe` those files (opened from now on) keep SQLite's
/// powersafe-overwrite property, as the default VFS on a real disk: a WAL commit then
/// writes nothing after its fsync, so no file event follows the moment it becomes visible
/// (without it, SQLite pads the commit to a sector after the fsync).
void tandem_powercut_slow_syncs_powersafe(const char *prefix, int micros, int powersafe);

#endif
