/// A subscription's position, opaque to devices: `t2.<epoch hex>.<key>.<sequence>`
/// (PROTOCOL.md §9.4): the key of `a-z`, `0-9`, `:` and `-`, the sequence a non-negative
/// Int64 without leading zeros, 200 bytes in all (the pattern in Protocol/openapi.yaml).
///
/// The sequence counts the changes of the subscription's channel alone (PROTOCOL.md §9.4a),
/// so a position says nothing about other channels. `t1` cursors, from servers that
/// numbered all channels together, still parse (`perChannel` false): the server reads such
/// a subscription again from zero.
public struct Cursor: Equatable, Sendable {
    public var epoch: String
    public var key: String
    public var sequence: Int64
    /// False for a `t1` cursor, whose sequence counts every channel's changes.
    public var perChannel: Bool

    public init(epoch: String, key: String, sequence: Int64) {
        self.epoch = epoch
        self.key = key
        self.sequence = sequence
        self.perChannel = true
    }

    public var encoded: String { "\(perChannel ? "t2" : "t1").\(epoch).\(key).\(sequence)" }

    /// - Throws: `CursorError.malformed` for anything but a well-formed cursor.
    public init(parsing text: String) throws(CursorError) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard text.utf8.count <= 200, parts.count == 4, parts[0] == "t2" || parts[0] == "t1", parts[1].count == 32,
              parts[1].allSatisfy({ $0.isHexDigit && !$0.isUppercase }),
              !parts[2].isEmpty, parts[2].utf8.allSatisfy({ (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "-") }),
              let sequence = Int64(parts[3]), sequence >= 0, String(sequence) == parts[3]
        else { throw .malformed }
        self.init(epoch: String(parts[1]), key: String(parts[2]), sequence: sequence)
        perChannel = parts[0] == "t2"
    }
}

/// Why a cursor was refused: the server answers 400 and the device pulls again without it.
public enum CursorError: Error, Equatable, Sendable {
    case malformed
}
