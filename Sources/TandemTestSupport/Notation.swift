public import TandemCore

/// The readable twin of changes used by fixtures, one change a line:
///
/// ```text
/// 1000.0@A create r1 - = {collection: "journal"}
/// 1001.0@A lww r1 mood = 5
/// 1002.0@B mv r1 text = "hello" ctx{A=1001.0}
/// ```
///
/// Ids are 32 hex digits or short names (up to 16 ASCII bytes, zero-padded into the id,
/// so names sort as they read). Values: `null`, `true`, `false`, integers, JSON-style
/// strings, `0x…` bytes, `id(NAME)` for 16-byte ids, `{key: value, …}` maps and
/// `?TAG:0x…` for a type this build does not know.
public enum Notation {
    public struct ParseError: Error, CustomStringConvertible {
        public let line: String
        public let reason: String
        public var description: String { "cannot parse '\(line)': \(reason)" }
    }

    // MARK: ids

    public static func id<K>(_ text: Substring) throws -> Identifier<K> {
        if text.count == 32, let id = try? Identifier<K>(hex: String(text)) { return id }
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 16, bytes.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw ParseError(line: String(text), reason: "not an id or a short name")
        }
        return try Identifier<K>(bytes: bytes + Array(repeating: 0, count: 16 - bytes.count))
    }

    public static func name<K>(_ id: Identifier<K>) -> String { name(bytes: id.bytes) }

    static func name(bytes: [UInt8]) -> String {
        let trimmed = bytes.prefix { $0 != 0 }
        if !trimmed.isEmpty, bytes[trimmed.count...].allSatisfy({ $0 == 0 }),
           trimmed.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 })
        {
            return String(decoding: trimmed, as: UTF8.self)
        }
        return hexString(bytes)
    }

    public static func timestamp(_ text: Substring) throws -> HybridTimestamp {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let wall = UInt64(parts[0]), let counter = UInt16(parts[1]) else {
            throw ParseError(line: String(text), reason: "a timestamp is WALL.COUNTER")
        }
        return HybridTimestamp(wallMillis: wall, counter: counter)
    }

    public static func changeID(_ text: Substring) throws -> ChangeID {
        let parts = text.split(separator: "@")
        guard parts.count == 2 else { throw ParseError(line: String(text), reason: "a change id is WALL.COUNTER@REPLICA") }
        return ChangeID(timestamp: try timestamp(parts[0]), replica: try id(parts[1]))
    }

    public static func format(_ id: ChangeID) -> String { "\(id.timestamp)@\(name(id.replica))" }

    // MARK: changes

    public static func change(_ line: String) throws -> Change {
        var scanner = Scanner(line)
        let id = try changeID(scanner.word())
        guard let kind = MergeKind(name: String(scanner.word())) else { throw ParseError(line: line, reason: "unknown merge kind") }
        let record: RecordID = try Notation.id(scanner.word())
        let fieldText = scanner.word()
        let field = fieldText == "-" ? FieldName.record : try FieldName(String(fieldText))
        guard scanner.word() == "=" else { throw ParseError(line: line, reason: "expected '='") }
        let value = try scanner.value()
        var context = CausalContext()
        scanner.skipSpaces()
        if scanner.consume("ctx{") {
            while !scanner.consume("}") {
                let entry = scanner.until { $0 == "," || $0 == "}" }
                _ = scanner.consume(",")
                let parts = entry.split(separator: "=")
                guard parts.count == 2 else { throw ParseError(line: line, reason: "a context entry is REPLICA=WALL.COUNTER") }
                context.include(try Notation.id(parts[0]), try timestamp(parts[1]))
                if scanner.isAtEnd { throw ParseError(line: line, reason: "unclosed context") }
            }
        }
        scanner.skipSpaces()
        guard scanner.isAtEnd else { throw ParseError(line: line, reason: "unexpected text after the change") }
        return Change(id: id, record: record, field: field, kind: kind, value: value, context: context)
    }

    public static func format(_ change: Change) -> String {
        var line = "\(format(change.id)) \(change.kind) \(name(change.record)) \(change.field) = \(format(change.value))"
        if change.kind == .mv {
            line += " ctx{" + change.context.entries.map { "\(name($0.replica))=\($0.timestamp)" }.joined(separator: ",") + "}"
        }
        return line
    }

    /// Parses every non-blank line that is not a `#` comment.
    public static func changes(_ text: String) throws -> [Change] {
        try text.split(separator: "\n").map { $0.trimmingSpaces }.filter { !$0.isEmpty && !$0.hasPrefix("#") }.map(change)
    }

    // MARK: values

    public static func value(_ text: String) throws -> Value {
        var scanner = Scanner(text)
        let value = try scanner.value()
        scanner.skipSpaces()
        guard scanner.isAtEnd else { throw ParseError(line: text, reason: "unexpected text after the value") }
        return value
    }

    public static func format(_ value: Value) -> String {
        switch value {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): "\(i)"
        case .string(let s): quote(s)
        case .bytes(let b): b.count == 16 && !name(bytes: b).allSatisfy(\.isHexDigit) ? "id(\(name(bytes: b)))" : "0x" + hexString(b)
        case .map(let entries):
            "{" + entries.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "\($0.key): \(format($0.value))" }.joined(separator: ", ") + "}"
        case .unknown(let tag, let payload): "?\(tag):0x" + hexString(payload)
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}

