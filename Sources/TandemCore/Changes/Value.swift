/// A field value: type-tagged on the wire, with a length, so that a reader that does not
/// know a type keeps its bytes unchanged (PROTOCOL.md §3.3).
public enum Value: Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case string(String)
    case bytes([UInt8])
    /// Keys sorted by their UTF-8 bytes on the wire; used by create changes.
    case map([String: Value])
    /// A type this build does not know, kept as it came.
    case unknown(tag: UInt64, payload: [UInt8])

    /// The wire tag of each known type.
    public enum Tag: UInt64, Sendable {
        case null = 0, bool = 1, int = 2, string = 3, bytes = 4, map = 5
    }

    public var tag: UInt64 {
        switch self {
        case .null: Tag.null.rawValue
        case .bool: Tag.bool.rawValue
        case .int: Tag.int.rawValue
        case .string: Tag.string.rawValue
        case .bytes: Tag.bytes.rawValue
        case .map: Tag.map.rawValue
        case .unknown(let tag, _): tag
        }
    }

    public var intValue: Int64? { if case .int(let v) = self { v } else { nil } }
    public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
    public var stringValue: String? { if case .string(let v) = self { v } else { nil } }
    public var bytesValue: [UInt8]? { if case .bytes(let v) = self { v } else { nil } }
    public var mapValue: [String: Value]? { if case .map(let v) = self { v } else { nil } }
    public var isNull: Bool { self == .null }
}

extension Value {
    /// The largest payload of one value on the wire (1 MiB); fields have tighter rules.
    public static let maxPayloadBytes = 1 << 20
    /// The deepest nesting of maps.
    public static let maxDepth = 4

    func encode(into writer: inout ByteWriter) {
        writer.varint(tag)
        switch self {
        case .null:
            writer.varint(0)
        case .bool(let value):
            writer.varint(1)
            writer.byte(value ? 1 : 0)
        case .int(let value):
            var inner = ByteWriter()
            inner.signed(value)
            writer.lengthPrefixed(inner.bytes)
        case .string(let value):
            writer.lengthPrefixed(value.utf8)
        case .bytes(let value):
            writer.lengthPrefixed(value)
        case .map(let entries):
            var inner = ByteWriter()
            let sorted = entries.map { (key: Array($0.key.utf8), value: $0.value) }
                .sorted { $0.key.lexicographicallyPrecedes($1.key) }
            inner.varint(sorted.count)
            for entry in sorted {
                inner.lengthPrefixed(entry.key)
                entry.value.encode(into: &inner)
            }
            writer.lengthPrefixed(inner.bytes)
        case .unknown(_, let payload):
            writer.lengthPrefixed(payload)
        }
    }

    static func decode(from reader: inout ByteReader, depth: Int = 0) throws(TandemCoreError) -> Value {
        let tag = try reader.varint()
        let length = try reader.count(limit: maxPayloadBytes, what: "a value's payload in bytes")
        let payloadStart = reader.offset
        let payload = try reader.raw(length)
        var inner = ByteReader(Array(payload))
        func failInner(_ malformation: Malformation) -> TandemCoreError {
            .malformed(malformation, offset: payloadStart + inner.offset)
        }
        let value: Value
        switch Tag(rawValue: tag) {
        case .null:
            value = .null
        case .bool:
            guard length == 1 else { throw failInner(.invalidLength) }
            switch try inner.byte() {
            case 0: value = .bool(false)
            case 1: value = .bool(true)
            default: throw .malformed(.invalidBool, offset: payloadStart)
            }
        case .int:
            do { value = .int(try inner.signed()) } catch { throw rebase(error, by: payloadStart) }
        case .string:
            do { value = .string(try inner.utf8(length: length)) } catch { throw rebase(error, by: payloadStart) }
        case .bytes:
            value = .bytes(Array(payload))
            _ = try inner.raw(length)
        case .map:
            guard depth < maxDepth else { throw .limitExceeded(what: "nesting of maps", limit: maxDepth) }
            var entries: [String: Value] = [:]
            var previousKey: [UInt8]? = nil
            do throws(TandemCoreError) {
                let count = try inner.count(limit: length, what: "entries in a map")
                for _ in 0..<count {
                    let keyLength = try inner.count(limit: 255, what: "a map key in bytes")
                    let keyStart = inner.offset
                    let keyBytes = Array(try inner.raw(keyLength))
                    if let previousKey {
                        if previousKey == keyBytes { throw TandemCoreError.malformed(.duplicateEntry, offset: keyStart) }
                        if !previousKey.lexicographicallyPrecedes(keyBytes) {
                            throw TandemCoreError.malformed(.unsortedEntries, offset: keyStart)
                        }
                    }
                    previousKey = keyBytes
                    guard let key = String(validating: keyBytes, as: UTF8.self) else {
                        throw TandemCoreError.malformed(.invalidUTF8, offset: keyStart)
                    }
                    guard entries[key] == nil else { throw TandemCoreError.malformed(.duplicateEntry, offset: keyStart) }
                    entries[key] = try decode(from: &inner, depth: depth + 1)
                }
            } catch {
                throw rebase(error, by: payloadStart)
            }
            value = .map(entries)
        case nil:
            value = .unknown(tag: tag, payload: Array(payload))
        }
        // Every known type must use its whole payload.
        if case .unknown = value {} else if !inner.isAtEnd {
            throw .malformed(.invalidLength, offset: payloadStart + inner.offset)
        }
        return value
    }
}

/// Moves an error's offset from a nested reader's frame to the outer one.
func rebase(_ error: TandemCoreError, by base: Int) -> TandemCoreError {
    if case .malformed(let malformation, let offset) = error { return .malformed(malformation, offset: base + offset) }
    return error
}
