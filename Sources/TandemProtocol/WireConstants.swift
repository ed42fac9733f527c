public import TandemCore

// Strings both ends of the wire compare: defined once, here, so that a device never keeps
// its own copy of what the server says (PROTOCOL.md §9).

/// Subscription keys (PROTOCOL.md §9.4).
public enum SubscriptionKey {
    /// The member's own records, every field: the one subscription every device has.
    public static let own = "own"
}

/// How the wire names one change: `<wall ms>.<counter>@<replica hex>`, as a refusal
/// names the change it refuses (PROTOCOL.md §9.3).
public enum ChangeKey {
    public static func text(of id: ChangeID) -> String { "\(text(of: id.timestamp))@\(id.replica.hex)" }

    /// A timestamp as the wire writes it (a refusal's `mark`).
    public static func text(of timestamp: HybridTimestamp) -> String { "\(timestamp.wallMillis).\(timestamp.counter)" }

    /// The id a key names (nil: not a change key).
    public static func id(_ text: String) -> ChangeID? {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, let timestamp = timestamp(String(parts[0])),
              let replica = try? ReplicaID(hex: String(parts[1]))
        else { return nil }
        return ChangeID(timestamp: timestamp, replica: replica)
    }

    /// A timestamp as the wire writes it, `<wall ms>.<counter>` (a refusal's `mark`).
    public static func timestamp(_ text: String) -> HybridTimestamp? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let wall = UInt64(parts[0]), wall <= HybridTimestamp.maxWallMillis, let counter = UInt16(parts[1]) else {
            return nil
        }
        return HybridTimestamp(wallMillis: wall, counter: counter)
    }
}

/// The `error` codes of the server's JSON error bodies (Protocol/openapi.yaml).
public enum ErrorCode: String, Sendable, CaseIterable {
    case unauthorized
    case revoked
    case forbidden
    case badRequest = "bad-request"
    case tooLarge = "too-large"
    case unsupportedVersion = "unsupported-version"
    case invalidCode = "invalid-code"
    case tooManyAttempts = "too-many-attempts"
    case tooManyConnections = "too-many-connections"
    case tooManyCodes = "too-many-codes"
    case notFound = "not-found"
    case upgradeRequired = "upgrade-required"
    case methodNotAllowed = "method-not-allowed"
    case overQuota = "over-quota"
    case requestTimeout = "request-timeout"
    case disconnected
    case throttled
    case conflict
    case refused
    case unavailable
}