/// A character scanner for the notation.
struct Scanner {
    let text: String
    var chars: [Character]
    var index = 0

    init(_ text: String) {
        self.text = text
        chars = Array(text)
    }

    var isAtEnd: Bool { index >= chars.count }

    mutating func skipSpaces() { while index < chars.count, chars[index] == " " || chars[index] == "\t" { index += 1 } }

    mutating func word() -> Substring {
        skipSpaces()
        let start = index
        while index < chars.count, chars[index] != " " { index += 1 }
        return Substring(String(chars[start..<index]))
    }

    mutating func until(_ stop: (Character) -> Bool) -> Substring {
        let start = index
        while index < chars.count, !stop(chars[index]) { index += 1 }
        return Substring(String(chars[start..<index]))
    }

    mutating func consume(_ literal: String) -> Bool {
        let literalChars = Array(literal)
        guard index + literalChars.count <= chars.count, Array(chars[index..<index + literalChars.count]) == literalChars else { return false }
        index += literalChars.count
        return true
    }

    func fail(_ reason: String) -> Notation.ParseError { Notation.ParseError(line: text, reason: reason) }

    mutating func value() throws -> Value {
        skipSpaces()
        guard !isAtEnd else { throw fail("missing value") }
        if consume("null") { return .null }
        if consume("true") { return .bool(true) }
        if consume("false") { return .bool(false) }
        if consume("id(") {
            let name = until { $0 == ")" }
            guard consume(")") else { throw fail("unclosed id(") }
            let id: MemberID = try Notation.id(name)
            return .bytes(id.bytes)
        }
        if consume("0x") { return .bytes(try hexBytes()) }
        if consume("?") {
            guard let tag = UInt64(until { $0 == ":" }), consume(":0x") else { throw fail("unknown values are ?TAG:0xHEX") }
            return .unknown(tag: tag, payload: try hexBytes())
        }
        if consume("\"") { return .string(try stringBody()) }
        if consume("{") {
            var entries: [String: Value] = [:]
            skipSpaces()
            while !consume("}") {
                let key = String(until { $0 == ":" }).trimmingCharacters(in: " ")
                guard consume(":") else { throw fail("a map entry is KEY: VALUE") }
                entries[key] = try value()
                skipSpaces()
                _ = consume(",")
                skipSpaces()
                if isAtEnd { throw fail("unclosed map") }
            }
            return .map(entries)
        }
        let number = until { $0 == " " || $0 == "," || $0 == "}" || $0 == "]" }
        guard let int = Int64(number) else { throw fail("unknown value '\(number)'") }
        return .int(int)
    }

    mutating func hexBytes() throws -> [UInt8] {
        let digits = Array(until { !$0.isHexDigit })
        guard digits.count % 2 == 0 else { throw fail("odd number of hex digits") }
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16) ?? 0 }
    }

    mutating func stringBody() throws -> String {
        var out = String.UnicodeScalarView()
        while true {
            guard index < chars.count else { throw fail("unclosed string") }
            let c = chars[index]
            index += 1
            if c == "\"" { return String(out) }
            if c != "\\" { out.append(contentsOf: c.unicodeScalars); continue }
            guard index < chars.count else { throw fail("unclosed string") }
            let escaped = chars[index]
            index += 1
            switch escaped {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "\"", "\\": out.append(contentsOf: escaped.unicodeScalars)
            case "u":
                guard index + 4 <= chars.count, let code = UInt32(String(chars[index..<index + 4]), radix: 16),
                      let scalar = Unicode.Scalar(code) else { throw fail("bad \\u escape") }
                index += 4
                out.append(scalar)
            default: throw fail("bad escape")
            }
        }
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}

extension Notation {
    /// Parses `[value, value, …]`.
    public static func valueList(_ text: String) throws -> [Value] {
        var scanner = Scanner(text)
        scanner.skipSpaces()
        guard scanner.consume("[") else { throw ParseError(line: text, reason: "a list starts with '['") }
        var values: [Value] = []
        scanner.skipSpaces()
        while !scanner.consume("]") {
            values.append(try scanner.value())
            scanner.skipSpaces()
            _ = scanner.consume(",")
            scanner.skipSpaces()
            if scanner.isAtEnd { throw ParseError(line: text, reason: "unclosed list") }
        }
        return values
    }
}
