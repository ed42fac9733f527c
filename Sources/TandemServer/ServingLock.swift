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
