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

/// One record's whole merged state as one value, for a store that keeps a row per record
/// (a device's `record_state`): the winning create and tombstone, then each field's winner
/// or, for an `mv` field, its covered context and its frontier. Replicas are the store's
/// small numbers for them (`replica`), not their 16 bytes. A store format, not the wire: it
/// changes only with a store migration.
///
/// `version (1) · entry*`; an entry is `kind · field (length · UTF-8)` then, for a winner,
/// `wall · counter · replica · value`, and for `mv`, `covered (length · context) · count ·
/// (wall · counter · replica · value · context (length · bytes))*`.
extension RecordState {
    static let storedVersion: UInt8 = 1

    public func stored(replica: (ReplicaID) throws -> UInt64) throws -> [UInt8] {
        var writer = ByteWriter(capacity: 256)
        writer.byte(Self.storedVersion)
        func winner(_ change: Change) throws {
            writer.byte(change.kind.rawValue)
            writer.lengthPrefixed(change.field.rawValue.utf8)
            writer.varint(change.timestamp.wallMillis)
            writer.varint(UInt64(change.timestamp.counter))
            writer.varint(try replica(change.replica))
            change.value.encode(into: &writer)
        }
        if let create { try winner(create) }
        if let tombstone { try winner(tombstone) }
        // In field order: the same state is always the same bytes.
        for key in fields.keys.sorted() {
            guard let state = fields[key] else { continue }
            switch state {
            case .winner(let change):
                try winner(change)
            case .multiValue(let register):
                writer.byte(MergeKind.mv.rawValue)
                writer.lengthPrefixed(key.field.rawValue.utf8)
                writer.lengthPrefixed(register.covered.encoded)
                writer.varint(register.frontier.count)
                for change in register.frontier {
                    writer.varint(change.timestamp.wallMillis)
                    writer.varint(UInt64(change.timestamp.counter))
                    writer.varint(try replica(change.replica))
                    change.value.encode(into: &writer)
                    writer.lengthPrefixed(change.context.encoded)
                }
            }
        }
        return writer.bytes
    }

    /// How many of its `mv` fields hold more than one value (open conflicts).
    public var conflictedFields: Int {
        fields.values.reduce(0) { count, state in
            if case .multiValue(let register) = state, register.frontier.count > 1 { count + 1 } else { count }
        }
    }
}

extension ReplicaState {
    /// Merges a record's stored state (`RecordState.stored`) into this state.
    ///
    /// - Throws: `TandemCoreError` for bytes that are not a stored state, or what `replica`
    ///   throws for a number it does not know.
    public mutating func load(stored bytes: [UInt8], record: RecordID, replica: (UInt64) throws -> ReplicaID) throws {
        var reader = ByteReader(bytes)
        guard try reader.byte() == RecordState.storedVersion else { throw reader.fail(.badMagic) }
        func field(_ reader: inout ByteReader) throws -> FieldName {
            let name = try reader.utf8(length: try reader.count(limit: reader.remaining, what: "bytes of a field name"))
            return name.isEmpty ? FieldName.record : try FieldName(name)
        }
        func timestamp(_ reader: inout ByteReader) throws -> HybridTimestamp {
            let wall = try reader.varint()
            let counter = try reader.varint()
            guard counter <= UInt64(UInt16.max) else { throw reader.fail(.varintOverflow) }
            return HybridTimestamp(wallMillis: wall, counter: UInt16(counter))
        }
        while !reader.isAtEnd {
            let offset = reader.offset
            guard let kind = MergeKind(rawValue: try reader.byte()) else { throw TandemCoreError.malformed(.unknownMergeKind, offset: offset) }
            let name = try field(&reader)
            if kind != .mv {
                let stamp = try timestamp(&reader)
                let id = ChangeID(timestamp: stamp, replica: try replica(try reader.varint()))
                apply(Change(id: id, record: record, field: name, kind: kind, value: try Value.decode(from: &reader)))
                continue
            }
            let covered = try reader.raw(try reader.count(limit: reader.remaining, what: "bytes of a covered context"))
            joinCovered(try CausalContext(encoded: Array(covered)), record: record, field: name)
            let count = try reader.count(limit: reader.remaining, what: "values of a text field")
            for _ in 0..<count {
                let stamp = try timestamp(&reader)
                let id = ChangeID(timestamp: stamp, replica: try replica(try reader.varint()))
                let value = try Value.decode(from: &reader)
                let context = try reader.raw(try reader.count(limit: reader.remaining, what: "bytes of a causal context"))
                apply(Change(id: id, record: record, field: name, kind: .mv, value: value, context: try CausalContext(encoded: Array(context))))
            }
        }
    }
}
