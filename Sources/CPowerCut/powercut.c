// A test-only SQLite VFS that keeps, per file, the undo information of every write made
// since that file's last fsync, so that a simulated power cut can put each file back to
// what a disk would hold after losing power: the state of its last fsync.
//
// It wraps the default VFS. Writes, truncations and syncs are serialized by one mutex with
// the cut, so a write is either undone by the cut or never lands. Reads are passed through
// (they see the page cache, as on a real machine). Shared memory (the WAL index) is not
// tracked: SQLite rebuilds it from the WAL after a crash.
#include <sqlite3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include "powercut.h"

typedef struct Undo {
    sqlite3_int64 offset;
    int length;
    unsigned char *bytes;
    struct Undo *previous;
} Undo;

typedef struct Track {
    char *path;
    sqlite3_int64 syncedSize;  // the size at the last fsync
    Undo *undo;                // newest first
    int dead;
    struct Track *next;
} Track;

typedef struct Dead {
    char *prefix;
    struct Dead *next;
} Dead;

typedef struct {
    sqlite3_file base;
    Track *track;
    sqlite3_file *real;
    int powersafe;  // claims powersafe overwrite (decided at open: SQLite assumes it never changes)
} PCFile;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *slowPrefix = NULL;  // syncs of files under it take `slowMicros` longer
static int slowMicros = 0;
static int keepPowersafe = 0;    // files opened under `slowPrefix` claim powersafe overwrite
static Track *tracks = NULL;
static Dead *deadPrefixes = NULL;
static sqlite3_vfs *base = NULL;
static sqlite3_vfs vfs;
static sqlite3_io_methods methods;

