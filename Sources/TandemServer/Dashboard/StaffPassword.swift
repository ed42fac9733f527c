import HummingbirdBcrypt
import NIOPosix

/// Dashboard passwords (PROTOCOL.md §9.20): bcrypt (hummingbird-auth), cost 12, hashed and
/// checked on NIO's thread pool, never on the concurrency pool or an event loop (each
/// takes a good part of a second on purpose).
public enum StaffPassword {
    public static let cost: UInt8 = 12
    /// bcrypt reads at most 72 bytes; a longer password is refused rather than cut.
    public static let lengths = 12...72

    /// Why `password` is not acceptable, in words for the person (nil: it is).
    public static func problem(_ password: String) -> String? {
        lengths.contains(password.utf8.count) ? nil : "A dashboard password has \(lengths.lowerBound) to \(lengths.upperBound) bytes."
    }

    public static func hash(_ password: String) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public static func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// Spends what checking a password costs, for a name with no password: a sign-in then
    /// takes as long whether the name exists or not.
    public static func verifyNothing(_ password: String) async throws {
        _ = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: decoy) }
    }
}

/// A hash of a random secret nobody knows, made once (on the thread pool, at first use).
private let decoy = Bcrypt.hash(Secrets.newToken(), cost: StaffPassword.cost)
