import ArgumentParser
import Foundation
import TandemCore
import TandemStore

/// `--home`, shared by every command that uses a replica.
struct HomeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The replica's home folder (default: $TANDEM_HOME, else ~/.tandem).", valueName: "dir"))
    var home: String?

    var resolved: Home { Home(path: home ?? ProcessInfo.processInfo.environment["TANDEM_HOME"] ?? NSHomeDirectory() + "/.tandem") }
}

/// A replica's home: a folder of mode 0700 holding the store and a lock file, all 0600.
struct Home {
    let path: String

    var storePath: String { path + "/replica.sqlite" }
    var lockPath: String { path + "/lock" }

    /// Creates the folder (0700) if needed; an existing one is tightened to 0700.
    func create() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path)
    }

    /// Opens the store, first purging what a consent's expiry ended (a device enforces
    /// `until` itself, offline too: PROTOCOL.md §9.4).
    func openStore() throws -> ReplicaStore {
        let store = try ReplicaStore.open(at: storePath)
        try store.purgeExpired(localMillis: SystemWallClock().nowMillis())
        return store
    }

    /// Runs `body` holding the home's write lock, so one write runs at a time.
    func withLock<T>(_ body: () throws -> T) throws -> T {
        let fd = try acquire(lockPath)
        defer { release(fd) }
        return try body()
    }

    /// Runs an async `body` holding the home's sync lock: one sync at a time per home.
    /// Writes do not wait for a sync: SQLite keeps each of them whole.
    func withSyncLock<T>(_ body: () async throws -> T) async throws -> T {
        let fd = try acquire(path + "/sync.lock")
        defer { release(fd) }
        return try await body()
    }

    private func acquire(_ lock: String) throws -> Int32 {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError.notFound(path: storePath) }
        let fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError.database(reason: "cannot open the lock file \(lock)") }
        guard flock(fd, LOCK_EX) == 0 else {
            close(fd)
            throw StoreError.database(reason: "cannot lock \(lock)")
        }
        return fd
    }

    private func release(_ fd: Int32) {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// The record `id` names (a full id or a unique start), read as a typed model.
    /// - Throws: `StoreError.wrongCollection` naming `expected` when it is not one.
    func read<Model>(_ id: String, as model: (RecordState) -> Model?, expected: String) throws -> Model {
        let store = try openStore()
        let record = try store.resolve(id)
        guard let state = try store.record(record), let value = model(state) else {
            throw StoreError.wrongCollection(id: record.hex, expected: expected)
        }
        return value
    }

    /// Creates a record from `edit`, holding the lock; returns its id.
    func create(_ edit: RecordEdit, clock: some WallClock = SystemWallClock()) throws -> RecordID {
        try withLock { try openStore().write(edit, to: nil, clock: clock).0 }
    }

    /// Writes `edit` to the record `id` names (a full id or a unique start), holding the lock.
    func write(_ edit: RecordEdit, toRecordNamed id: String) throws {
        guard !edit.isEmpty else { throw CLIError.nothingToChange }
        try withLock {
            let store = try openStore()
            let record = try store.resolve(id)
            // What another member shared is theirs: only its author edits or deletes it.
            guard try store.sources(of: record).isEmpty else {
                throw CLIError.invalidChoice("This record was shared with you by its author; only they can change it.")
            }
            try store.write(edit, to: record, clock: SystemWallClock())
        }
    }
}
