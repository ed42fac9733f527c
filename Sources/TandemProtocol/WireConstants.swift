public import TandemCore

// Strings both ends of the wire compare: defined once, here, so that a device never keeps
// its own copy of what the server says (PROTOCOL.md §9).

/// Subscription keys (PROTOCOL.md §9.4).
public enum SubscriptionKey {
    /// The member's own records, every field: the one subscription every device has.
    public static let own = "own"

    /// Another member's channel seen through a projection (nil: the owner's view):
    /// `m-<member hex>-<projection>`.
    public static func key(channel: MemberID, projection: Projection?) -> String {
        "m-\(channel.hex)-\(projection?.rawValue ?? "owner")"
    }

    /// One record of another member's channel (a note shared with its patient):
    /// `r-<member hex>-<record hex>-<projection>`.
    public static func key(channel: MemberID, record: RecordID, projection: Projection?) -> String {
        "r-\(channel.hex)-\(record.hex)-\(projection?.rawValue ?? "owner")"
    }

    /// The channel a key reads (nil: `own`, or not a key of these formats).
    public static func channel(of key: String) -> MemberID? {
        let parts = key.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "m" || parts[0] == "r" else { return nil }
        return try? MemberID(hex: String(parts[1]))
    }

    /// How many times a key splits at `-` before its projection (which may hold one).
    private static func parts(of key: String) -> Int { key.hasPrefix("r-") ? 3 : 2 }

    /// The projection a key reads through: `.some(nil)` for `own` and the owner's view,
    /// nil for a key of no known format or projection (which the caller must treat as
    /// carrying nothing, never as every field).
    public static func projection(of key: String) -> Projection?? {
        if key == own { return .some(nil) }
        let parts = key.split(separator: "-", maxSplits: parts(of: key), omittingEmptySubsequences: false)
        guard parts.count == 3 || parts.count == 4, parts[0] == (parts.count == 3 ? "m" : "r") else { return nil }
        let projection = String(parts[parts.count - 1])
        if projection == "owner" { return .some(nil) }
        return Projection(rawValue: projection).map { .some($0) }
    }
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
