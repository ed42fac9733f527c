/// A sequence of changes in the compact batch encoding of PROTOCOL.md §4.
///
/// ```swift
/// let bytes = ChangeBatch(changes).encoded()
/// let batch = try ChangeBatch(decoding: bytes, limits: .default)
/// ```
///
/// The batch interns replica ids, record ids and field names in tables ordered by first
/// use, and writes each wall time as a difference from the previous change's, so a
/// stream of one journal's metrics costs a few bytes a change before deflate.
public struct ChangeBatch: Hashable, Sendable {
    public static let encodingVersion: UInt64 = 1
    public static let supportedVersions: ClosedRange<UInt64> = 1...1
    static let magic: [UInt8] = Array("TNDB".utf8)

    public var changes: [Change]

    public init(_ changes: [Change]) { self.changes = changes }

    /// Bounds a decoder enforces before it allocates.
    public struct Limits: Sendable {
        public var maxBytes: Int
        public var maxChanges: Int
        public init(maxBytes: Int, maxChanges: Int) {
            self.maxBytes = maxBytes
            self.maxChanges = maxChanges
        }
        /// 16 MiB and 10,000 changes.
        public static let `default` = Limits(maxBytes: 16 << 20, maxChanges: 10_000)
    }

    /// The canonical batch bytes.
    public func encoded() -> [UInt8] {
        var replicas = Interner<ReplicaID>()
        var records = Interner<RecordID>()
        var fields = Interner<FieldName>()
        var body = ByteWriter(capacity: changes.count * 16)
        var previousWall: UInt64 = 0
        for change in changes {
            body.byte(change.kind.rawValue)
            body.varint(replicas.index(change.replica))
            body.varint(records.index(change.record))
            if change.kind.hasField { body.varint(fields.index(change.field)) }
            let wall = change.timestamp.wallMillis
            body.signed(Int64(bitPattern: wall &- previousWall))
            previousWall = wall
            body.varint(UInt64(change.timestamp.counter))
            change.value.encode(into: &body)
            if change.kind == .mv {
                body.varint(change.context.entries.count)
                for entry in change.context.entries {
                    body.varint(replicas.index(entry.replica))
                    body.signed(Int64(bitPattern: entry.timestamp.wallMillis &- wall))
                    body.varint(UInt64(entry.timestamp.counter))
                }
            }
        }
        var writer = ByteWriter(capacity: body.bytes.count + 32 * (replicas.values.count + records.values.count))
        writer.raw(Self.magic)
        writer.varint(Self.encodingVersion)
        writer.varint(replicas.values.count)
        for replica in replicas.values { writer.identifier(replica) }
        writer.varint(records.values.count)
        for record in records.values { writer.identifier(record) }
        writer.varint(fields.values.count)
        for field in fields.values { writer.lengthPrefixed(field.rawValue.utf8) }
        writer.varint(changes.count)
        writer.raw(body.bytes)
        return writer.bytes
    }

