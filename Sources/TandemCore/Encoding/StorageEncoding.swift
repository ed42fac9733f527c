/// Standalone encodings of a value and of a causal context, for stores that keep them in
/// columns (PROTOCOL.md §3.3; a context as in §3.4). Stores are not the wire: these may
/// change with a store migration, never with a protocol version.
extension Value {
    /// `tag · length · payload` (PROTOCOL.md §3.3).
    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 16)
        encode(into: &writer)
        return writer.bytes
    }

    /// - Throws: `TandemCoreError` unless `bytes` is exactly one canonical value.
    public init(encoded bytes: [UInt8]) throws(TandemCoreError) {
        var reader = ByteReader(bytes)
        self = try Value.decode(from: &reader)
        guard reader.isAtEnd else { throw reader.fail(.trailingBytes) }
    }
}

extension CausalContext {
    /// `count · (replica (16) · wall · counter)*`, entries in replica order.
    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 1 + entries.count * 24)
        writer.varint(entries.count)
        for entry in entries {
            writer.identifier(entry.replica)
            writer.varint(entry.timestamp.wallMillis)
            writer.varint(UInt64(entry.timestamp.counter))
        }
        return writer.bytes
    }

    /// - Throws: `TandemCoreError` unless `bytes` is exactly one canonical context.
    public init(encoded bytes: [UInt8]) throws(TandemCoreError) {
        var reader = ByteReader(bytes)
        let count = try reader.count(limit: min(CausalContext.maxEntries, reader.remaining), what: "entries in a causal context")
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        for _ in 0..<count {
            let offset = reader.offset
            let replica: ReplicaID = try reader.identifier()
            if let last = entries.last, !(last.replica < replica) { throw .malformed(.unsortedEntries, offset: offset) }
            entries.append(Entry(replica: replica, timestamp: try Change.readTimestamp(from: &reader, wall: try reader.varint())))
        }
        guard reader.isAtEnd else { throw reader.fail(.trailingBytes) }
        self.init(sortedUnique: entries)
    }
}

extension ReplicaState {
    /// Joins a stored `covered` context into a text field (PROTOCOL.md §5.5): how a store
    /// rebuilds a register it keeps as rows.
    public mutating func joinCovered(_ context: CausalContext, record: RecordID, field: FieldName) {
        var state = records[record] ?? RecordState(id: record)
        state.joinCovered(context, for: FieldKey(field, .mv))
        records[record] = state
    }

    /// Only the given records, for a store that loads what a batch touches.
    public func restricted(to ids: some Sequence<RecordID>) -> ReplicaState {
        var result = ReplicaState(rules: rules)
        for id in ids { if let record = records[id] { result.records[id] = record } }
        return result
    }
}
