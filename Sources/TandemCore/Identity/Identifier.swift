/// A 128-bit identifier whose type says what it names.
///
/// ```swift
/// let replica = ReplicaID.random()
/// let record: RecordID = try RecordID(hex: "00112233445566778899aabbccddeeff")
/// ```
///
/// Ids compare as big-endian byte strings, which is the order the merge rules use
/// for their last tie-break (PROTOCOL.md §5.1).
public struct Identifier<Kind: IdentifierKind>: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The first eight bytes, big-endian.
    public let high: UInt64
    /// The last eight bytes, big-endian.
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Makes an id from exactly 16 bytes.
    ///
    /// - Throws: `TandemCoreError.invalidIdentifier` when `bytes` is not 16 bytes long.
    public init(bytes: some Collection<UInt8>) throws(TandemCoreError) {
        guard bytes.count == 16 else { throw .invalidIdentifier(kind: Kind.name) }
        // Contiguous bytes (an array, a database blob) are read in place: every row a
        // server reads names ids, and iterating a generic collection costs more than the rest.
        if let (high, low) = bytes.withContiguousStorageIfAvailable({ buffer in
            var high: UInt64 = 0
            var low: UInt64 = 0
            for index in 0..<8 { high = high << 8 | UInt64(buffer[index]) }
            for index in 8..<16 { low = low << 8 | UInt64(buffer[index]) }
            return (high, low)
        }) {
            self.init(high: high, low: low)
            return
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (offset, byte) in bytes.enumerated() {
            if offset < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    /// Parses 32 hexadecimal digits.
    ///
    /// - Throws: `TandemCoreError.invalidIdentifier` for anything else.
    public init(hex: String) throws(TandemCoreError) {
        guard hex.utf8.count == 32, let digits = TandemCore.bytes(hex: hex) else { throw .invalidIdentifier(kind: Kind.name) }
        try self.init(bytes: digits)
    }

    /// A new id from the system's secure random source.
    public static func random() -> Self {
        // The standard library's own generator, not `&SystemRandomNumberGenerator()`: an
        // inout of that zero-sized value has one shared dummy address, which
        // ThreadSanitizer reports as a race between threads making ids at once.
        Self(high: UInt64.random(in: .min ... .max), low: UInt64.random(in: .min ... .max))
    }

    /// A new id from `generator`: seeded generators make reproducible ids in tests.
    public static func random(using generator: inout some RandomNumberGenerator) -> Self {
        Self(high: generator.next(), low: generator.next())
    }

    /// The 16 bytes, big-endian.
    public var bytes: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
        return result
    }

    /// 32 lowercase hexadecimal digits.
    public var hex: String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<16 {
                let shift = UInt64(60 - 4 * index)
                buffer[index] = hexDigit(UInt8(truncatingIfNeeded: high >> shift) & 0x0f)
                buffer[16 + index] = hexDigit(UInt8(truncatingIfNeeded: low >> shift) & 0x0f)
            }
            return 32
        }
    }

    public var description: String { hex }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}

/// What an `Identifier` names; only used as a type tag.
public protocol IdentifierKind: Sendable {
    static var name: String { get }
}

public enum ReplicaKind: IdentifierKind { public static let name = "replica id" }
public enum RecordKind: IdentifierKind { public static let name = "record id" }
public enum MemberKind: IdentifierKind { public static let name = "member id" }

/// One device's copy of the data: the author of every change it stamps.
public typealias ReplicaID = Identifier<ReplicaKind>
/// A journal entry, a mentor note, a consent or a member.
public typealias RecordID = Identifier<RecordKind>
/// A person known to the center's server.
public typealias MemberID = Identifier<MemberKind>

extension Identifier where Kind == MemberKind {
    /// The center itself, as the recipient of an `aggregate` consent (PROTOCOL.md §6.3): no
    /// member has this id (the server never issues it), and nothing is ever sent to it.
    public static let center = MemberID(high: 0, low: 0)
}

@inline(__always)
func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// The bytes that hexadecimal digits spell, two digits a byte (nil: an odd count, or
/// anything but a digit).
///
/// ```swift
/// bytes(hex: "00ff") == [0, 255]
/// ```
public func bytes(hex: String) -> [UInt8]? {
    let utf8 = Array(hex.utf8)
    guard utf8.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(utf8.count / 2)
    for index in stride(from: 0, to: utf8.count, by: 2) {
        guard let high = hexValue(utf8[index]), let low = hexValue(utf8[index + 1]) else { return nil }
        bytes.append(high << 4 | low)
    }
    return bytes
}

/// Lowercase hexadecimal digits of `bytes`.
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.underestimatedCount * 2)
    for byte in bytes {
        out.append(hexDigit(byte >> 4))
        out.append(hexDigit(byte & 0x0f))
    }
    return String(decoding: out, as: UTF8.self)
}

@inline(__always)
private func hexDigit(_ value: UInt8) -> UInt8 {
    value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
}
