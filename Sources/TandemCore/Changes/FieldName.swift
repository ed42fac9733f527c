/// The name of a field: 1 to 64 characters from `a-z 0-9 . _ -` (PROTOCOL.md §2.4).
///
/// The alphabet keeps health text out of field names: a free tag is stored under a hash
/// of its text (`FieldName.tag(_:)`), never under the text itself.
public struct FieldName: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public static let maxLength = 64
    /// The field name of create and tombstone changes, which speak for the whole record.
    public static let record = FieldName(unchecked: "")

    public let rawValue: String

    /// - Throws: `TandemCoreError.invalidChange` for an empty, long or non-ASCII name.
    public init(_ rawValue: String) throws(TandemCoreError) {
        guard Self.isValid(rawValue.utf8) else {
            throw .invalidChange(reason: "a field name must be 1 to \(Self.maxLength) characters from a-z, 0-9, '.', '_' and '-'")
        }
        self.rawValue = rawValue
    }

    init(unchecked rawValue: String) { self.rawValue = rawValue }

    /// For literals in code, which are known to be valid.
    public init(stringLiteral value: String) {
        precondition(Self.isValid(value.utf8), "invalid field name literal")
        self.rawValue = value
    }

    static func isValid(_ utf8: some Collection<UInt8>) -> Bool {
        guard !utf8.isEmpty, utf8.count <= maxLength else { return false }
        return utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
    }

    public var isRecord: Bool { rawValue.isEmpty }

    public var description: String { isRecord ? "-" : rawValue }

    /// Orders by UTF-8 bytes (all names are ASCII).
    public static func < (lhs: Self, rhs: Self) -> Bool {
        lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8)
    }
}
