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
        // On the UTF-8 bytes in place: a pull parses one cursor per subscription.
        var text = text
        guard let parsed = text.withUTF8({ Self.parse($0) }) else { throw .malformed }
        self = parsed
    }

    /// The cursor `utf8` spells, or nil.
    static func parse(_ utf8: UnsafeBufferPointer<UInt8>) -> Cursor? {
        guard utf8.count <= 200 else { return nil }
        // Exactly three dots: `t2`, the epoch, the key, the sequence.
        var dots = (0, 0, 0), found = 0
        for (index, byte) in utf8.enumerated() where byte == UInt8(ascii: ".") {
            switch found {
            case 0: dots.0 = index
            case 1: dots.1 = index
            case 2: dots.2 = index
            default: return nil
            }
            found += 1
        }
        guard found == 3 else { return nil }
        let version = utf8[0..<dots.0], epoch = utf8[(dots.0 + 1)..<dots.1]
        let key = utf8[(dots.1 + 1)..<dots.2], digits = utf8[(dots.2 + 1)...]
        let perChannel = version.elementsEqual("t2".utf8)
        guard perChannel || version.elementsEqual("t1".utf8), epoch.count == 32, epoch.allSatisfy(isLowercaseHex),
              !key.isEmpty, key.allSatisfy(isKeyByte), let sequence = sequence(digits)
        else { return nil }
        var cursor = Cursor(epoch: String(decoding: epoch, as: UTF8.self), key: String(decoding: key, as: UTF8.self), sequence: sequence)
        cursor.perChannel = perChannel
        return cursor
    }

    static func isLowercaseHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    static func isKeyByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "-")
    }

    /// A non-negative Int64 in decimal, without leading zeros (nil otherwise).
    static func sequence(_ digits: Slice<UnsafeBufferPointer<UInt8>>) -> Int64? {
        guard let first = digits.first, digits.count <= 19, first != UInt8(ascii: "0") || digits.count == 1 else { return nil }
        var value: Int64 = 0
        for byte in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            let (shifted, over) = value.multipliedReportingOverflow(by: 10)
            let (sum, overAdd) = shifted.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !over, !overAdd else { return nil }
            value = sum
        }
        return value
    }
}

/// Why a cursor was refused: the server answers 400 and the device pulls again without it.
public enum CursorError: Error, Equatable, Sendable {
    case malformed
}
