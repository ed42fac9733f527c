/// A strict reader of JSON (RFC 8259) for the body of the server's most frequent request,
/// the pull (`PullRequest(json:)`): Foundation's `JSONDecoder` decodes a dictionary of
/// cursors through `Codable`'s boxes, and took longer than every other part of a mentor's
/// caught-up pull. It reads what `JSONDecoder` reads, and refuses a little more: a key
/// given twice, and numbers where `PullRequest` wants an integer that are not written as
/// one.
struct JSONReader {
    private let bytes: [UInt8]
    private var at = 0
    /// The most containers nested in a body, the body's own object included (as
    /// `JSONDecoder`'s limit).
    static let maxDepth = 512

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The whole text is one object: `member` is called with each key, and must read its
    /// value (or `skipValue()` it).
    mutating func document(_ member: (inout JSONReader, String) throws(JSONReaderError) -> Void) throws(JSONReaderError) {
        try object(member)
        whitespace()
        guard at == bytes.count else { throw .malformed }
    }

    /// An object, each member's key given to `member`. A key given twice is refused, unless
    /// `member` does that itself (`checksKeys`: a caller that keeps every key in a dictionary).
    mutating func object(checksKeys: Bool = false, _ member: (inout JSONReader, String) throws(JSONReaderError) -> Void) throws(JSONReaderError) {
        try expect(UInt8(ascii: "{"))
        var keys: Set<String> = []
        whitespace()
        if peek() == UInt8(ascii: "}") {
            at += 1
            return
        }
        while true {
            whitespace()
            let key = try string()
            guard checksKeys || keys.insert(key).inserted else { throw .duplicateKey }
            try expect(UInt8(ascii: ":"))
            try member(&self, key)
            whitespace()
            guard at < bytes.count else { throw .malformed }
            let next = bytes[at]
            at += 1
            if next == UInt8(ascii: "}") { return }
            guard next == UInt8(ascii: ",") else { throw .malformed }
        }
    }