    /// Decodes canonical batch bytes, refusing anything else.
    ///
    /// - Throws: `TandemCoreError.malformed` (with the byte offset), `.unsupportedVersion`
    ///   or `.limitExceeded`. Nothing is partly decoded: it is the whole batch or an error.
    public init(decoding bytes: [UInt8], limits: Limits = .default) throws(TandemCoreError) {
        guard bytes.count <= limits.maxBytes else { throw .limitExceeded(what: "a batch in bytes", limit: limits.maxBytes) }
        var reader = ByteReader(bytes)
        guard bytes.count >= 4, Array(try reader.raw(4)) == Self.magic else { throw .malformed(.badMagic, offset: 0) }
        let version = try reader.varint()
        guard Self.supportedVersions.contains(version) else {
            throw .unsupportedVersion(found: version, supported: Self.supportedVersions)
        }
        // A table entry takes at least one byte, so no count can exceed the bytes left.
        var replicas = try TableReader<ReplicaID>(entries: Self.readTable(&reader, what: "replica ids") { r throws(TandemCoreError) in try r.identifier() })
        var records = try TableReader<RecordID>(entries: Self.readTable(&reader, what: "record ids") { r throws(TandemCoreError) in try r.identifier() })
        var fields = try TableReader<FieldName>(entries: Self.readTable(&reader, what: "field names") { r throws(TandemCoreError) in
            try Change.readFieldName(from: &r, length: try r.count(limit: FieldName.maxLength, what: "a field name in bytes"), allowEmpty: false)
        })
        let count = try reader.count(limit: min(limits.maxChanges, reader.remaining), what: "changes in a batch")
        var changes: [Change] = []
        changes.reserveCapacity(count)
        var previousWall: UInt64 = 0
        for _ in 0..<count {
            let start = reader.offset
            let kind = try Change.readKind(from: &reader)
            let replica = try replicas.next(&reader)
            let record = try records.next(&reader)
            let field = kind.hasField ? try fields.next(&reader) : .record
            let delta = try reader.signed()
            let wall = previousWall &+ UInt64(bitPattern: delta)
            let timestamp = try Change.readTimestamp(from: &reader, wall: wall)
            previousWall = wall
            let value = try Value.decode(from: &reader)
            var context = CausalContext()
            if kind == .mv {
                let entryCount = try reader.count(limit: min(CausalContext.maxEntries, reader.remaining), what: "entries in a causal context")
                var entries: [CausalContext.Entry] = []
                entries.reserveCapacity(entryCount)
                for _ in 0..<entryCount {
                    let entryStart = reader.offset
                    let entryReplica = try replicas.next(&reader)
                    if let last = entries.last, !(last.replica < entryReplica) {
                        throw .malformed(last.replica == entryReplica ? .duplicateEntry : .unsortedEntries, offset: entryStart)
                    }
                    let entryWall = wall &+ UInt64(bitPattern: try reader.signed())
                    entries.append(.init(replica: entryReplica, timestamp: try Change.readTimestamp(from: &reader, wall: entryWall)))
                }
                context = CausalContext(sortedUnique: entries)
            }
            let change = Change(
                id: ChangeID(timestamp: timestamp, replica: replica), record: record,
                field: field, kind: kind, value: value, context: context)
            do { try change.validateShape() } catch { throw .malformed(.invalidChange, offset: start) }
            changes.append(change)
        }
        guard reader.isAtEnd else { throw reader.fail(.trailingBytes) }
        guard replicas.allUsed, records.allUsed, fields.allUsed else {
            throw .malformed(.unusedTableEntry, offset: reader.offset)
        }
        self.changes = changes
    }

    private static func readTable<T: Hashable>(
        _ reader: inout ByteReader, what: String,
        _ element: (inout ByteReader) throws(TandemCoreError) -> T
    ) throws(TandemCoreError) -> [T] {
        let count = try reader.count(limit: reader.remaining, what: what)
        var seen = Set<T>()
        var values: [T] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            let offset = reader.offset
            let value = try element(&reader)
            guard seen.insert(value).inserted else { throw .malformed(.duplicateEntry, offset: offset) }
            values.append(value)
        }
        return values
    }
}

/// Assigns table indexes in order of first use.
struct Interner<T: Hashable> {
    private(set) var values: [T] = []
    private var indexes: [T: Int] = [:]

    mutating func index(_ value: T) -> Int {
        if let index = indexes[value] { return index }
        indexes[value] = values.count
        values.append(value)
        return values.count - 1
    }
}

/// Reads table indexes, requiring first use in table order (which makes the table order
/// canonical) and, at the end, that every entry was used.
struct TableReader<T> {
    let entries: [T]
    private var used = 0

    init(entries: [T]) { self.entries = entries }

    var allUsed: Bool { used == entries.count }

    mutating func next(_ reader: inout ByteReader) throws(TandemCoreError) -> T {
        let offset = reader.offset
        let index = try reader.varint()
        guard index < UInt64(entries.count) else { throw .malformed(.indexOutOfRange, offset: offset) }
        if index == UInt64(used) {
            used += 1
        } else if index > UInt64(used) {
            throw .malformed(.unsortedEntries, offset: offset)
        }
        return entries[Int(index)]
    }
}
