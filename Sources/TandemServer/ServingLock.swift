import Foundation

/// A lock file beside a server store (`PATH.serving`) that every `tandem serve` on the
/// store holds shared for as long as it runs, and `tandem admin restore` must get
/// exclusively: a restore never replaces a store under a running server. The kernel drops
/// the lock when its process ends, however it ends (kill -9 included).
public final class ServingLock: Sendable {
    let descriptor: Int32

    /// The lock file's path for a store.
    public static func path(for store: String) -> String { store + ".serving" }

    /// Takes the lock `exclusive`ly (a restore) or shared (a server); without waiting.
    /// - Throws: `ServerError.conflict` when it is held the other way.
    public init(store: String, exclusive: Bool) throws {
        let path = Self.path(for: store)
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw ServerError.unavailable("Cannot open \(path) to lock the store.") }
        guard flock(descriptor, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 else {
            close(descriptor)
            throw ServerError.conflict(exclusive
                ? "A server has \(store) open: stop it (tandem serve) before restoring."
                : "\(store) is being restored: start the server once the restore is done.")
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }
}

/// A lock file beside a server store (`PATH.migrating`) that whoever opens the store holds
/// exclusively while it checks and runs the store's migrations. GRDB's migrator reads which
/// migrations were applied before it opens each migration's transaction, so two processes
/// opening a new store at once (two `tandem serve` started together) both ran the first
/// migration, and one failed with "table center already exists". Under this lock the second
/// finds the work done. The kernel drops the lock when its process ends, however it ends.
enum MigrationLock {
    /// The longest a process waits for another's migrations.
    static let patience: Duration = .seconds(120)

    /// Runs `body` holding the store's migration lock.
    /// - Throws: `ServerError.unavailable` when the lock cannot be had within `patience`.
    static func holding<T>(for store: String, _ body: () throws -> T) throws -> T {
        let path = store + ".migrating"
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw ServerError.unavailable("Cannot open \(path) to migrate the store.") }
        defer { close(descriptor) }
        let deadline = ContinuousClock.now + patience
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard ContinuousClock.now < deadline else {
                throw ServerError.unavailable("Another tandem has been migrating \(store) for over two minutes; try again when it is done.")
            }
            usleep(20_000)
        }
        return try body()
    }
}