    /// A string value.
    mutating func string() throws(JSONReaderError) -> String {
        whitespace()
        guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw .malformed }
        at += 1
        let start = at
        // The common case, no escapes: the bytes as they are, once checked as UTF-8.
        while at < bytes.count, bytes[at] != UInt8(ascii: "\""), bytes[at] != UInt8(ascii: "\\") {
            guard bytes[at] >= 0x20 else { throw .malformed }
            at += 1
        }
        guard at < bytes.count else { throw .malformed }
        if bytes[at] == UInt8(ascii: "\"") {
            at += 1
            let text = bytes[start..<(at - 1)]
            // ASCII (keys, cursors, digests) is valid UTF-8 as it is: no validation pass.
            if text.allSatisfy({ $0 < 0x80 }) { return String(decoding: text, as: UTF8.self) }
            guard let text = String(validating: text, as: UTF8.self) else { throw .malformed }
            return text
        }
        var utf8 = Array(bytes[start..<at])
        while bytes[at] == UInt8(ascii: "\\") {
            at += 1
            try escape(into: &utf8)
            while at < bytes.count, bytes[at] != UInt8(ascii: "\""), bytes[at] != UInt8(ascii: "\\") {
                guard bytes[at] >= 0x20 else { throw .malformed }
                utf8.append(bytes[at])
                at += 1
            }
            guard at < bytes.count else { throw .malformed }
        }
        at += 1
        guard let text = String(validating: utf8, as: UTF8.self) else { throw .malformed }
        return text
    }

    /// A string or null.
    mutating func optionalString() throws(JSONReaderError) -> String? {
        if try null() { return nil }
        return try string()
    }

    /// An integer written as one (no fraction, no exponent) that fits in an `Int`, or null.
    mutating func optionalInteger() throws(JSONReaderError) -> Int? {
        if try null() { return nil }
        whitespace()
        let start = at
        if peek() == UInt8(ascii: "-") { at += 1 }
        let digits = at
        while let byte = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { at += 1 }
        guard at > digits, bytes[digits] != UInt8(ascii: "0") || at == digits + 1 else { throw .malformed }
        if let next = peek(), next == UInt8(ascii: ".") || next == UInt8(ascii: "e") || next == UInt8(ascii: "E") { throw .notAnInteger }
        guard let value = Int(String(decoding: bytes[start..<at], as: UTF8.self)) else { throw .notAnInteger }
        return value
    }

    /// Any value, read and dropped (a member this reader does not know).
    mutating func skipValue(depth: Int = 0) throws(JSONReaderError) {
        guard depth < Self.maxDepth else { throw .malformed }
        whitespace()
        guard let first = peek() else { throw .malformed }
        switch first {
        case UInt8(ascii: "{"):
            try object { reader, _ throws(JSONReaderError) in try reader.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            at += 1
            whitespace()
            if peek() == UInt8(ascii: "]") {
                at += 1
                return
            }
            while true {
                try skipValue(depth: depth + 1)
                whitespace()
                guard at < bytes.count else { throw .malformed }
                let next = bytes[at]
                at += 1
                if next == UInt8(ascii: "]") { return }
                guard next == UInt8(ascii: ",") else { throw .malformed }
            }
        case UInt8(ascii: "\""):
            _ = try string()
        case UInt8(ascii: "t"):
            try literal("true")
        case UInt8(ascii: "f"):
            try literal("false")
        case UInt8(ascii: "n"):
            try literal("null")
        default:
            try number()
        }
    }

    // MARK: - Pieces

    private mutating func null() throws(JSONReaderError) -> Bool {
        whitespace()
        guard peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    private mutating func literal(_ word: StaticString) throws(JSONReaderError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - at >= count else { throw .malformed }
        let matches = word.withUTF8Buffer { word in bytes[at..<(at + count)].elementsEqual(word) }
        guard matches else { throw .malformed }
        at += count
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func number() throws(JSONReaderError) {
        if peek() == UInt8(ascii: "-") { at += 1 }
        guard let first = peek(), isDigit(first) else { throw .malformed }
        at += 1
        if first != UInt8(ascii: "0") { digits() }
        if peek() == UInt8(ascii: ".") {
            at += 1
            guard let next = peek(), isDigit(next) else { throw .malformed }
            digits()
        }
        if let next = peek(), next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
            at += 1
            if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { at += 1 }
            guard let next = peek(), isDigit(next) else { throw .malformed }
            digits()
        }
    }

    private mutating func digits() {
        while let byte = peek(), isDigit(byte) { at += 1 }
    }

    private func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    /// The character after a backslash, as UTF-8.
    private mutating func escape(into utf8: inout [UInt8]) throws(JSONReaderError) {
        guard at < bytes.count else { throw .malformed }
        let byte = bytes[at]
        at += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate: a low one must follow, as `\uDC00`–`\uDFFF`.
                guard bytes.count - at >= 6, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") else { throw .malformed }
                at += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw .malformed }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw .malformed
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw .malformed }
            utf8.append(contentsOf: UTF8.encode(unicode)!)
        default:
            throw .malformed
        }
    }

    private mutating func hex4() throws(JSONReaderError) -> UInt32 {
        guard bytes.count - at >= 4 else { throw .malformed }
        var value: UInt32 = 0
        for byte in bytes[at..<(at + 4)] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .malformed
            }
            value = value << 4 | UInt32(digit)
        }
        at += 4
        return value
    }

    private mutating func expect(_ byte: UInt8) throws(JSONReaderError) {
        whitespace()
        guard at < bytes.count, bytes[at] == byte else { throw .malformed }
        at += 1
    }

    private func peek() -> UInt8? { at < bytes.count ? bytes[at] : nil }

    private mutating func whitespace() {
        while at < bytes.count, bytes[at] == 0x20 || bytes[at] == 0x0A || bytes[at] == 0x0D || bytes[at] == 0x09 { at += 1 }
    }
}

/// Why a body was refused (the server answers 400).
public enum JSONReaderError: Error, Equatable, Sendable {
    /// Not JSON, or not of the shape the request has.
    case malformed
    /// An object names the same key twice.
    case duplicateKey
    /// A number where an integer is wanted that is not written as one, or does not fit.
    case notAnInteger
}

extension PullRequest {
    /// A pull's body, read by `JSONReader` (what `JSONDecoder` gives, faster; members it does
    /// not know are skipped, as `JSONDecoder` does).
    public init(json bytes: [UInt8]) throws(JSONReaderError) {
        var reader = JSONReader(bytes)
        var cursors: [String: String]?
        var limit: Int?
        var directory: String?
        var subscriptions: String?
        try reader.document { reader, key throws(JSONReaderError) in
            switch key {
            case "cursors":
                var read: [String: String] = [:]
                try reader.object(checksKeys: true) { reader, key throws(JSONReaderError) in
                    guard read.updateValue(try reader.string(), forKey: key) == nil else { throw .duplicateKey }
                }
                cursors = read
            case "limit": limit = try reader.optionalInteger()
            case "directory": directory = try reader.optionalString()
            case "subscriptions": subscriptions = try reader.optionalString()
            // The body's object is the first level of nesting.
            default: try reader.skipValue(depth: 1)
            }
        }
        guard let cursors else { throw .malformed }
        self.init(cursors: cursors, limit: limit, directory: directory, subscriptions: subscriptions)
    }
}
