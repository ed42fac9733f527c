/// JSON written straight into bytes, for the one answer the server makes on every pull
/// (`BinaryPull.Head`): Foundation's `JSONEncoder` builds a tree of boxed values first,
/// which made it half of the server's own work in a mentor's caught-up pull.
/// Strings are escaped as RFC 8259 requires (`"`, `\` and U+0000–U+001F); everything else
/// is written as its UTF-8. Keys are the caller's literals, written as they are.
struct JSONText {
    private(set) var bytes: [UInt8] = []
    /// Whether the object or array being written needs a comma before its next member.
    private var needsComma = false

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func object(_ members: (inout JSONText) -> Void) {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
        members(&self)
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    mutating func array<S: Sequence>(_ elements: S, _ element: (inout JSONText, S.Element) -> Void) {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
        for value in elements { element(&self, value) }
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// The key of an object's next member; its value is written next.
    mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        needsComma = false
    }

    mutating func string(_ value: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            // Most strings here (ids, keys, cursors) need no escape: copied in one piece.
            guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                bytes.append(contentsOf: utf8)
                return
            }
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                    bytes.append(contentsOf: [UInt8(ascii: "\\"), byte])
                case 0x00..<0x20:
                    bytes.append(contentsOf: "\\u00".utf8)
                    bytes.append(contentsOf: [Self.hexDigit(byte >> 4), Self.hexDigit(byte & 0x0F)])
                default:
                    bytes.append(byte)
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    /// An integer in decimal, its digits written straight into the bytes.
    mutating func number<Integer: FixedWidthInteger>(_ value: Integer) {
        separate()
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        // The magnitude's digits, least significant first, then reversed in place.
        var magnitude = value.magnitude
        let start = bytes.count
        repeat {
            let (quotient, digit) = magnitude.quotientAndRemainder(dividingBy: 10)
            bytes.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: digit))
            magnitude = quotient
        } while magnitude != 0
        bytes[start...].reverse()
        needsComma = true
    }

    mutating func bool(_ value: Bool) {
        separate()
        if value { bytes.append(contentsOf: "true".utf8) } else { bytes.append(contentsOf: "false".utf8) }
        needsComma = true
    }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}

extension BinaryPull.Head {
    /// This head as JSON, with the members `JSONEncoder` would write (an absent optional is
    /// left out), so any JSON decoder reads it as `Head`.
    func json() -> [UInt8] {
        var text = JSONText(capacity: 256 + 160 * ((subscriptions?.count ?? 0) + pages.count) + 96 * (directory?.count ?? 0))
        text.object { text in
            text.key("epoch"); text.string(epoch)
            text.key("epochChanged"); text.bool(epochChanged)
            if let subscriptions {
                text.key("subscriptions")
                text.array(subscriptions) { text, subscription in
                    text.object { text in
                        text.key("key"); text.string(subscription.key)
                        text.key("channel"); text.string(subscription.channel)
                        text.key("projection"); text.string(subscription.projection)
                        if let until = subscription.until { text.key("until"); text.number(until) }
                    }
                }
            }
            text.key("pages")
            text.array(pages) { text, page in
                text.object { text in
                    text.key("key"); text.string(page.key)
                    text.key("bytes"); text.number(page.bytes)
                    text.key("cursor"); text.string(page.cursor)
                    text.key("more"); text.bool(page.more)
                }
            }
            if let mark { text.key("mark"); text.string(mark) }
            text.key("serverTime"); text.number(serverTime)
            if let directoryDigest { text.key("directoryDigest"); text.string(directoryDigest) }
            if let directory {
                text.key("directory")
                text.array(directory) { text, member in
                    text.object { text in
                        text.key("member"); text.string(member.member)
                        text.key("name"); text.string(member.name)
                        text.key("role"); text.string(member.role)
                    }
                }
            }
            if let accounting {
                text.key("accounting")
                text.object { text in
                    text.key("sequence"); text.number(accounting.sequence)
                    text.key("hash"); text.string(accounting.hash)
                }
            }
        }
        return text.bytes
    }
}