static int startsWith(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static int isDeadPath(const char *path) {
    for (Dead *d = deadPrefixes; d; d = d->next) if (startsWith(path, d->prefix)) return 1;
    return 0;
}

static void freeUndo(Track *t) {
    Undo *u = t->undo;
    while (u) { Undo *p = u->previous; free(u->bytes); free(u); u = p; }
    t->undo = NULL;
}

// Called with `lock` held. The size of the file as SQLite sees it.
static sqlite3_int64 realSize(sqlite3_file *real) {
    sqlite3_int64 size = 0;
    if (real->pMethods->xFileSize(real, &size) != SQLITE_OK) return -1;
    return size;
}

// Saves what [offset, offset+length) holds now (the part inside the file), before it changes.
static int remember(PCFile *f, sqlite3_int64 offset, sqlite3_int64 length) {
    sqlite3_int64 size = realSize(f->real);
    if (size < 0) return SQLITE_IOERR;
    if (offset >= size) return SQLITE_OK;
    if (offset + length > size) length = size - offset;
    Undo *u = malloc(sizeof(Undo));
    if (!u) return SQLITE_NOMEM;
    u->bytes = malloc((size_t)length);
    if (!u->bytes) { free(u); return SQLITE_NOMEM; }
    u->offset = offset;
    u->length = (int)length;
    int rc = f->real->pMethods->xRead(f->real, u->bytes, (int)length, offset);
    if (rc != SQLITE_OK) { free(u->bytes); free(u); return rc; }
    u->previous = f->track->undo;
    f->track->undo = u;
    return SQLITE_OK;
}

static int pcClose(sqlite3_file *file) {
    PCFile *f = (PCFile *)file;
    return f->real->pMethods->xClose(f->real);
}

static int pcRead(sqlite3_file *file, void *buffer, int amount, sqlite3_int64 offset) {
    PCFile *f = (PCFile *)file;
    return f->real->pMethods->xRead(f->real, buffer, amount, offset);
}

static int pcWrite(sqlite3_file *file, const void *buffer, int amount, sqlite3_int64 offset) {
    PCFile *f = (PCFile *)file;
    pthread_mutex_lock(&lock);
    int rc;
    if (!f->track) rc = f->real->pMethods->xWrite(f->real, buffer, amount, offset);
    else if (f->track->dead) rc = SQLITE_IOERR_WRITE;
    else if ((rc = remember(f, offset, amount)) == SQLITE_OK) rc = f->real->pMethods->xWrite(f->real, buffer, amount, offset);
    pthread_mutex_unlock(&lock);
    return rc;
}

static int pcTruncate(sqlite3_file *file, sqlite3_int64 size) {
    PCFile *f = (PCFile *)file;
    pthread_mutex_lock(&lock);
    int rc;
    if (!f->track) rc = f->real->pMethods->xTruncate(f->real, size);
    else if (f->track->dead) rc = SQLITE_IOERR_TRUNCATE;
    else {
        sqlite3_int64 current = realSize(f->real);
        rc = current < 0 ? SQLITE_IOERR : remember(f, size, current > size ? current - size : 0);
        if (rc == SQLITE_OK) rc = f->real->pMethods->xTruncate(f->real, size);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static int pcSync(sqlite3_file *file, int flags) {
    PCFile *f = (PCFile *)file;
    pthread_mutex_lock(&lock);
    int slow = f->track && slowPrefix && startsWith(f->track->path, slowPrefix) ? slowMicros : 0;
    pthread_mutex_unlock(&lock);
    if (slow > 0) usleep((useconds_t)slow);
    pthread_mutex_lock(&lock);
    int rc;
    if (!f->track) rc = f->real->pMethods->xSync(f->real, flags);
    else if (f->track->dead) rc = SQLITE_IOERR_FSYNC;
    else {
        rc = f->real->pMethods->xSync(f->real, flags);
        if (rc == SQLITE_OK) {
            // Everything written to this file, through any handle, is on disk now.
            freeUndo(f->track);
            f->track->syncedSize = realSize(f->real);
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static int pcFileSize(sqlite3_file *file, sqlite3_int64 *size) {
    PCFile *f = (PCFile *)file;
    return f->real->pMethods->xFileSize(f->real, size);
}

static int pcLock(sqlite3_file *file, int level) { PCFile *f = (PCFile *)file; return f->real->pMethods->xLock(f->real, level); }
static int pcUnlock(sqlite3_file *file, int level) { PCFile *f = (PCFile *)file; return f->real->pMethods->xUnlock(f->real, level); }
static int pcCheckReservedLock(sqlite3_file *file, int *out) { PCFile *f = (PCFile *)file; return f->real->pMethods->xCheckReservedLock(f->real, out); }

static int pcFileControl(sqlite3_file *file, int op, void *arg) {
    PCFile *f = (PCFile *)file;
    // Size hints and chunk sizes make the real VFS grow files outside xWrite; refuse them
    // so every change of a file's bytes goes through pcWrite or pcTruncate.
    if (op == SQLITE_FCNTL_SIZE_HINT || op == SQLITE_FCNTL_CHUNK_SIZE) return SQLITE_OK;
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int pcSectorSize(sqlite3_file *file) { PCFile *f = (PCFile *)file; return f->real->pMethods->xSectorSize(f->real); }
static int pcDeviceCharacteristics(sqlite3_file *file) {
    PCFile *f = (PCFile *)file;
    int powersafe = f->powersafe;
    // No claims of atomic or safe-append writes: SQLite must sync as on any disk. Without
    // powersafe overwrite SQLite pads a WAL commit to a sector, writing after its fsync.
    int cleared = SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_SAFE_APPEND | SQLITE_IOCAP_SEQUENTIAL | SQLITE_IOCAP_BATCH_ATOMIC;
    if (!powersafe) cleared |= SQLITE_IOCAP_POWERSAFE_OVERWRITE;
    return f->real->pMethods->xDeviceCharacteristics(f->real) & ~cleared;
}
static int pcShmMap(sqlite3_file *file, int page, int size, int extend, void volatile **out) {
    PCFile *f = (PCFile *)file; return f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}
static int pcShmLock(sqlite3_file *file, int offset, int n, int flags) {
    PCFile *f = (PCFile *)file; return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}
static void pcShmBarrier(sqlite3_file *file) { PCFile *f = (PCFile *)file; f->real->pMethods->xShmBarrier(f->real); }
static int pcShmUnmap(sqlite3_file *file, int deleteFlag) {
    PCFile *f = (PCFile *)file; return f->real->pMethods->xShmUnmap(f->real, deleteFlag);
}
static int pcFetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **out) { (void)file; (void)offset; (void)amount; *out = NULL; return SQLITE_OK; }
static int pcUnfetch(sqlite3_file *file, sqlite3_int64 offset, void *p) { (void)file; (void)offset; (void)p; return SQLITE_OK; }

// Called with `lock` held.
static Track *trackFor(const char *path, sqlite3_file *real) {
    for (Track *t = tracks; t; t = t->next) if (strcmp(t->path, path) == 0) return t;
    Track *t = calloc(1, sizeof(Track));
    if (!t) return NULL;
    t->path = strdup(path);
    t->syncedSize = realSize(real);  // what a file holds when first opened is on disk
    if (t->syncedSize < 0) t->syncedSize = 0;
    t->dead = isDeadPath(path);
    t->next = tracks;
    tracks = t;
    return t;
}

static int pcOpen(sqlite3_vfs *self, sqlite3_filename name, sqlite3_file *file, int flags, int *outFlags) {
    (void)self;
    PCFile *f = (PCFile *)file;
    memset(f, 0, sizeof(PCFile));
    f->real = (sqlite3_file *)(f + 1);
    int rc = base->xOpen(base, name, f->real, flags, outFlags);
    if (rc != SQLITE_OK) return rc;
    if (name) {  // a temporary file (no name) is not tracked: nothing of it survives anyway
        pthread_mutex_lock(&lock);
        f->track = trackFor(name, f->real);
        f->powersafe = keepPowersafe && slowPrefix && startsWith(name, slowPrefix);
        pthread_mutex_unlock(&lock);
        if (!f->track) { f->real->pMethods->xClose(f->real); return SQLITE_NOMEM; }
    }
    f->base.pMethods = &methods;
    return SQLITE_OK;
}

static int pcDelete(sqlite3_vfs *self, const char *name, int syncDir) {
    (void)self;
    pthread_mutex_lock(&lock);
    int rc = SQLITE_OK;
    Track **link = &tracks;
    while (*link && strcmp((*link)->path, name) != 0) link = &(*link)->next;
    if (*link && (*link)->dead) rc = SQLITE_IOERR_DELETE;
    else if (isDeadPath(name)) rc = SQLITE_IOERR_DELETE;
    else {
        rc = base->xDelete(base, name, syncDir);
        if (rc == SQLITE_OK && *link) {
            // A later file of that name starts afresh. (Handles still open keep their track.)
            Track *gone = *link;
            *link = gone->next;
            freeUndo(gone);
            gone->path[0] = '\0';
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static int pcAccess(sqlite3_vfs *self, const char *name, int flags, int *out) { (void)self; return base->xAccess(base, name, flags, out); }
static int pcFullPathname(sqlite3_vfs *self, const char *name, int n, char *out) { (void)self; return base->xFullPathname(base, name, n, out); }
static void *pcDlOpen(sqlite3_vfs *self, const char *name) { (void)self; return base->xDlOpen(base, name); }
static void pcDlError(sqlite3_vfs *self, int n, char *out) { (void)self; base->xDlError(base, n, out); }
static void (*pcDlSym(sqlite3_vfs *self, void *handle, const char *symbol))(void) { (void)self; return base->xDlSym(base, handle, symbol); }
static void pcDlClose(sqlite3_vfs *self, void *handle) { (void)self; base->xDlClose(base, handle); }
static int pcRandomness(sqlite3_vfs *self, int n, char *out) { (void)self; return base->xRandomness(base, n, out); }
static int pcSleep(sqlite3_vfs *self, int micros) { (void)self; return base->xSleep(base, micros); }
static int pcCurrentTime(sqlite3_vfs *self, double *out) { (void)self; return base->xCurrentTime(base, out); }
static int pcGetLastError(sqlite3_vfs *self, int n, char *out) { (void)self; return base->xGetLastError ? base->xGetLastError(base, n, out) : 0; }
static int pcCurrentTimeInt64(sqlite3_vfs *self, sqlite3_int64 *out) { (void)self; return base->xCurrentTimeInt64(base, out); }

int tandem_powercut_register(void) {
    pthread_mutex_lock(&lock);
    if (base) { pthread_mutex_unlock(&lock); return 0; }
    sqlite3_initialize();
    base = sqlite3_vfs_find(NULL);
    if (!base) { pthread_mutex_unlock(&lock); return 1; }
    methods = (sqlite3_io_methods){
        .iVersion = 3, .xClose = pcClose, .xRead = pcRead, .xWrite = pcWrite, .xTruncate = pcTruncate, .xSync = pcSync,
        .xFileSize = pcFileSize, .xLock = pcLock, .xUnlock = pcUnlock, .xCheckReservedLock = pcCheckReservedLock,
        .xFileControl = pcFileControl, .xSectorSize = pcSectorSize, .xDeviceCharacteristics = pcDeviceCharacteristics,
        .xShmMap = pcShmMap, .xShmLock = pcShmLock, .xShmBarrier = pcShmBarrier, .xShmUnmap = pcShmUnmap,
        .xFetch = pcFetch, .xUnfetch = pcUnfetch,
    };
    vfs = (sqlite3_vfs){
        .iVersion = 2, .szOsFile = (int)sizeof(PCFile) + base->szOsFile, .mxPathname = base->mxPathname,
        .zName = "powercut", .xOpen = pcOpen, .xDelete = pcDelete, .xAccess = pcAccess, .xFullPathname = pcFullPathname,
        .xDlOpen = pcDlOpen, .xDlError = pcDlError, .xDlSym = pcDlSym, .xDlClose = pcDlClose, .xRandomness = pcRandomness,
        .xSleep = pcSleep, .xCurrentTime = pcCurrentTime, .xGetLastError = pcGetLastError,
        .xCurrentTimeInt64 = pcCurrentTimeInt64,
    };
    int rc = sqlite3_vfs_register(&vfs, 0);
    pthread_mutex_unlock(&lock);
    return rc;
}

long long tandem_powercut_cut(const char *prefix) {
    long long discarded = 0;
    pthread_mutex_lock(&lock);
    Dead *d = malloc(sizeof(Dead));
    d->prefix = strdup(prefix);
    d->next = deadPrefixes;
    deadPrefixes = d;
    for (Track *t = tracks; t; t = t->next) {
        if (!t->path[0] || !startsWith(t->path, prefix)) continue;
        t->dead = 1;
        int fd = open(t->path, O_RDWR);
        if (fd < 0) { freeUndo(t); continue; }
        // Newest first: each byte ends with the value it had at the last fsync.
        for (Undo *u = t->undo; u; u = u->previous) {
            discarded += u->length;
            ssize_t done = pwrite(fd, u->bytes, (size_t)u->length, u->offset);
            (void)done;
        }
        off_t size = lseek(fd, 0, SEEK_END);
        if (size > t->syncedSize) discarded += size - t->syncedSize;
        if (ftruncate(fd, t->syncedSize) != 0) { /* the file keeps its size; a test will notice */ }
        close(fd);
        freeUndo(t);
    }
    pthread_mutex_unlock(&lock);
    return discarded;
}

void tandem_powercut_slow_syncs(const char *prefix, int micros) {
    tandem_powercut_slow_syncs_powersafe(prefix, micros, 0);
}

void tandem_powercut_slow_syncs_powersafe(const char *prefix, int micros, int powersafe) {
    pthread_mutex_lock(&lock);
    free(slowPrefix);
    slowPrefix = prefix ? strdup(prefix) : NULL;
    slowMicros = micros;
    keepPowersafe = prefix ? powersafe : 0;
    pthread_mutex_unlock(&lock);
}
