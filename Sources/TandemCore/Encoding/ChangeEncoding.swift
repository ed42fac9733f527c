/// The canonical encoding of one change on its own (PROTOCOL.md §3.4).
///
/// Hashes, duplicate checks and the canonical dump use these bytes; a batch's bytes
/// depend on its neighbours and are never compared.
extension Change {
    /// The only version this build writes and reads.
    public static let encodingVersion: UInt64 = 1
    static let magic: [UInt8] = Array("TNDC".utf8)

    /// The change's own canonical bytes.
    public var canonicalBytes: [UInt8] {
        var writer = ByteWriter(capacity: 64)
        writer.raw(Self.magic)
        writer.varint(Self.encodingVersion)
        encodeBody(into: &writer)
        return writer.bytes
    }

    func encodeBody(into writer: inout ByteWriter) {
        writer.byte(kind.rawValue)
        writer.identifier(id.replica)
        writer.identifier(record)
        writer.lengthPrefixed(field.rawValue.utf8)
        writer.varint(id.timestamp.wallMillis)
        writer.varint(UInt64(id.timestamp.counter))
        value.encode(into: &writer)
        if kind == .mv {
            writer.varint(context.entries.count)
            for entry in context.entries {
                writer.identifier(entry.replica)
                writer.varint(entry.timestamp.wallMillis)
                writer.varint(UInt64(entry.timestamp.counter))
            }
        }
    }

    /// Reads one change from its canonical bytes.
    ///
    /// - Throws: `TandemCoreError` when the bytes are not exactly one canonical change.
    public init(canonicalBytes bytes: [UInt8]) throws(TandemCoreError) {
        var reader = ByteReader(bytes)
        guard Array(try reader.raw(4)) == Self.magic else { throw .malformed(.badMagic, offset: 0) }
        let version = try reader.varint()
        guard version == Self.encodingVersion else {
            throw .unsupportedVersion(found: version, supported: Self.encodingVersion...Self.encodingVersion)
        }
        self = try Self.decodeBody(from: &reader)
        guard reader.isAtEnd else { throw reader.fail(.trailingBytes) }
    }

    static func decodeBody(from reader: inout ByteReader) throws(TandemCoreError) -> Change {
        let start = reader.offset
        let kind = try readKind(from: &reader)
        let replica: ReplicaID = try reader.identifier()
        let record: RecordID = try reader.identifier()
        let field = try readFieldName(from: &reader, length: try reader.count(limit: FieldName.maxLength, what: "a field name in bytes"), allowEmpty: true)
        let timestamp = try readTimestamp(from: &reader, wall: try reader.varint())
        let value = try Value.decode(from: &reader)
        var context = CausalContext()
        if kind == .mv {
            let count = try reader.count(limit: CausalContext.maxEntries, what: "entries in a causal context")
            var entries: [CausalContext.Entry] = []
            for _ in 0..<count {
                let entryStart = reader.offset
                let entryReplica: ReplicaID = try reader.identifier()
                if let last = entries.last, !(last.replica < entryReplica) {
                    throw .malformed(last.replica == entryReplica ? .duplicateEntry : .unsortedEntries, offset: entryStart)
                }
                entries.append(.init(replica: entryReplica, timestamp: try readTimestamp(from: &reader, wall: try reader.varint())))
            }
            context = CausalContext(sortedUnique: entries)
        }
        let change = Change(
            id: ChangeID(timestamp: timestamp, replica: replica), record: record,
            field: field, kind: kind, value: value, context: context)
        do { try change.validateShape() } catch { throw .malformed(.invalidChange, offset: start) }
        return change
    }

    static func readKind(from reader: inout ByteReader) throws(TandemCoreError) -> MergeKind {
        let offset = reader.offset
        guard let kind = MergeKind(rawValue: try reader.byte()) else {
            throw .malformed(.unknownMergeKind, offset: offset)
        }
        return kind
    }

    static func readTimestamp(from reader: inout ByteReader, wall: UInt64) throws(TandemCoreError) -> HybridTimestamp {
        guard wall <= HybridTimestamp.maxWallMillis else { throw reader.fail(.varintOverflow) }
        let counter = try reader.varint()
        guard counter <= UInt64(UInt16.max) else { throw reader.fail(.varintOverflow) }
        return HybridTimestamp(wallMillis: wall, counter: UInt16(counter))
    }

    static func readFieldName(from reader: inout ByteReader, length: Int, allowEmpty: Bool) throws(TandemCoreError) -> FieldName {
        let offset = reader.offset
        let bytes = try reader.raw(length)
        if bytes.isEmpty && allowEmpty { return .record }
        guard FieldName.isValid(bytes) else { throw .malformed(.invalidFieldName, offset: offset) }
        return FieldName(unchecked: String(decoding: bytes, as: UTF8.self))
    }
}
